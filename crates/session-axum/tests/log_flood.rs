//! A hostile `Cookie` header (thousands of cookies of our name) costs one warning line and a
//! normal answer, never a line per cookie (issue 9, item 2: one 120 KB header used to write
//! 20,001 WARN lines).

mod common;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{http::StatusCode, routing::get, Router};
use common::send;
use session_axum::{Session, SessionError, SessionLayer};
use session_core::{backends::redis::RedisBackend, SessionConfig, SessionStore};
use session_testkit::RedisServer;
use tracing::{
    field::{Field, Visit},
    Level,
};
use tracing_subscriber::{layer::Context, prelude::*, Layer};

/// Every event, as its level and its fields in text: what an operator's log would get.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<(Level, String)>>>);

struct Text<'a>(&'a mut String);

impl Visit for Text<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={value:?}", field.name()));
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut line = String::new();
        event.record(&mut Text(&mut line));
        self.0
            .lock()
            .unwrap()
            .push((*event.metadata().level(), line));
    }
}

impl Capture {
    /// The lines at WARN or above.
    fn lines(&self) -> Vec<String> {
        let lines = self.0.lock().unwrap();
        lines
            .iter()
            .filter(|(level, _)| *level <= Level::WARN)
            .map(|(_, line)| line.clone())
            .collect()
    }

    /// Every line, TRACE included.
    fn all_lines(&self) -> Vec<String> {
        let lines = self.0.lock().unwrap();
        lines.iter().map(|(_, line)| line.clone()).collect()
    }
}

async fn counter(session: Session) -> Result<String, SessionError> {
    let n = session.get::<u64>("n").await?.unwrap_or(0) + 1;
    session.insert("n", &n).await?;
    Ok(n.to_string())
}

fn app() -> Router {
    let layer = SessionLayer::new(SessionStore::memory(), common::key());
    Router::new().route("/counter", get(counter)).layer(layer)
}

/// 20,000 copies of `id=<value>`: about 120 KB with the value of the report.
fn flood(value: &str) -> String {
    vec![format!("id={value}"); 20_000].join("; ")
}

#[tokio::test]
async fn twenty_thousand_duplicate_cookies_log_one_warning_and_answer_normally() {
    let capture = Capture::default();
    let _guard = tracing_subscriber::registry()
        .with(capture.clone())
        .set_default();
    let app = app();

    // A value we can look for: no cookie value may reach the log.
    let header = flood("FLOODVALUE");
    assert!(header.len() > 200_000, "{}", header.len());
    let started = Instant::now();
    let res = send(&app, "GET", "/counter", Some(&header)).await;
    let elapsed = started.elapsed();
    assert_eq!((res.status, res.body.as_str()), (StatusCode::OK, "1"));
    let lines = capture.lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("skipped=19992"), "{lines:?}");
    assert!(!lines[0].contains("FLOODVALUE"), "{lines:?}");
    // Linear work: 20,000 cookies parse in milliseconds; a quadratic pass would take far longer.
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");

    // The 120 KB shape of the report (`id=x`), and a live session cookie in front of the flood:
    // the session is found, and the flood after it still costs one line.
    capture.0.lock().unwrap().clear();
    let first = send(&app, "GET", "/counter", None).await;
    let pair = first.cookie_pair();
    let res = send(
        &app,
        "GET",
        "/counter",
        Some(&format!("{pair}; {}", flood("x"))),
    )
    .await;
    assert_eq!((res.status, res.body.as_str()), (StatusCode::OK, "2"));
    let lines = capture.lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let (_, sealed) = pair.split_once('=').unwrap();
    assert!(!lines[0].contains(sealed), "{lines:?}");
}

#[tokio::test]
async fn one_valid_cookie_logs_nothing() {
    let capture = Capture::default();
    let _guard = tracing_subscriber::registry()
        .with(capture.clone())
        .set_default();
    let app = app();
    let pair = send(&app, "GET", "/counter", None).await.cookie_pair();
    let res = send(&app, "GET", "/counter", Some(&pair)).await;
    assert_eq!(res.body, "2");
    assert_eq!(capture.lines(), Vec::<String>::new());
}

