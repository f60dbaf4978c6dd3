//! `rediss://` URLs against a real TLS `redis-server` (session-testkit's `ServerOptions::tls`,
//! with a CA made at test time that no system trusts). Every test runs for both connection
//! strategies: one shared connection, and a pool (`max_connections`).

use std::time::{Duration, Instant};

use session_core::{
    backends::redis::RedisBackend, Changes, SessionBackend, SessionConfig, SessionId, SessionState,
    StoreError,
};
use session_testkit::{RedisServer, ServerOptions};

/// (single_connection_client, max_connections): the single connection, then the pool.
const STRATEGIES: [(bool, Option<usize>); 2] = [(true, None), (false, Some(4))];

const PASSWORD: &str = "tls-hunter2";

fn tls_server() -> RedisServer {
    RedisServer::start_with(ServerOptions::new().tls(true).password(PASSWORD))
}

fn backend(url: String, (single, max): (bool, Option<usize>)) -> RedisBackend {
    RedisBackend::from_config(&SessionConfig {
        url: Some(url),
        single_connection_client: single,
        max_connections: max,
        socket_timeout: Some(1.0),
        socket_connect_timeout: Some(1.0),
        ..SessionConfig::default()
    })
    .unwrap()
}

/// `rediss://:PASSWORD@127.0.0.1:TLS_PORT` plus `suffix`.
fn tls_url(server: &RedisServer, suffix: &str) -> String {
    format!(
        "rediss://:{PASSWORD}@127.0.0.1:{}{suffix}",
        server.tls_port().unwrap()
    )
}

fn state(pairs: &[(&str, &str)]) -> SessionState {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The local addresses (`laddr=`) of every client connected to the server except the
/// `CLIENT LIST` caller itself (the kit, over the plain port).
fn client_ports(server: &RedisServer) -> Vec<String> {
    let list: String = server.cmd(&["CLIENT", "LIST"]);
    list.lines()
        .filter(|line| !line.contains(" cmd=client|list"))
        .filter_map(|line| {
            line.split(' ')
                .find_map(|field| field.strip_prefix("laddr="))
                .map(str::to_owned)
        })
        .collect()
}

fn assert_certificate_error(err: &StoreError) {
    let text = err.to_string();
    assert!(err.is_unavailable(), "expected Unavailable, got {err:?}");
    assert!(
        text.contains("certificate") && text.contains("UnknownIssuer"),
        "{text}"
    );
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(!format!("{err:?}").contains(PASSWORD), "{err:?}");
}

#[tokio::test]
async fn insecure_rediss_works_over_the_tls_port() {
    let server = tls_server();
    for strategy in STRATEGIES {
        let backend = backend(tls_url(&server, "/#insecure"), strategy);
        let id = SessionId::generate();
        let ttl = Some(Duration::from_secs(60));

        assert!(backend
            .create(&id, &state(&[("user", "\"ada\"")]), ttl)
            .await
            .unwrap());
        let changes = Changes {
            set: state(&[("n", "1")]),
            remove: vec!["user".into()],
        };
        assert!(backend.apply(&id, &changes, ttl).await.unwrap());
        assert_eq!(
            backend.load(&id, None).await.unwrap(),
            Some(state(&[("n", "1")]))
        );
        assert!(backend.health().await[0].up);

        // The store's connections are on the TLS port, never the plain one.
        let ports = client_ports(&server);
        let tls = format!("laddr=127.0.0.1:{}", server.tls_port().unwrap());
        assert!(!ports.is_empty(), "no client connection seen");
        assert!(
            ports.iter().all(|addr| format!("laddr={addr}") == tls),
            "{strategy:?}: {ports:?}"
        );

        assert!(backend.delete(&id).await.unwrap());
        assert_eq!(backend.load(&id, None).await.unwrap(), None);
        drop(backend);
    }
}

#[tokio::test]
async fn untrusted_certificate_fails_clearly() {
    let server = tls_server();
    for strategy in STRATEGIES {
        // Verification on: the test CA is in no system store.
        let backend = backend(tls_url(&server, "/0"), strategy);
        let id = SessionId::generate();
        let err = backend.load(&id, None).await.unwrap_err();
        assert_certificate_error(&err);
        let err = backend
            .create(&id, &state(&[("a", "1")]), None)
            .await
            .unwrap_err();
        assert_certificate_error(&err);
        let health = &backend.health().await[0];
        assert!(!health.up);
        assert!(!health.error.as_deref().unwrap().contains(PASSWORD));
        assert!(!health.location.contains(PASSWORD));
        // Nothing was written through a connection that failed verification.
        assert_eq!(server.cmd::<i64>(&["DBSIZE"]), 0);
    }
}

#[tokio::test]
async fn plain_redis_url_to_the_tls_port_fails_without_hanging() {
    let server = tls_server();
    for strategy in STRATEGIES {
        let url = format!(
            "redis://:{PASSWORD}@127.0.0.1:{}",
            server.tls_port().unwrap()
        );
        let backend = backend(url, strategy);
        let started = Instant::now();
        let err = backend
            .load(&SessionId::generate(), None)
            .await
            .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(err.is_unavailable(), "{err:?}");
        assert!(!err.to_string().contains(PASSWORD), "{err}");
        assert!(!format!("{err:?}").contains(PASSWORD), "{err:?}");
    }
}

#[tokio::test]
async fn wrong_password_over_tls_does_not_leak_it() {
    let server = tls_server();
    for strategy in STRATEGIES {
        let url = format!(
            "rediss://:not-the-password@127.0.0.1:{}/#insecure",
            server.tls_port().unwrap()
        );
        let backend = backend(url, strategy);
        let err = backend
            .load(&SessionId::generate(), None)
            .await
            .unwrap_err();
        assert!(err.is_unavailable(), "{err:?}");
        let text = format!("{err} {err:?} {backend:?}");
        assert!(!text.contains("not-the-password"), "{text}");
    }
}
