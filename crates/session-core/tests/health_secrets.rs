//! `SessionStore::health` is what the demos' `/healthz` serves, unauthenticated, as JSON. The
//! README promises that passwords never reach "logs, error messages or `Debug` output", and
//! `BackendHealth::location` says "without credentials": `secrets.rs` checks the renderings
//! of a configuration, this checks the health reports of running stores on real servers that
//! need the password, in every shape a password is given (its own option, a URL's user-info
//! or `password=` query, a pool member's URL, a multi-backend's setting), while the servers
//! are up, with a wrong password, and while they are down: the report (its `Debug` and its
//! JSON) never holds the password.

use session_core::{SessionConfig, SessionStore};
use session_testkit::{RedisServer, ServerOptions};

const SECRET: &str = "Hunter2Zq9health";

/// Every configuration shape, as `(name, entries)`, for a server at `port` whose password is
/// `password` (the planted secret or a wrong one that holds it).
fn shapes(port: u16, password: &str) -> Vec<(&'static str, Vec<(String, String)>)> {
    let pair = |k: &str, v: String| (k.to_owned(), v);
    vec![
        (
            "host, port and password",
            vec![
                pair("SESSION_REDIS_HOST", "127.0.0.1".into()),
                pair("SESSION_REDIS_PORT", port.to_string()),
                pair("SESSION_REDIS_PASSWORD", password.into()),
            ],
        ),
        (
            "url user-info",
            vec![pair(
                "SESSION_REDIS_URL",
                format!("redis://default:{password}@127.0.0.1:{port}/0"),
            )],
        ),
        (
            "url password as the only user-info",
            vec![pair(
                "SESSION_REDIS_URL",
                format!("redis://:{password}@127.0.0.1:{port}"),
            )],
        ),
        (
            "pool member url",
            vec![pair(
                "SESSION_REDIS_POOL",
                format!("[{{'SESSION_REDIS_URL': 'redis://:{password}@127.0.0.1:{port}/0'}}]"),
            )],
        ),
        (
            "pool member password",
            vec![pair(
                "SESSION_REDIS_POOL",
                format!(
                    "[{{'SESSION_REDIS_HOST': '127.0.0.1', 'SESSION_REDIS_PORT': {port}, \
                     'SESSION_REDIS_PASSWORD': '{password}'}}]"
                ),
            )],
        ),
        (
            "multi-backend setting",
            vec![pair(
                "SESSION_REDIS_MULTI_BACKENDS",
                format!(
                    "[{{'backend': 'r', 'modes': ['read', 'write', 'delete'], 'setting': \
                     {{'SESSION_REDIS_URL': 'redis://:{password}@127.0.0.1:{port}/0'}}}}]"
                ),
            )],
        ),
    ]
}

fn assert_clean(report: &[session_core::BackendHealth], case: &str) {
    let debug = format!("{report:?}");
    let json = serde_json::to_string(report).unwrap();
    for text in [&debug, &json] {
        assert!(!text.contains(SECRET), "{case}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_never_hold_a_password() {
    let server = RedisServer::start_with(ServerOptions::new().password(SECRET));
    let wrong = format!("wrong{SECRET}");
    let mut reports = [0, 0];
    for (password, up) in [(SECRET, true), (wrong.as_str(), false)] {
        for (name, entries) in shapes(server.port(), password) {
            let case = format!("{name}, right password: {up}");
            let mut entries = entries;
            entries.push(("SESSION_REDIS_SOCKET_TIMEOUT".into(), "1".into()));
            entries.push(("SESSION_REDIS_SOCKET_CONNECT_TIMEOUT".into(), "1".into()));
            let config = SessionConfig::from_sources(None, entries).expect(&case);
            // A store that cannot authenticate may be refused when it is built; that error
            // holds no password either.
            let store = match SessionStore::from_config(&config).await {
                Ok(store) => store,
                Err(err) => {
                    assert!(!up, "{case}: {err}");
                    let text = format!("{err} {err:?}");
                    assert!(!text.contains(SECRET), "{case}: {text}");
                    continue;
                }
            };
            let report = store.health().await;
            assert!(!report.is_empty(), "{case}");
            assert_eq!(report.iter().all(|h| h.up), up, "{case}: {report:?}");
            assert_clean(&report, &case);
            reports[usize::from(up)] += 1;
            if up {
                // Down: the report names the failure, still without the password. (A new
                // store: `health` reuses a check's answer for a second.)
                server.kill();
                let store = SessionStore::from_config(&config).await.expect(&case);
                let report = store.health().await;
                assert!(report.iter().all(|h| !h.up), "{case}: {report:?}");
                assert!(report.iter().all(|h| h.error.is_some()), "{case}");
                assert_clean(&report, &format!("{case}, server down"));
                server.restart();
            }
        }
    }
    // Every shape was reported on with the right password, and the wrong one reached a report
    // (not only a refusal at build time) at least once.
    assert_eq!(reports[1], shapes(0, "").len(), "{reports:?}");
    assert!(reports[0] > 0, "{reports:?}");
}