/// A corrupt stored session (on a real Redis server) counts as no session: the request
/// answers normally, as a fresh session, with one warning line however often the handler
/// reads and writes the session; no line at any level holds the session id, the cookie or the
/// stored bytes.
#[tokio::test]
async fn a_corrupt_stored_session_logs_one_warning_and_no_secret() {
    let capture = Capture::default();
    let _guard = tracing_subscriber::registry()
        .with(capture.clone())
        .set_default();
    let redis = RedisServer::start();
    let config = SessionConfig {
        url: Some(redis.url()),
        ..SessionConfig::default()
    };
    let store = SessionStore::new(RedisBackend::from_config(&config).unwrap());
    let app = Router::new()
        .route("/counter", get(counter))
        .route(
            "/twice",
            get(|session: Session| async move {
                let n = session.get::<u64>("n").await?.unwrap_or(0) + 1;
                session.insert("n", &n).await?;
                let again = session.get::<u64>("n").await?;
                Ok::<_, SessionError>(format!("{n} {again:?}"))
            }),
        )
        .layer(SessionLayer::new(store, common::key()));
    let pair = send(&app, "GET", "/counter", None).await.cookie_pair();
    let id = common::open(&pair);
    let damaged = r#"v1:0000000000000001:{"=n":SECRETVALUE"#;
    let _: () = redis.cmd(&["SET", &format!("session:{}", id.as_str()), damaged]);

    capture.0.lock().unwrap().clear();
    let res = send(&app, "GET", "/twice", Some(&pair)).await;
    assert_eq!(
        (res.status, res.body.as_str()),
        (StatusCode::OK, "1 Some(1)")
    );
    assert_ne!(common::open(&res.cookie_pair()), id, "a fresh session");
    let warnings = capture.lines();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("corrupt"), "{warnings:?}");
    let (_, sealed) = pair.split_once('=').unwrap();
    for line in capture.all_lines() {
        for secret in [id.as_str(), sealed, "SECRETVALUE"] {
            assert!(!line.contains(secret), "{line}");
        }
    }
}

/// Every event at every level, TRACE included, through a session's life on a Redis server
/// that needs a password: a login that renews the id, reads and writes, a logout, an outage
/// (the server stopped) and its recovery, and a wrong password. No line holds the password,
/// a session id, a cookie value or a session value.
#[tokio::test]
async fn no_event_at_any_level_holds_a_secret() {
    let capture = Capture::default();
    let _guard = tracing_subscriber::registry()
        .with(capture.clone())
        .set_default();
    let password = "PASSWORDMARKER";
    let redis = RedisServer::start_with(session_testkit::ServerOptions::new().password(password));
    let config = SessionConfig::builder()
        .set("session_redis_host", "127.0.0.1")
        .set("session_redis_port", &redis.port().to_string())
        .set("session_redis_password", password)
        .set("session_redis_socket_timeout", "0.5")
        .build()
        .unwrap();
    let store = SessionStore::from_config(&config).await.unwrap();
    let app = Router::new()
        .route(
            "/login",
            get(|session: Session| async move {
                session.insert("user", "VALUEMARKER").await?;
                session.renew().await
            }),
        )
        .route("/counter", get(counter))
        .route(
            "/logout",
            get(|session: Session| async move { session.purge().await }),
        )
        .layer(SessionLayer::new(store, common::key()));

    let first = send(&app, "GET", "/counter", None).await.cookie_pair();
    let login = send(&app, "GET", "/login", Some(&first)).await;
    assert_eq!(login.status, StatusCode::OK);
    let pair = login.cookie_pair();
    assert_eq!(send(&app, "GET", "/counter", Some(&pair)).await.body, "2");
    redis.stop();
    let down = send(&app, "GET", "/counter", Some(&pair)).await;
    assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
    redis.restart();
    let mut back = send(&app, "GET", "/counter", Some(&pair)).await;
    for _ in 0..50 {
        if back.status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        back = send(&app, "GET", "/counter", Some(&pair)).await;
    }
    assert_eq!(back.status, StatusCode::OK, "recovered");
    assert_eq!(
        send(&app, "GET", "/logout", Some(&pair)).await.status,
        StatusCode::OK
    );
    let wrong = SessionConfig::builder()
        .set("session_redis_host", "127.0.0.1")
        .set("session_redis_port", &redis.port().to_string())
        .set("session_redis_password", "WRONGPASSWORDMARKER")
        .build()
        .unwrap();
    // Refused when the store is built or at its first operation, and named either way
    // without the password.
    let text = match SessionStore::from_config(&wrong).await {
        Ok(store) => {
            let err = store.load(&common::open(&pair)).await.unwrap_err();
            format!("{err} {err:?}")
        }
        Err(err) => format!("{err} {err:?}"),
    };
    assert!(!text.contains("WRONGPASSWORDMARKER"), "{text}");

    let lines = capture.all_lines();
    assert!(!lines.is_empty());
    let mut secrets = vec![
        password.to_owned(),
        "WRONGPASSWORDMARKER".to_owned(),
        "VALUEMARKER".to_owned(),
    ];
    for cookie in [&first, &pair] {
        secrets.push(common::open(cookie).as_str().to_owned());
        secrets.push(cookie.split_once('=').unwrap().1.to_owned());
    }
    for line in &lines {
        for secret in &secrets {
            assert!(!line.contains(secret.as_str()), "{line}");
        }
    }
}

