//! A session shared by an axum service and an actix-web service keeps its own expiry
//! (`session_axum::Expiry`, stored under `__expiry`) whichever framework serves it, on a real
//! `redis-server`: the store TTL that an actix request sets (sliding load, write, `update_ttl`,
//! renew) is the session's own, not actix-session's `session_ttl`.

use std::time::Duration;

use crate::common::{id_in, redis_store, set, KeyValue};
use actix_session::{
    config::{PersistentSession, TtlExtensionPolicy},
    Session, SessionMiddleware,
};
use actix_web::{
    cookie::{time, Cookie, Key},
    middleware::from_fn,
    test, web, App, HttpResponse,
};
use session_actix::{request_scope, ActixStore};
use session_axum::Expiry;
use session_core::{SessionConfig, SessionId, SessionStore};
use session_testkit::RedisServer;

const KEY_MATERIAL: [u8; 64] = [7; 64];
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// The actix app of a service sharing `core`'s sessions, with sliding expiry (actix's day)
/// and the `/get` route.
macro_rules! sliding_actix_app {
    ($core:expr) => {
        test::init_service(
            App::new()
                .wrap(
                    SessionMiddleware::builder(
                        ActixStore::new($core.clone()).sliding_expiry(DAY),
                        Key::from(&KEY_MATERIAL),
                    )
                    .session_lifecycle(
                        PersistentSession::default().session_ttl(time::Duration::days(1)),
                    )
                    .build(),
                )
                .wrap(from_fn(request_scope))
                .route("/get", web::get().to(get)),
        )
        .await
    };
}

async fn get(session: Session, q: web::Query<KeyValue>) -> actix_web::Result<HttpResponse> {
    let value = session.get::<String>(&q.key)?.unwrap_or_default();
    Ok(HttpResponse::Ok().body(value))
}

async fn renew(session: Session) -> HttpResponse {
    session.renew();
    HttpResponse::Ok().finish()
}

/// The axum service: `/login?secs=N` logs alice in with `Expiry::OnInactivity(N s)`,
/// `/login?at=N` with `Expiry::AtDateTime(now + N s)`.
fn axum_app(store: SessionStore) -> axum::Router {
    #[derive(serde::Deserialize)]
    struct Login {
        secs: Option<u64>,
        at: Option<i64>,
    }
    axum::Router::new()
        .route(
            "/login",
            axum::routing::get(
                |s: session_axum::Session, q: axum::extract::Query<Login>| async move {
                    s.insert("user", "alice").await?;
                    let expiry = match (q.secs, q.at) {
                        (Some(secs), _) => Expiry::OnInactivity(Duration::from_secs(secs)),
                        (_, Some(at)) => Expiry::AtDateTime(
                            time::OffsetDateTime::now_utc() + time::Duration::seconds(at),
                        ),
                        _ => unreachable!(),
                    };
                    s.set_expiry(Some(expiry)).await?;
                    Ok::<_, session_axum::SessionError>("ok")
                },
            ),
        )
        .layer(session_axum::SessionLayer::new(
            store,
            session_axum::Key::from(&KEY_MATERIAL),
        ))
}

/// Logs in through axum with `query`; the cookie and the id it seals.
async fn axum_login(store: &SessionStore, query: &str) -> (Cookie<'static>, SessionId) {
    let res = tower::ServiceExt::oneshot(
        axum_app(store.clone()),
        session_testkit::http::request("GET", &format!("/login?{query}"), None, None),
    )
    .await
    .unwrap();
    let answer = session_testkit::http::Answer::read(res).await;
    assert_eq!(answer.body, "ok");
    let cookie = Cookie::parse_encoded(answer.cookie_pair()).unwrap();
    let id = id_in(&cookie, &Key::from(&KEY_MATERIAL));
    (cookie, id)
}

/// What is left of the stored session's lifetime.
async fn ttl(store: &SessionStore, id: &SessionId) -> Duration {
    let (_, ttl) = store
        .load_with_ttl(id)
        .await
        .unwrap()
        .expect("session stored");
    ttl.expect("session has an expiry")
}

