//! Both demo servers on a Redis Cluster, configured only through environment variables (read
//! by `session_e2e::build_store`, exactly as the demo binaries read them): log in on one,
//! `/whoami` on the other, a counter shared by both, logout everywhere.
//!
//! One test in this binary: it sets process environment variables, which no other test of
//! the same process may race with.

mod common;

use axum::http::StatusCode;
use common::checks::{login, send};
use session_core::Mode;
use session_testkit::ClusterTopology;

/// 64 bytes of cookie key material, shared by both demos (what `SESSION_SECRET` would give).
const KEY: &[u8; 64] = b"cluster-demo-secret-cluster-demo-secret-cluster-demo-secret-1234";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn demos_share_sessions_on_a_cluster() {
    let cluster = ClusterTopology::start();
    std::env::set_var("SESSION_REDIS_MODE", "cluster");
    std::env::set_var("SESSION_REDIS_HOST", cluster.seed_hosts());

    // Each demo builds its own store, as two processes would.
    let common::env_demos::EnvDemos {
        actix,
        axum,
        actix_handle,
    } = common::env_demos::start(KEY, Mode::Cluster).await;

    let res = send("GET", &format!("{axum}/healthz"), None, None).await;
    assert_eq!(res.status, StatusCode::OK, "{res:?}");
    assert_eq!(res.body.matches("\"up\":true").count(), 3, "{}", res.body);

    // Log in on actix, ask axum; and the other way round.
    let alice = login(&actix, None, "alice").await;
    let bob = login(&axum, None, "bob").await;
    for base in [&actix, &axum] {
        for (cookie, user) in [(&alice, "alice"), (&bob, "bob")] {
            let res = send("GET", &format!("{base}/whoami"), Some(cookie), None).await;
            assert_eq!((res.status, res.body.as_str()), (StatusCode::OK, user));
        }
    }
    // One counter, whichever server answers.
    for (i, base) in [&actix, &axum, &actix, &axum].into_iter().enumerate() {
        let res = send("GET", &format!("{base}/counter"), Some(&alice), None).await;
        assert_eq!(res.body, (i + 1).to_string());
    }
    // Logout on axum ends the session on actix too.
    let res = send("POST", &format!("{axum}/logout"), Some(&alice), None).await;
    assert_eq!(res.status, StatusCode::OK);
    let res = send("GET", &format!("{actix}/whoami"), Some(&alice), None).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);

    actix_handle.stop(false).await;
}