/// The same on a multi-backend (Redis `read`, `write` first, then the file store `read`,
/// `delete`) and a pool: a corrupt stored session is one warning line per request there too,
/// not one per backend that was asked and one more for the answer.
#[tokio::test]
async fn a_corrupt_stored_session_on_a_multi_backend_or_a_pool_logs_one_warning() {
    let capture = Capture::default();
    let _guard = tracing_subscriber::registry()
        .with(capture.clone())
        .set_default();
    let (redis, other) = (RedisServer::start(), RedisServer::start());
    let dir = tempfile::tempdir().unwrap();
    let multi = format!(
        "({{'backend': 'redis', 'modes': ['read', 'write'], 'setting': {{'SESSION_REDIS_URL': '{}'}}}},
          {{'backend': 'files', 'modes': ['read', 'delete'], 'setting': {{'SESSION_REDIS_MODE': False, 'SESSION_FILESTORE_PATH': '{}'}}}})",
        redis.url(),
        dir.path().display()
    );
    let configs = [
        ("ACS_SESSION_MULTISESSIONS_POOL", multi),
        (
            "SESSION_REDIS_POOL",
            RedisServer::pool_setting(&[&redis, &other]),
        ),
    ];
    for (name, value) in configs {
        let config = SessionConfig::from_env_vars([(name.to_owned(), value)]).unwrap();
        let store = SessionStore::from_config(&config).await.unwrap();
        let app = Router::new()
            .route("/counter", get(counter))
            .layer(SessionLayer::new(store, common::key()));
        let pair = send(&app, "GET", "/counter", None).await.cookie_pair();
        let id = common::open(&pair);
        let damaged = r#"v1:0000000000000001:{"=n":SECRETVALUE"#;
        for server in [&redis, &other] {
            let key = format!("session:{}", id.as_str());
            if server.cmd::<i64>(&["EXISTS", &key]) == 1 {
                let _: () = server.cmd(&["SET", &key, damaged]);
            }
        }
        capture.0.lock().unwrap().clear();
        let res = send(&app, "GET", "/counter", Some(&pair)).await;
        assert_eq!(
            (res.status, res.body.as_str()),
            (StatusCode::OK, "1"),
            "{name}"
        );
        let warnings = capture.lines();
        assert_eq!(warnings.len(), 1, "{name}: {warnings:?}");
        for line in capture.all_lines() {
            assert!(
                !line.contains("SECRETVALUE") && !line.contains(id.as_str()),
                "{line}"
            );
        }
    }
}