/// An actix request never gives a shared session of its own inactivity period actix's TTL:
/// not by its sliding load, its write, its `update_ttl` or its renew. A 60 s idle timeout set
/// through axum lived a day after one actix request (a stolen cookie stayed good that long),
/// and a 30-day "remember me" ended after a day. On Redis, the file store and the memory store.
#[actix_web::test]
async fn actix_requests_keep_a_shared_sessions_own_inactivity_period() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let file = SessionStore::new(
        session_core::backends::file::FileBackend::new(dir.path().join("s")).unwrap(),
    );
    let stores = [
        ("redis", redis_store(&redis)),
        ("file", file),
        ("memory", SessionStore::memory()),
    ];
    for (store_name, core) in stores {
        actix_keeps_own_ttls(store_name, core).await;
    }
}

async fn actix_keeps_own_ttls(store_name: &str, core: SessionStore) {
    for (mode, sliding, policy) in [
        ("sliding", true, TtlExtensionPolicy::OnStateChanges),
        ("every request", false, TtlExtensionPolicy::OnEveryRequest),
        ("writes only", false, TtlExtensionPolicy::OnStateChanges),
    ] {
        let name = format!("{store_name}, {mode}");
        let name = name.as_str();
        let store = ActixStore::new(core.clone());
        let store = if sliding {
            store.sliding_expiry(DAY)
        } else {
            store
        };
        let app = test::init_service(
            App::new()
                .wrap(
                    SessionMiddleware::builder(store, Key::from(&KEY_MATERIAL))
                        .session_lifecycle(
                            PersistentSession::default()
                                .session_ttl(time::Duration::days(1))
                                .session_ttl_extension_policy(policy.clone()),
                        )
                        .build(),
                )
                .wrap(from_fn(request_scope))
                .route("/get", web::get().to(get))
                .route("/set", web::get().to(set))
                .route("/renew", web::get().to(renew)),
        )
        .await;
        let call = |uri: &str, cookie: &Cookie<'static>| {
            test::TestRequest::get()
                .uri(uri)
                .cookie(cookie.clone())
                .to_request()
        };

        for own in [Duration::from_secs(60), 30 * DAY] {
            let (cookie, id) = axum_login(&core, &format!("secs={}", own.as_secs())).await;
            let own_range = own - Duration::from_secs(5)..=own;
            assert!(own_range.contains(&ttl(&core, &id).await), "{name}");

            let res = test::call_service(&app, call("/get?key=user", &cookie)).await;
            assert!(res.status().is_success(), "{name}");
            assert_eq!(test::read_body(res).await, "alice", "{name}");
            let left = ttl(&core, &id).await;
            assert!(
                own_range.contains(&left),
                "{name}: own {own:?}, after an actix read {left:?}"
            );

            let res = test::call_service(&app, call("/set?key=n&value=1", &cookie)).await;
            assert!(res.status().is_success(), "{name}");
            let left = ttl(&core, &id).await;
            assert!(
                own_range.contains(&left),
                "{name}: own {own:?}, after an actix write {left:?}"
            );

            let res = test::call_service(&app, call("/renew", &cookie)).await;
            assert!(res.status().is_success(), "{name}");
            let renewed = crate::common::session_cookie(&res).expect("renew sets a cookie");
            let new_id = id_in(&renewed, &Key::from(&KEY_MATERIAL));
            assert_ne!(new_id, id);
            let left = ttl(&core, &new_id).await;
            assert!(
                own_range.contains(&left),
                "{name}: own {own:?}, after an actix renew {left:?}"
            );
        }

        // A deadline: an actix write keeps the key no longer than the deadline.
        let (cookie, id) = axum_login(&core, "at=7200").await;
        let res = test::call_service(&app, call("/set?key=n&value=2", &cookie)).await;
        assert!(res.status().is_success(), "{name}");
        let left = ttl(&core, &id).await;
        assert!(
            left <= Duration::from_secs(7200),
            "{name}: deadline in 2 h, after an actix write {left:?}"
        );
    }
}

/// The cookie sealing `id` as both frameworks seal it (one key, one cookie).
fn cookie_for(id: &SessionId) -> Cookie<'static> {
    let mut jar = actix_web::cookie::CookieJar::new();
    jar.private_mut(&Key::from(&KEY_MATERIAL))
        .add(Cookie::new("id", id.as_str().to_owned()));
    jar.get("id").expect("sealed").clone()
}

