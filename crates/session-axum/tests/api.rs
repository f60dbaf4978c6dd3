//! The `Session` API that tower-sessions and actix-session users expect, and the cookie
//! settings from configuration: each behaviour on the memory store, the file store and a real
//! Redis server (each behind session-core's `ProbeBackend`, which records the TTL of every call).

mod common;

use std::time::Duration;

use axum::{
    http::StatusCode,
    routing::{get, post},
    Router,
};
use common::{key, open, send, Answer};
use session_axum::{
    CookieSecurity, Expiry, Key, OffsetDateTime, Session, SessionError, SessionLayer, EXPIRY_KEY,
};
use session_core::{
    backends::{file::FileBackend, redis::RedisBackend},
    testing::probe::{Call, Op, ProbeBackend},
    SessionConfig, SessionStore,
};
use session_testkit::RedisServer;

/// One store of each kind; the guards keep the directory and the server alive.
struct Stores {
    _dir: tempfile::TempDir,
    _redis: RedisServer,
    all: Vec<(&'static str, ProbeBackend)>,
}

fn stores() -> Stores {
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start();
    let file = FileBackend::new(dir.path().join("sessions")).unwrap();
    let config = SessionConfig {
        url: Some(redis.url()),
        ..SessionConfig::default()
    };
    let all = vec![
        ("memory", ProbeBackend::memory()),
        ("file", ProbeBackend::new(file)),
        (
            "redis",
            ProbeBackend::new(RedisBackend::from_config(&config).unwrap()),
        ),
    ];
    Stores {
        _dir: dir,
        _redis: redis,
        all,
    }
}

async fn login(session: Session) -> Result<(), SessionError> {
    session.insert("user", "alice").await?;
    session.renew().await
}

async fn remember_me(session: Session) -> Result<(), SessionError> {
    session.insert("user", "alice").await?;
    session
        .set_expiry(Some(Expiry::OnInactivity(Duration::from_secs(30 * 86_400))))
        .await
}

async fn counter(session: Session) -> Result<String, SessionError> {
    let n = session.get::<u64>("n").await?.unwrap_or(0) + 1;
    session.insert("n", &n).await?;
    Ok(n.to_string())
}

async fn describe(session: Session) -> Result<String, SessionError> {
    Ok(format!(
        "empty={} keys={:?} has_user={} entries={}",
        session.is_empty().await?,
        session.keys().await?,
        session.contains_key("user").await?,
        serde_json::to_string(&session.entries().await?).unwrap(),
    ))
}

async fn id(session: Session) -> String {
    session.id().await.unwrap_or_else(|| "none".into())
}

fn routes() -> Router {
    Router::new()
        .route("/none", get(|| async { "untouched" }))
        .route("/login", post(login))
        .route("/remember", post(remember_me))
        .route("/counter", get(counter))
        .route("/describe", get(describe))
        .route("/id", get(id))
        .route(
            "/forget-me",
            post(|session: Session| async move { session.set_expiry(None).await }),
        )
        .route(
            "/until",
            post(|session: Session| async move {
                session.insert("user", "alice").await?;
                let at = OffsetDateTime::now_utc() + Duration::from_secs(3600);
                session.set_expiry(Some(Expiry::AtDateTime(at))).await
            }),
        )
        .route(
            "/past",
            post(|session: Session| async move {
                session.insert("user", "alice").await?;
                let at = OffsetDateTime::now_utc() - Duration::from_secs(1);
                session.set_expiry(Some(Expiry::AtDateTime(at))).await
            }),
        )
        .route(
            "/short",
            post(|session: Session| async move {
                session.insert("user", "alice").await?;
                let expiry = Expiry::OnInactivity(Duration::from_secs(60));
                session.set_expiry(Some(expiry)).await
            }),
        )
        .route(
            "/browser",
            post(|session: Session| async move {
                session.insert("user", "alice").await?;
                session.set_expiry(Some(Expiry::OnSessionEnd)).await
            }),
        )
        .route(
            "/reserved",
            post(|session: Session| async move { session.insert(EXPIRY_KEY, "forever").await }),
        )
        .route(
            "/logout-then-fail",
            post(|session: Session| async move {
                session.purge().await?;
                session.insert("flash", "\"bye\"").await?;
                Ok::<_, SessionError>((StatusCode::INTERNAL_SERVER_ERROR, "failed"))
            }),
        )
        .route(
            "/fail",
            post(|session: Session| async move {
                session.insert("half", "done").await?;
                Ok::<_, SessionError>((StatusCode::INTERNAL_SERVER_ERROR, "failed"))
            }),
        )
}

fn app(backend: &ProbeBackend, edit: impl FnOnce(SessionLayer) -> SessionLayer) -> Router {
    let store = SessionStore::new(backend.clone());
    routes().layer(edit(SessionLayer::new(store, key()).with_secure(false)))
}

fn attribute<'a>(answer: &'a Answer, name: &str) -> Option<&'a str> {
    let header = answer.set_cookie.first()?;
    header.split(';').skip(1).map(str::trim).find_map(|attr| {
        let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
        k.eq_ignore_ascii_case(name).then_some(v)
    })
}