/// `TowerStore` without `TowerScopeLayer`: its first delete (a logout, or a login's
/// `cycle_id`) logs one warning naming the layer, once per `TowerStore::new`, never a
/// session id; through the layer, none.
#[tokio::test]
async fn a_tower_store_outside_its_scope_warns_once_naming_the_layer() {
    use session_axum::{TowerScopeLayer, TowerStore};
    use tower_sessions::{Session as TowerSession, SessionManagerLayer};

    let capture = Capture::default();
    let _guard = tracing_subscriber::registry()
        .with(capture.clone())
        .set_default();
    let app = |scoped: bool| {
        let app = Router::new()
            .route(
                "/login",
                get(|s: TowerSession| async move {
                    let _ = s.get::<String>("user").await.unwrap();
                    s.cycle_id().await.unwrap();
                    s.insert("user", "alice").await.unwrap();
                }),
            )
            .route(
                "/logout",
                get(|s: TowerSession| async move {
                    let _ = s.get::<String>("user").await.unwrap();
                    s.flush().await.unwrap();
                }),
            )
            .layer(
                SessionManagerLayer::new(TowerStore::new(SessionStore::memory()))
                    .with_secure(false),
            );
        if scoped {
            app.layer(TowerScopeLayer::new())
        } else {
            app
        }
    };
    let naming = |capture: &Capture| {
        capture
            .lines()
            .into_iter()
            .filter(|line| line.contains("TowerScopeLayer"))
            .collect::<Vec<_>>()
    };
    for scoped in [false, true] {
        capture.0.lock().unwrap().clear();
        let app = app(scoped);
        let mut cookies = Vec::new();
        for _ in 0..3 {
            let login = send(&app, "GET", "/login", None).await;
            let cookie = login.cookie_pair();
            // A second login of the session cycles a loaded id; then the logout.
            let again = send(&app, "GET", "/login", Some(&cookie)).await;
            let cookie = again.cookie_pair();
            let logout = send(&app, "GET", "/logout", Some(&cookie)).await;
            assert_eq!(logout.status, StatusCode::OK);
            cookies.push(cookie);
        }
        let lines = naming(&capture);
        assert_eq!(
            lines.len(),
            usize::from(!scoped),
            "scoped: {scoped}: {lines:?}"
        );
        for line in capture.all_lines() {
            for cookie in &cookies {
                let value = cookie.split_once('=').unwrap().1;
                assert!(!line.contains(value), "a session id in the log: {line}");
            }
        }
    }
}

/// `TowerScopeLayer` placed inside tower-sessions' layer (the `.layer` calls the wrong way
/// round): the scope covers the handler only, so a login's held delete is sent when the
/// handler ends, before their layer's `create`, and the login's ordering is lost, as without
/// the layer. Every delete is held inside the scope, so the warning of a missing layer never
/// came: the misplacement was silent. The first `create` outside the scope of an adapter that
/// has held a delete logs one warning naming the layer.
#[tokio::test]
async fn a_tower_scope_layer_inside_the_session_layer_warns_once() {
    use session_axum::{TowerScopeLayer, TowerStore};
    use tower_sessions::{Session as TowerSession, SessionManagerLayer};

    let capture = Capture::default();
    let _guard = tracing_subscriber::registry()
        .with(capture.clone())
        .set_default();
    let app = Router::new()
        .route(
            "/login",
            get(|s: TowerSession| async move {
                let _ = s.get::<String>("user").await.unwrap();
                s.cycle_id().await.unwrap();
                s.insert("user", "alice").await.unwrap();
            }),
        )
        // The wrong way round: the scope inside tower-sessions' layer.
        .layer(TowerScopeLayer::new())
        .layer(
            SessionManagerLayer::new(TowerStore::new(SessionStore::memory())).with_secure(false),
        );
    for _ in 0..3 {
        let login = send(&app, "GET", "/login", None).await;
        let again = send(&app, "GET", "/login", Some(&login.cookie_pair())).await;
        assert_eq!(again.status, StatusCode::OK);
    }
    let lines: Vec<String> = capture
        .lines()
        .into_iter()
        .filter(|line| line.contains("TowerScopeLayer"))
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
}
