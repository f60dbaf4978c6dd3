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
use session_core::{SessionId, SessionStore};
use session_testkit::RedisServer;

const KEY_MATERIAL: [u8; 64] = [7; 64];
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

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
