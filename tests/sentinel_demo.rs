//! Both demo servers in sentinel mode, configured only through environment variables (read
//! by `session_e2e::build_store`, exactly as the demo binaries read them): a logged-in user
//! stays logged in across a planned failover and across a crash of the master.
//!
//! One test in this binary: it sets process environment variables, which no other test of
//! the same process may race with.

mod common;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::http::StatusCode;
use common::checks::{login, send};
use session_core::Mode;
use session_testkit::{SentinelOptions, SentinelTopology};

/// 64 bytes of cookie key material, shared by both demos (what `SESSION_SECRET` would give).
const KEY: &[u8; 64] = b"sentinel-demo-secret-sentinel-demo-secret-sentinel-demo-secret-1";

async fn whoami(base: &str, cookie: &str) -> (StatusCode, String) {
    let res = send("GET", &format!("{base}/whoami"), Some(cookie), None).await;
    (res.status, res.body)
}

/// Asks `/whoami` until it answers 200 (at most `patience`); returns the answer and how
/// many requests failed before.
async fn whoami_until_ok(base: &str, cookie: &str, patience: Duration) -> (String, u32) {
    let deadline = Instant::now() + patience;
    let mut failures = 0;
    loop {
        let (status, body) = whoami(base, cookie).await;
        if status == StatusCode::OK {
            return (body, failures);
        }
        assert!(
            status == StatusCode::SERVICE_UNAVAILABLE && Instant::now() < deadline,
            "{status} {body} (a logged-in user must never get a 401)"
        );
        failures += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn demos_keep_a_user_logged_in_across_failovers() {
    let topology = Arc::new(SentinelTopology::start_with(
        SentinelOptions::new().replicas(2),
    ));
    // Only environment variables, in Odoo's syntax.
    std::env::set_var("SESSION_REDIS_MODE", "sentinel");
    std::env::set_var("SESSION_REDIS_HOST", topology.sentinel_host_list());
    std::env::set_var("SESSION_REDIS_MASTER", topology.master_name());

    // Each demo builds its own store, as two processes would.
    let common::env_demos::EnvDemos {
        actix,
        axum,
        actix_handle,
    } = common::env_demos::start(KEY, Mode::Sentinel).await;

    let res = send("GET", &format!("{axum}/healthz"), None, None).await;
    assert_eq!(res.status, StatusCode::OK, "{res:?}");

    let alice = login(&actix, None, "alice").await;
    let bob = login(&axum, None, "bob").await;
    for base in [&actix, &axum] {
        assert_eq!(whoami(base, &alice).await, (StatusCode::OK, "alice".into()));
        assert_eq!(whoami(base, &bob).await, (StatusCode::OK, "bob".into()));
    }

    // Planned failover.
    let t = Arc::clone(&topology);
    tokio::task::spawn_blocking(move || t.failover())
        .await
        .unwrap();
    let mut failed = 0;
    for base in [&actix, &axum] {
        for (cookie, user) in [(&alice, "alice"), (&bob, "bob")] {
            let (body, failures) = whoami_until_ok(base, cookie, Duration::from_secs(10)).await;
            assert_eq!(body, user);
            failed += failures;
        }
    }
    println!("demos, planned failover: {failed} failed /whoami requests");
    // Logging in works on the new master.
    let carol = login(&axum, None, "carol").await;

    // Crash, after making sure the sessions reached the replicas.
    let t = Arc::clone(&topology);
    let acked = tokio::task::spawn_blocking(move || t.wait_replication(Duration::from_secs(10)))
        .await
        .unwrap();
    assert!(acked >= 1);
    let t = Arc::clone(&topology);
    tokio::task::spawn_blocking(move || t.kill_master())
        .await
        .unwrap();
    let killed = Instant::now();
    let mut failed = 0;
    for base in [&actix, &axum] {
        for (cookie, user) in [(&alice, "alice"), (&bob, "bob"), (&carol, "carol")] {
            let (body, failures) = whoami_until_ok(base, cookie, Duration::from_secs(30)).await;
            assert_eq!(body, user);
            failed += failures;
        }
    }
    println!(
        "demos, master crash: every user logged in again {:?} after the kill ({failed} 503 answers before)",
        killed.elapsed()
    );
    actix_handle.stop(false).await;
}