/// What one sliding request through `framework` leaves of a session stored with `expiry` as
/// its `__expiry` value (and a 2 h TTL): gone (`None`), or its store TTL, rounded to seconds.
async fn ttl_after_a_request(core: &SessionStore, framework: &str, expiry: &str) -> Option<u64> {
    let state = session_core::SessionState::from([
        ("user".to_owned(), r#""alice""#.to_owned()),
        (session_core::EXPIRY_KEY.to_owned(), expiry.to_owned()),
    ]);
    let id = core
        .create(&state, Some(Duration::from_secs(7200)))
        .await
        .unwrap();
    let cookie = cookie_for(&id);
    if framework == "axum" {
        let app = axum::Router::new()
            .route(
                "/get",
                axum::routing::get(|s: session_axum::Session| async move {
                    let user = s.get::<String>("user").await?.unwrap_or_default();
                    Ok::<_, session_axum::SessionError>(user)
                }),
            )
            .layer(
                session_axum::SessionLayer::new(
                    core.clone(),
                    session_axum::Key::from(&KEY_MATERIAL),
                )
                .with_ttl(Some(DAY))
                .with_sliding_expiry(true),
            );
        let pair = format!("id={}", cookie.value());
        let res = tower::ServiceExt::oneshot(
            app,
            session_testkit::http::request("GET", "/get", Some(&pair), None),
        )
        .await
        .unwrap();
        let answer = session_testkit::http::Answer::read(res).await;
        assert!(answer.status.is_success(), "axum, {expiry}: {answer:?}");
    } else {
        let app = sliding_actix_app!(core);
        let req = test::TestRequest::get()
            .uri("/get?key=user")
            .cookie(cookie)
            .to_request();
        let res = test::call_service(&app, req).await;
        assert!(res.status().is_success(), "actix, {expiry}");
    }
    let (_, left) = core.load_with_ttl(&id).await.unwrap()?;
    let left = left.expect("an expiry");
    Some((left.as_millis() as u64 + 500) / 1000)
}

/// Whatever an `__expiry` value holds (written by hand, by another application, or by an
/// actix handler, where the key is not reserved), a request through actix-web leaves the
/// session the TTL a request through the axum layer leaves it, and both serve or end it
/// alike: the two frameworks must read one value one way, or the session's lifetime depends
/// on which service the browser happened to reach. Values the axum layer writes agree
/// trivially; these are the ones a hand or a hostile write could put there.
#[actix_web::test]
async fn both_frameworks_read_any_expiry_value_alike() {
    let redis = RedisServer::start();
    let core = redis_store(&redis);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let in_2h = now + 7200;
    let deep = format!(
        r#"{{"inactivity_secs":60,"x":{}{}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let values = [
        r#"{"inactivity_secs":60}"#.to_owned(),
        format!(r#"{{"at_unix":{in_2h}}}"#),
        r#""on_session_end""#.to_owned(),
        r#"{"inactivity_secs":60,"inactivity_secs":120}"#.to_owned(),
        format!(r#"{{"inactivity_secs":60.5,"at_unix":{in_2h}}}"#),
        format!(r#"{{"inactivity_secs":"60","at_unix":{in_2h}}}"#),
        format!(r#"{{"inactivity_secs":-1,"at_unix":{in_2h}}}"#),
        format!(r#"{{"inactivity_secs":null,"at_unix":{in_2h}}}"#),
        format!(r#"{{"at_unix":{in_2h},"at_unix":{}}}"#, now + 600),
        format!(r#"{{"at_unix":{},"at_unix":{in_2h}}}"#, now - 600),
        format!(r#"{{"at_unix":{in_2h},"at_unix":{}}}"#, now - 600),
        "[60,null]".to_owned(),
        format!("[null,{in_2h}]"),
        r#"{"at_unix":99999999999999}"#.to_owned(),
        format!(r#"{{"at_unix":{in_2h}.0}}"#),
        r#"{"inactivity_secs":1e2}"#.to_owned(),
        r#"{"inactivity_secs":-0}"#.to_owned(),
        r#"{"inactivity_secs":0}"#.to_owned(),
        format!(r#"{{"inactivity_secs":{}}}"#, u64::MAX),
        r#"{"inactivity_secs":18446744073709551616}"#.to_owned(),
        deep,
        r#"{"Inactivity_Secs":60}"#.to_owned(),
        "null".to_owned(),
        "60".to_owned(),
    ];
    let mut differ = Vec::new();
    for value in &values {
        let axum = ttl_after_a_request(&core, "axum", value).await;
        let actix = ttl_after_a_request(&core, "actix", value).await;
        let agree = match (axum, actix) {
            (Some(a), Some(b)) => a.abs_diff(b) <= 2,
            (a, b) => a == b,
        };
        if !agree {
            let shown: String = value.chars().take(80).collect();
            differ.push(format!("{shown}: axum {axum:?}, actix {actix:?}"));
        }
    }
    assert!(differ.is_empty(), "TTLs differ:\n{}", differ.join("\n"));
    // A deadline written twice counts as its last, here one passed: the session is over in
    // both (it was served, for a second through axum and a day through actix).
    let passed = format!(r#"{{"at_unix":{in_2h},"at_unix":{}}}"#, now - 600);
    for framework in ["axum", "actix"] {
        let left = ttl_after_a_request(&core, framework, &passed).await;
        assert_eq!(left, None, "{framework}: {passed}");
    }
}

/// A sliding load sets the framework's TTL in its own round trip, then a `touch` gives a
/// session of its own expiry that expiry's TTL back. A request dropped between the two (a
/// client gone, a timeout layer) left the session the framework's TTL: a 60-second idle
/// timeout kept for a day. Through either framework, on a real `redis-server`; the
/// [`ProbeBackend`](session_core::testing::probe::ProbeBackend) only holds the `touch`
/// while the test drops the request.
#[actix_web::test]
async fn a_request_dropped_after_its_sliding_load_leaves_the_sessions_own_ttl() {
    use session_core::testing::probe::{Op, ProbeBackend};
    let redis = RedisServer::start();
    let direct = redis_store(&redis);
    let probe = ProbeBackend::new(
        session_core::backends::redis::RedisBackend::from_config(&SessionConfig {
            url: Some(redis.url()),
            ..SessionConfig::default()
        })
        .unwrap(),
    );
    let core = SessionStore::new(probe.clone());
    for framework in ["axum", "actix"] {
        let state = session_core::SessionState::from([
            ("user".to_owned(), r#""alice""#.to_owned()),
            (
                session_core::EXPIRY_KEY.to_owned(),
                r#"{"inactivity_secs":60}"#.to_owned(),
            ),
        ]);
        let id = direct
            .create(&state, Some(Duration::from_secs(60)))
            .await
            .unwrap();
        let cookie = cookie_for(&id);
        let held = probe.pause(Op::Touch);
        let request: std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> =
            if framework == "axum" {
                let app = axum::Router::new()
                    .route(
                        "/get",
                        axum::routing::get(|s: session_axum::Session| async move {
                            s.get::<String>("user").await?;
                            Ok::<_, session_axum::SessionError>("ok")
                        }),
                    )
                    .layer(
                        session_axum::SessionLayer::new(
                            core.clone(),
                            session_axum::Key::from(&KEY_MATERIAL),
                        )
                        .with_ttl(Some(DAY))
                        .with_sliding_expiry(true),
                    );
                let pair = format!("id={}", cookie.value());
                Box::pin(async move {
                    let _ = tower::ServiceExt::oneshot(
                        app,
                        session_testkit::http::request("GET", "/get", Some(&pair), None),
                    )
                    .await;
                })
            } else {
                let app = sliding_actix_app!(core);
                let req = test::TestRequest::get()
                    .uri("/get?key=user")
                    .cookie(cookie)
                    .to_request();
                Box::pin(async move {
                    let _ = test::call_service(&app, req).await;
                })
            };
        // The request runs until its `touch` is held, and is dropped there.
        tokio::select! {
            _ = request => panic!("{framework}: the request ended without its touch"),
            _ = held.reached() => {}
        }
        held.release();
        // A touch that goes on after the request is gone takes a moment to land.
        let mut left = DAY;
        for _ in 0..200 {
            let (_, ttl) = direct.load_with_ttl(&id).await.unwrap().expect("stored");
            left = ttl.expect("an expiry");
            if left <= Duration::from_secs(60) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            left <= Duration::from_secs(60),
            "{framework}: own 60s, after a dropped sliding request {left:?}"
        );
    }
}