fn is_removal(answer: &Answer) -> bool {
    answer.set_cookie.len() == 1 && attribute(answer, "Max-Age") == Some("0")
}

fn last_write_ttl(backend: &ProbeBackend) -> Option<Duration> {
    backend
        .calls()
        .iter()
        .rev()
        .find(|c| c.is_write() || c.op() == Op::Touch)
        .and_then(Call::ttl)
        .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_or_tampered_cookie_is_removed_when_the_session_is_touched() {
    for (name, backend) in stores().all {
        let app = app(&backend, |l| l);
        let pair = send(&app, "POST", "/login", None).await.cookie_pair();

        // Tampered: the handler touches the session, the browser is told to drop the cookie.
        let mut tampered = pair.clone();
        tampered.pop();
        tampered.push(if pair.ends_with('A') { 'B' } else { 'A' });
        let res = send(&app, "GET", "/describe", Some(&tampered)).await;
        assert!(is_removal(&res), "{name}: {res:?}");
        // Untouched: no store call, no cookie (laziness wins).
        let res = send(&app, "GET", "/none", Some(&tampered)).await;
        assert!(res.set_cookie.is_empty(), "{name}: {res:?}");

        // Naming a session the store no longer has.
        backend.take_calls();
        let store = SessionStore::new(backend.clone());
        assert!(store.delete(&open(&pair)).await.unwrap());
        let res = send(&app, "GET", "/describe", Some(&pair)).await;
        assert!(is_removal(&res), "{name}: {res:?}");
        assert!(res.body.starts_with("empty=true"), "{name}: {res:?}");
        // A write in the same request makes a new session instead: its cookie replaces it.
        let res = send(&app, "GET", "/counter", Some(&pair)).await;
        assert_eq!(res.body, "1");
        assert!(!is_removal(&res) && res.set_cookie.len() == 1, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_keys_entries_and_emptiness() {
    for (name, backend) in stores().all {
        let app = app(&backend, |l| l);
        assert_eq!(send(&app, "GET", "/id", None).await.body, "none");
        let res = send(&app, "GET", "/describe", None).await;
        assert_eq!(
            res.body, "empty=true keys=[] has_user=false entries=[]",
            "{name}"
        );
        let pair = send(&app, "POST", "/login", None).await.cookie_pair();
        send(&app, "GET", "/counter", Some(&pair)).await;
        let res = send(&app, "GET", "/describe", Some(&pair)).await;
        assert_eq!(
            res.body,
            r#"empty=false keys=["n", "user"] has_user=true entries=[["n",1],["user","alice"]]"#,
            "{name}"
        );
        // The id is a stable fingerprint, not the credential.
        let id = open(&pair);
        let shown = send(&app, "GET", "/id", Some(&pair)).await.body;
        assert_eq!(shown, id.fingerprint(), "{name}");
        assert_eq!(send(&app, "GET", "/id", Some(&pair)).await.body, shown);
        assert!(!id.as_str().contains(&shown) && !pair.contains(&shown));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_expiry_drives_the_store_ttl_and_the_cookie_and_is_kept() {
    const MONTH: Duration = Duration::from_secs(30 * 86_400);
    for (name, backend) in stores().all {
        let app = app(&backend, |l| l);
        // The layer's defaults: a browser-session cookie, one day in the store.
        let res = send(&app, "POST", "/login", None).await;
        assert_eq!(attribute(&res, "Max-Age"), None, "{name}");
        assert_eq!(last_write_ttl(&backend), Some(Duration::from_secs(86_400)));

        // Remember me: 30 days in the store and in the cookie, on this and later writes.
        let res = send(&app, "POST", "/remember", Some(&res.cookie_pair())).await;
        assert_eq!(
            attribute(&res, "Max-Age"),
            Some("2592000"),
            "{name}: {res:?}"
        );
        assert_eq!(last_write_ttl(&backend), Some(MONTH), "{name}");
        let pair = res.cookie_pair();
        let res = send(&app, "GET", "/counter", Some(&pair)).await;
        assert_eq!(attribute(&res, "Max-Age"), Some("2592000"), "{name}");
        assert_eq!(last_write_ttl(&backend), Some(MONTH), "{name}");
        // Hidden from the application's keys.
        let res = send(&app, "GET", "/describe", Some(&pair)).await;
        assert!(
            res.body.contains(r#"keys=["n", "user"]"#),
            "{name}: {res:?}"
        );
        // A request that changes nothing writes nothing.
        backend.take_calls();
        send(&app, "GET", "/describe", Some(&pair)).await;
        assert_eq!(backend.calls(), vec![Call::Load(None)], "{name}");

        // Back to the layer's settings.
        let res = send(&app, "POST", "/forget-me", Some(&pair)).await;
        assert_eq!(attribute(&res, "Max-Age"), None, "{name}: {res:?}");
        assert_eq!(
            last_write_ttl(&backend),
            Some(Duration::from_secs(86_400)),
            "{name}"
        );

        // An absolute deadline: `Expires`, and a store TTL that ends there.
        let res = send(&app, "POST", "/until", None).await;
        assert!(attribute(&res, "Expires").is_some(), "{name}: {res:?}");
        assert_eq!(attribute(&res, "Max-Age"), None, "{name}");
        let ttl = last_write_ttl(&backend).unwrap();
        assert!(ttl <= Duration::from_secs(3600) && ttl > Duration::from_secs(3500));

        // A browser-session cookie whatever the layer says.
        let persistent = self::app(&backend, |l| l.with_max_age(Some(Duration::from_secs(60))));
        let res = send(&persistent, "POST", "/browser", None).await;
        assert_eq!(attribute(&res, "Max-Age"), None, "{name}: {res:?}");

        // The key is the layer's.
        let res = send(&app, "POST", "/reserved", None).await;
        assert_eq!(res.status, StatusCode::INTERNAL_SERVER_ERROR, "{name}");
        assert!(res.set_cookie.is_empty());
    }
}

/// `Expiry::OnInactivity` of zero ends the session at once, as a deadline in the past does:
/// a store TTL of zero is the TTL rule's "none", so the session was stored without expiry
/// and a copy of the cookie (whose `Max-Age=0` only the browser honours) kept it forever.
/// Sub-second durations are kept as whole seconds, so they came back as zero on the next
/// request's write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_inactivity_expiry_never_stores_a_session_without_expiry() {
    let app_with = |backend: &ProbeBackend| {
        Router::new()
            .route(
                "/inactive",
                post(|session: Session| async move {
                    session.insert("user", "alice").await?;
                    session
                        .set_expiry(Some(Expiry::OnInactivity(Duration::ZERO)))
                        .await
                }),
            )
            .layer(SessionLayer::new(SessionStore::new(backend.clone()), key()).with_secure(false))
    };
    for (name, backend) in stores().all {
        let app = app_with(&backend);
        let res = send(&app, "POST", "/inactive", None).await;
        assert_eq!(res.status, StatusCode::OK, "{name}: {res:?}");
        let id = open(&res.cookie_pair());
        let stored = SessionStore::new(backend.clone())
            .load_with_ttl(&id)
            .await
            .unwrap();
        // Gone already, or due within the second: never without expiry.
        assert!(
            !matches!(stored, Some((_, None))),
            "{name}: stored without expiry"
        );
        assert!(
            last_write_ttl(&backend).is_some_and(|ttl| !ttl.is_zero()),
            "{name}: {:?}",
            backend.calls()
        );
    }
}

/// With sliding expiry the load resets the TTL to the layer's, before the session's own
/// expiry is known; the write after the handler set the session's own TTL again. A request
/// whose write never came (a 5xx with `with_skip_save_on_server_error`, a handler that
/// panicked, a client gone before the answer) left the layer's TTL: a deadline of an hour
/// (`AtDateTime`, "whatever happens") stretched to a day, from any request of the cookie.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sliding_expiry_never_stretches_a_sessions_own_expiry_when_nothing_is_saved() {
    for (name, backend) in stores().all {
        let app = app(&backend, |l| {
            l.with_sliding_expiry(true)
                .with_skip_save_on_server_error(true)
        });
        let store = SessionStore::new(backend.clone());
        let pair = send(&app, "POST", "/until", None).await.cookie_pair();
        let id = open(&pair);
        let res = send(&app, "POST", "/fail", Some(&pair)).await;
        assert_eq!(res.status, StatusCode::INTERNAL_SERVER_ERROR, "{name}");
        let (_, ttl) = store.load_with_ttl(&id).await.unwrap().unwrap();
        assert!(
            ttl.is_some_and(|ttl| ttl <= Duration::from_secs(3600)),
            "{name}: the deadline an hour away now is {ttl:?} away"
        );

        // The same for an inactivity expiry shorter than the layer's TTL.
        let pair = send(&app, "POST", "/short", None).await.cookie_pair();
        let id = open(&pair);
        send(&app, "POST", "/fail", Some(&pair)).await;
        let (_, ttl) = store.load_with_ttl(&id).await.unwrap().unwrap();
        assert!(
            ttl.is_some_and(|ttl| ttl <= Duration::from_secs(60)),
            "{name}: 60 s of inactivity became {ttl:?}"
        );
    }
}

/// With `session_redis_key_expire` every write and touch sets that TTL whatever the session's
/// own expiry, so a sliding load has already set the right one: no second round trip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sliding_expiry_under_key_expire_touches_once() {
    for (name, backend) in stores().all {
        let store =
            SessionStore::new(backend.clone()).with_key_expire(Some(Duration::from_secs(600)));
        let app = routes().layer(
            SessionLayer::new(store, key())
                .with_secure(false)
                .with_sliding_expiry(true),
        );
        let pair = send(&app, "POST", "/short", None).await.cookie_pair();
        backend.take_calls();
        let res = send(&app, "GET", "/describe", Some(&pair)).await;
        assert!(res.body.contains("has_user=true"), "{name}: {res:?}");
        let calls = backend.calls();
        assert_eq!(calls.len(), 1, "{name}: {calls:?}");
    }
}

/// A session past its `AtDateTime` deadline is over, whatever TTL the store kept: a cookie
/// replayed after the deadline (its `Expires` stops only a browser) finds no session, and the
/// session is deleted. With `session_redis_key_expire`, which wins over the deadline on every
/// write, the store kept it for that long and the layer served it; without, a deadline passed
/// still gets a second of TTL, in which it was served too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_past_its_deadline_is_not_served() {
    for key_expire in [Some(Duration::from_secs(600)), None] {
        for (name, backend) in stores().all {
            let store = SessionStore::new(backend.clone()).with_key_expire(key_expire);
            for sliding in [false, true] {
                let app = routes().layer(
                    SessionLayer::new(store.clone(), key())
                        .with_secure(false)
                        .with_sliding_expiry(sliding),
                );
                let pair = send(&app, "POST", "/past", None).await.cookie_pair();
                let res = send(&app, "GET", "/describe", Some(&pair)).await;
                assert!(
                    res.body.contains("has_user=false"),
                    "{name}, key_expire {key_expire:?}, sliding {sliding}: {res:?}"
                );
                assert!(is_removal(&res), "{name}: {res:?}");
                assert_eq!(store.load(&open(&pair)).await.unwrap(), None, "{name}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_save_refreshes_the_ttl_and_the_cookie_on_every_request() {
    for (name, backend) in stores().all {
        let app = app(&backend, |l| {
            l.with_always_save(true)
                .with_max_age(Some(Duration::from_secs(600)))
                .with_ttl(Some(Duration::from_secs(600)))
        });
        let pair = send(&app, "POST", "/login", None).await.cookie_pair();
        backend.take_calls();
        // The handler does not touch the session: still refreshed (a load for the session's
        // own expiry, then the touch).
        let res = send(&app, "GET", "/none", Some(&pair)).await;
        assert_eq!(open(&res.cookie_pair()), open(&pair), "{name}");
        assert_eq!(attribute(&res, "Max-Age"), Some("600"));
        assert_eq!(
            backend.calls(),
            vec![
                Call::Load(None),
                Call::Touch(Some(Duration::from_secs(600)))
            ],
            "{name}"
        );
        // Without a session cookie nothing happens.
        backend.take_calls();
        let res = send(&app, "GET", "/none", None).await;
        assert!(
            res.set_cookie.is_empty() && backend.calls().is_empty(),
            "{name}"
        );
        // A session that is gone: its cookie is removed.
        SessionStore::new(backend.clone())
            .delete(&open(&pair))
            .await
            .unwrap();
        let res = send(&app, "GET", "/none", Some(&pair)).await;
        assert!(is_removal(&res), "{name}: {res:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refreshed_cookie_is_the_value_the_request_sent_and_a_new_id_is_sealed_afresh() {
    for (name, backend) in stores().all {
        let app = app(&backend, |l| l.with_max_age(Some(Duration::from_secs(600))));
        let pair = send(&app, "POST", "/login", None).await.cookie_pair();
        // A write to a persistent session refreshes the cookie's Max-Age: the browser gets
        // back the very value it sent (no new seal), and it still opens.
        let res = send(&app, "GET", "/counter", Some(&pair)).await;
        assert_eq!(
            (res.body.as_str(), attribute(&res, "Max-Age")),
            ("1", Some("600"))
        );
        assert_eq!(res.cookie_pair(), pair, "{name}");
        let res = send(&app, "GET", "/counter", Some(&res.cookie_pair())).await;
        assert_eq!(res.body, "2", "{name}");
        // A renew stores the session under a new id: that one is sealed afresh.
        let res = send(&app, "POST", "/login", Some(&pair)).await;
        let renewed = res.cookie_pair();
        assert_ne!(renewed, pair, "{name}");
        assert_ne!(open(&renewed), open(&pair), "{name}");
        let res = send(&app, "GET", "/counter", Some(&renewed)).await;
        assert_eq!(
            (res.body.as_str(), res.cookie_pair()),
            ("3", renewed),
            "{name}"
        );
        // The old cookie names a session that is gone: no value of it comes back.
        let res = send(&app, "GET", "/counter", Some(&pair)).await;
        assert_eq!(res.body, "1", "{name}: a fresh session");
        assert_ne!(res.cookie_pair(), pair, "{name}");

        // Sliding expiry re-sends the cookie on reads too; signed cookies alike.
        let sliding = self::app(&backend, |l| {
            l.with_max_age(Some(Duration::from_secs(600)))
                .with_sliding_expiry(true)
                .with_cookie_security(CookieSecurity::Signed)
        });
        let pair = send(&sliding, "POST", "/login", None).await.cookie_pair();
        let res = send(&sliding, "GET", "/describe", Some(&pair)).await;
        assert!(res.body.contains("has_user=true"), "{name}: {res:?}");
        assert_eq!(
            (res.cookie_pair(), attribute(&res, "Max-Age")),
            (pair, Some("600")),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_cookies_and_key_rotation() {
    for (name, backend) in stores().all {
        // Signed: the id is readable in the cookie, but a changed one is refused.
        let signed = app(&backend, |l| l.with_cookie_security(CookieSecurity::Signed));
        let res = send(&signed, "POST", "/login", None).await;
        let pair = res.cookie_pair();
        assert_eq!(
            send(&signed, "GET", "/counter", Some(&pair)).await.body,
            "1"
        );
        let (_, value) = pair.split_once('=').unwrap();
        let id = &value[value.len() - 43..];
        assert_eq!(session_core::SessionId::parse(id).unwrap().as_str(), id);
        let forged = format!(
            "{}{}",
            &pair[..pair.len() - 43],
            session_core::SessionId::generate().as_str()
        );
        let res = send(&signed, "GET", "/counter", Some(&forged)).await;
        assert_eq!(res.body, "1", "{name}: a forged id is no session");

        // Rotation: a cookie sealed with the old key opens and comes back sealed with the new.
        let old = key();
        let new = Key::generate();
        let before = app(&backend, |l| l);
        let pair = send(&before, "POST", "/login", None).await.cookie_pair();
        let store = SessionStore::new(backend.clone());
        let rotated = routes().layer(
            SessionLayer::new(store.clone(), new.clone())
                .with_secure(false)
                .with_fallback_keys([old]),
        );
        let res = send(&rotated, "GET", "/describe", Some(&pair)).await;
        assert!(res.body.contains("has_user=true"), "{name}: {res:?}");
        let resealed = res.cookie_pair();
        assert_ne!(resealed, pair);
        // The re-sealed cookie opens with the new key alone.
        let only_new = routes().layer(SessionLayer::new(store, new).with_secure(false));
        let res = send(&only_new, "GET", "/describe", Some(&resealed)).await;
        assert!(res.body.contains("has_user=true"), "{name}: {res:?}");
        assert!(res.set_cookie.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_saved_after_a_server_error_when_asked() {
    for (name, backend) in stores().all {
        let saving = app(&backend, |l| l);
        let res = send(&saving, "POST", "/fail", None).await;
        assert_eq!(res.set_cookie.len(), 1, "{name}: saved by default");

        backend.take_calls();
        let skipping = app(&backend, |l| l.with_skip_save_on_server_error(true));
        let res = send(&skipping, "POST", "/fail", None).await;
        assert_eq!(res.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(res.set_cookie.is_empty(), "{name}: {res:?}");
        assert!(backend.calls().iter().all(|c| !c.is_write()), "{name}");
    }
}

/// A logout sticks even when its handler then fails: under
/// `with_skip_save_on_server_error` nothing else the handler did is saved, but the purge's
/// delete is made and the cookie removed. It used to skip the delete too, leaving the user
/// logged in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_sticks_when_its_handler_fails_and_nothing_else_is_saved() {
    for (name, backend) in stores().all {
        let app = app(&backend, |l| l.with_skip_save_on_server_error(true));
        let pair = send(&app, "POST", "/login", None).await.cookie_pair();
        let id = open(&pair);
        backend.take_calls();
        let res = send(&app, "POST", "/logout-then-fail", Some(&pair)).await;
        assert_eq!(res.status, StatusCode::INTERNAL_SERVER_ERROR, "{name}");
        assert!(is_removal(&res), "{name}: {res:?}");
        let store = SessionStore::new(backend.clone());
        assert_eq!(
            store.load(&id).await.unwrap(),
            None,
            "{name}: still logged in"
        );
        // The data inserted after the purge was not stored under a new id either.
        assert!(
            backend
                .calls()
                .iter()
                .all(|c| !matches!(c, Call::Create(..))),
            "{name}: {:?}",
            backend.calls()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_settings_from_configuration() {
    let config = SessionConfig::from_sources(
        None,
        [
            ("SESSION_COOKIE_NAME", "sessionid"),
            ("SESSION_COOKIE_AGE", "1209600"),
            ("SESSION_COOKIE_DOMAIN", "example.com"),
            ("SESSION_COOKIE_PATH", "/app"),
            ("SESSION_COOKIE_SECURE", "False"),
            ("SESSION_COOKIE_HTTPONLY", "True"),
            ("SESSION_COOKIE_SAMESITE", "Strict"),
        ],
    )
    .unwrap();
    for (name, backend) in stores().all {
        let store = SessionStore::new(backend.clone());
        let app = routes().layer(SessionLayer::from_config(store, key(), &config).unwrap());
        let res = send(&app, "POST", "/login", None).await;
        let header = &res.set_cookie[0];
        assert!(header.starts_with("sessionid="), "{name}: {header}");
        for attr in [
            "Max-Age=1209600",
            "Domain=example.com",
            "Path=/app",
            "HttpOnly",
            "SameSite=Strict",
        ] {
            assert!(header.contains(attr), "{name}: {attr} in {header}");
        }
        assert!(!header.contains("Secure"), "{name}: {header}");
        assert_eq!(
            last_write_ttl(&backend),
            Some(Duration::from_secs(1_209_600))
        );
    }

    // Django's browser-close switch keeps the age for the store only; save-every-request is
    // the layer's always_save.
    let config = SessionConfig::from_sources(
        None,
        [
            ("SESSION_COOKIE_AGE", "600"),
            ("SESSION_EXPIRE_AT_BROWSER_CLOSE", "True"),
            ("SESSION_SAVE_EVERY_REQUEST", "True"),
        ],
    )
    .unwrap();
    let backend = ProbeBackend::memory();
    let store = SessionStore::new(backend.clone());
    let app = routes().layer(SessionLayer::from_config(store, key(), &config).unwrap());
    let res = send(&app, "POST", "/login", None).await;
    assert_eq!(attribute(&res, "Max-Age"), None);
    assert!(res.set_cookie[0].contains("Secure"), "secure by default");
    backend.take_calls();
    send(&app, "GET", "/none", Some(&res.cookie_pair())).await;
    assert_eq!(backend.count(Op::Touch), 1);

    // Errors name the key, the value and what is expected; a typo is caught with a suggestion.
    for (vars, key, expected) in [
        (
            [("SESSION_COOKIE_SAMESITE", "sometimes")],
            "session_cookie_samesite",
            "`Lax`, `Strict` or `None`",
        ),
        (
            [("SESSION_COOKIE_NAME", "a b")],
            "session_cookie_name",
            "a cookie name",
        ),
        (
            [("SESSION_COOKIE_PATH", "/a;Domain=evil")],
            "session_cookie_path",
            "without `;`",
        ),
        ([("SESSION_COOKIE_AGE", "0")], "session_cookie_age", "1 to"),
        (
            [("SESSION_COOKIE_SECUR", "True")],
            "SESSION_COOKIE_SECUR",
            "SESSION_COOKIE_SECURE",
        ),
    ] {
        let err = SessionConfig::from_sources(None, vars)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(key) && err.contains(expected),
            "{vars:?}: {err}"
        );
    }
    // A bare `None` is Python's (unset: `Lax`, what browsers assume without the attribute,
    // as django's `None` leaves it out); the policy `None` is the quoted string.
    let config = SessionConfig::from_sources(None, [("SESSION_COOKIE_SAMESITE", "None")]).unwrap();
    assert_eq!(
        config.cookie_plan().unwrap().same_site,
        session_core::plan::SameSitePolicy::Lax
    );
    let config =
        SessionConfig::from_sources(None, [("SESSION_COOKIE_SAMESITE", "'None'")]).unwrap();
    assert_eq!(
        config.cookie_plan().unwrap().same_site,
        session_core::plan::SameSitePolicy::None
    );
    let err = SessionConfig::from_sources(
        None,
        [
            ("SESSION_COOKIE_SAMESITE", "'None'"),
            ("SESSION_COOKIE_SECURE", "False"),
        ],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("session_cookie_samesite"), "{err}");
}

/// Requests of one session at the same instant, through the layer, on every store: each
/// changes a key of its own, so every change lands (only the changed keys are written), in a
/// small session and in sessions of 3 KB and 20 KB (on Redis, whose writes then rewrite the
/// value now and then, and stage the rewrites of a large one, while other writes come in
/// between), with a fixed TTL and with sliding expiry. Then a logout among writers that
/// loaded the session before it: the logged-out id stays gone (a writer that loads after the
/// logout starts a session of its own).
#[tokio::test]
async fn concurrent_requests_of_one_session_lose_nothing_and_never_undo_a_logout() {
    // Tasks on one thread (the in-process requests are not `Send`), interleaved at every
    // store call, which is where the races are.
    tokio::task::LocalSet::new()
        .run_until(concurrent_requests_of_one_session())
        .await;
}

/// A `/set` request with `cookie` for each `key=value` of `sets`, all at once (tasks on this
/// thread); their statuses when awaited.
fn at_once(
    app: &Router,
    cookie: &str,
    sets: impl Iterator<Item = String>,
) -> Vec<tokio::task::JoinHandle<StatusCode>> {
    at_once_to("/set", app, cookie, sets)
}

/// [`at_once`] to the route `path`.
fn at_once_to(
    path: &str,
    app: &Router,
    cookie: &str,
    sets: impl Iterator<Item = String>,
) -> Vec<tokio::task::JoinHandle<StatusCode>> {
    sets.map(|set| {
        let (app, cookie) = (app.clone(), cookie.to_owned());
        let (key, value) = set.split_once('=').unwrap();
        let uri = format!("{path}?key={key}&value={value}");
        tokio::task::spawn_local(async move { send(&app, "GET", &uri, Some(&cookie)).await.status })
    })
    .collect()
}

async fn concurrent_requests_of_one_session() {
    async fn set(
        session: Session,
        axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
    ) -> Result<(), SessionError> {
        session.insert(&q["key"], &q["value"]).await
    }
    // The file and Redis backends themselves (the probe passes versions on, but nothing
    // here needs its records).
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start();
    let config = SessionConfig {
        url: Some(redis.url()),
        ..SessionConfig::default()
    };
    let stores = [
        ("memory", SessionStore::new(ProbeBackend::memory())),
        (
            "file",
            SessionStore::new(FileBackend::new(dir.path().join("sessions")).unwrap()),
        ),
        (
            "redis",
            SessionStore::new(RedisBackend::from_config(&config).unwrap()),
        ),
    ];
    for (name, store) in &stores {
        for (size, sliding) in [(0, false), (0, true), (3_000, false), (20_000, true)] {
            let layer = SessionLayer::new(store.clone(), key())
                .with_secure(false)
                .with_ttl(Some(Duration::from_secs(600)))
                .with_sliding_expiry(sliding);
            // `/set-later` loads the session, then waits for the test's signal before its
            // write: the window in which the logout lands.
            let gate = std::sync::Arc::new((
                std::sync::atomic::AtomicUsize::new(0),
                tokio::sync::Notify::new(),
            ));
            let later = {
                let gate = gate.clone();
                move |session: Session,
                      axum::extract::Query(q): axum::extract::Query<
                    std::collections::HashMap<String, String>,
                >| async move {
                    let _ = session.get::<String>(&q["key"]).await?;
                    let waiting = gate.1.notified();
                    gate.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    waiting.await;
                    session.insert(&q["key"], &q["value"]).await
                }
            };
            let app = Router::new()
                .route("/set", get(set))
                .route("/set-later", get(later))
                .route(
                    "/logout",
                    get(|session: Session| async move { session.purge().await }),
                )
                .layer(layer);
            let big = "x".repeat(size);
            let cookie = send(&app, "GET", &format!("/set?key=big&value={big}"), None)
                .await
                .cookie_pair();
            let id = open(&cookie);
            let case = format!("{name}, {size} bytes, sliding: {sliding}");

            // Each writer sets its own key again every round: the records of earlier rounds
            // pile up, so on Redis writes rewrite the value now and then while the other
            // writers of the round come in between.
            for round in 0..6 {
                let writers = at_once(&app, &cookie, (0..12).map(|i| format!("k{i}=r{round}")));
                for writer in writers {
                    assert_eq!(writer.await.unwrap(), StatusCode::OK, "{case}");
                }
                let state = store.load(&id).await.unwrap().expect(&case);
                assert_eq!(state.len(), 1 + 12, "{case}");
                for i in 0..12 {
                    let now = &state[&format!("k{i}")];
                    assert_eq!(now, &format!("\"r{round}\""), "{case}, round {round}");
                }
            }
            let state = store.load(&id).await.unwrap().expect(&case);
            assert_eq!(state["big"], format!("\"{big}\""), "{case}");

            // Writers that loaded the session, then a logout, then their writes.
            let writers = at_once_to(
                "/set-later",
                &app,
                &cookie,
                (0..8).map(|i| format!("late{i}=v")),
            );
            while gate.0.load(std::sync::atomic::Ordering::SeqCst) < 8 {
                tokio::task::yield_now().await;
            }
            let logout = send(&app, "GET", "/logout", Some(&cookie)).await;
            assert_eq!(logout.status, StatusCode::OK, "{case}");
            gate.1.notify_waiters();
            gate.0.store(0, std::sync::atomic::Ordering::SeqCst);
            for writer in writers {
                assert_eq!(writer.await.unwrap(), StatusCode::OK, "{case}");
            }
            assert_eq!(
                store.load(&id).await.unwrap(),
                None,
                "{case}: logout must stick"
            );
        }
    }
}
