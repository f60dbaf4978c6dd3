//! A logout through one framework racing a write or a renew through the other, on one real
//! `redis-server`, one cookie and one key: the request of the other framework has loaded the
//! session and is held (a [`Gate`], no sleeps) while the logout runs to its end, then goes on.
//! Nothing may come back: not the old id, not a new one carrying the logged-out user.

use std::sync::{atomic::Ordering, Arc};

use crate::common::{answer, id_in, purge, redis_store, Gate};
use actix_session::{config::PersistentSession, Session, SessionMiddleware};
use actix_web::{
    cookie::{time, Cookie, Key},
    http::StatusCode,
    middleware::from_fn,
    test, web, App, HttpResponse,
};
use session_actix::{request_scope, ActixStore};
use session_core::{SessionId, SessionState, SessionStore};
use session_testkit::RedisServer;

const KEY_MATERIAL: [u8; 64] = [11; 64];

/// actix: loads the session, waits for the gate, then writes `n` (`/write`) or renews
/// (`/renew`).
async fn write_later(session: Session, gate: web::Data<Gate>) -> actix_web::Result<HttpResponse> {
    let _ = session.get::<String>("user")?;
    gate.pass().await;
    session.insert("n", 1)?;
    Ok(HttpResponse::Ok().finish())
}

async fn renew_later(session: Session, gate: web::Data<Gate>) -> actix_web::Result<HttpResponse> {
    let _ = session.get::<String>("user")?;
    gate.pass().await;
    session.renew();
    Ok(HttpResponse::Ok().finish())
}

/// actix: sets `key` to `value` (from the query), without waiting.
async fn set_now(
    session: Session,
    q: web::Query<crate::common::KeyValue>,
) -> actix_web::Result<HttpResponse> {
    crate::common::set(session, q).await
}

/// axum: the same two, and a logout.
fn axum_app(store: SessionStore, gate: Arc<Gate>) -> axum::Router {
    use axum::routing::get;
    use session_axum::{Session, SessionError};
    let (write_gate, renew_gate) = (gate.clone(), gate);
    axum::Router::new()
        .route(
            "/write",
            get(move |s: Session| async move {
                s.get::<String>("user").await?;
                write_gate.pass().await;
                s.insert("n", &1).await?;
                Ok::<_, SessionError>("ok")
            }),
        )
        .route(
            "/renew",
            get(move |s: Session| async move {
                s.get::<String>("user").await?;
                renew_gate.pass().await;
                s.renew().await?;
                Ok::<_, SessionError>("ok")
            }),
        )
        .route(
            "/set",
            get(
                |s: Session, q: axum::extract::Query<crate::common::KeyValue>| async move {
                    s.insert(&q.key, &q.value).await?;
                    Ok::<_, SessionError>("ok")
                },
            ),
        )
        .route(
            "/logout",
            get(|s: Session| async move {
                s.purge().await?;
                Ok::<_, SessionError>("ok")
            }),
        )
        .layer(session_axum::SessionLayer::new(
            store,
            session_axum::Key::from(&KEY_MATERIAL),
        ))
}

async fn axum_call(
    app: &axum::Router,
    uri: &str,
    cookie: &Cookie<'static>,
    expected: StatusCode,
) -> Vec<String> {
    let pair = format!("{}={}", cookie.name(), cookie.value());
    let res = tower::ServiceExt::oneshot(
        app.clone(),
        session_testkit::http::request("GET", uri, Some(&pair), None),
    )
    .await
    .unwrap();
    let answer = session_testkit::http::Answer::read(res).await;
    assert_eq!(answer.status.as_u16(), expected.as_u16(), "{uri}");
    answer.set_cookie
}

/// Every session key in Redis holding the user: none may be left after the logout.
async fn sessions_of_alice(redis: &RedisServer, core: &SessionStore) -> usize {
    let keys: Vec<String> = redis.cmd(&["KEYS", "*"]);
    let mut found = 0;
    for key in keys {
        let Some(id) = key
            .rsplit(':')
            .next()
            .and_then(|s| SessionId::parse(s).ok())
        else {
            continue;
        };
        if let Ok(Some(state)) = core.load(&id).await {
            found += usize::from(state.get("user").map(String::as_str) == Some("\"alice\""));
        }
    }
    found
}

#[actix_web::test]
async fn a_logout_through_one_framework_sticks_against_the_others_held_write_or_renew() {
    let redis = RedisServer::start();
    let core = redis_store(&redis);
    let gate = web::Data::new(Gate::default());
    let actix = test::init_service(
        App::new()
            .app_data(gate.clone())
            .wrap(
                SessionMiddleware::builder(ActixStore::new(core.clone()), Key::from(&KEY_MATERIAL))
                    .session_lifecycle(
                        PersistentSession::default().session_ttl(time::Duration::hours(1)),
                    )
                    .build(),
            )
            .wrap(from_fn(request_scope))
            .route("/write", web::get().to(write_later))
            .route("/renew", web::get().to(renew_later))
            .route("/logout", web::get().to(purge)),
    )
    .await;
    let axum = axum_app(core.clone(), gate.clone().into_inner());
    let key = Key::from(&KEY_MATERIAL);
    let alice = SessionState::from([("user".to_owned(), "\"alice\"".to_owned())]);

    for (held_by, action) in [
        ("actix", "/write"),
        ("actix", "/renew"),
        ("axum", "/write"),
        ("axum", "/renew"),
    ] {
        for round in 0..10 {
            let what =
                format!("{action} held in {held_by}, logout through the other, round {round}");
            let id = core.create(&alice, None).await.unwrap();
            // A cookie both frameworks open: actix's private jar, as actix-session seals it.
            let mut jar = actix_web::cookie::CookieJar::new();
            jar.private_mut(&key)
                .add(Cookie::new("id", id.as_str().to_owned()));
            let cookie = jar.delta().next().unwrap().clone().into_owned();
            gate.loaded.store(0, Ordering::SeqCst);

            // A renew that finds the session gone answers 409 with no cookie, in both
            // frameworks; a held write changes nothing and answers 200.
            let expected = if action == "/renew" {
                StatusCode::CONFLICT
            } else {
                StatusCode::OK
            };
            let held = async {
                if held_by == "actix" {
                    let req = test::TestRequest::get()
                        .uri(action)
                        .cookie(cookie.clone())
                        .to_request();
                    let (status, set) = answer(&actix, req).await;
                    assert_eq!(status, expected, "{what}");
                    set.filter(|c| !c.value().is_empty())
                        .map(|c| id_in(&c, &key))
                } else {
                    let set = axum_call(&axum, action, &cookie, expected).await;
                    assert!(
                        set.iter().all(|c| c.contains("Max-Age=0")),
                        "{what}: a live cookie after the logout: {set:?}"
                    );
                    None
                }
            };
            let logout = async {
                // Once the held request has loaded the session: log out through the other
                // framework, to the end, then let the held request go on.
                while gate.loaded.load(Ordering::SeqCst) == 0 {
                    tokio::task::yield_now().await;
                }
                if held_by == "actix" {
                    axum_call(&axum, "/logout", &cookie, StatusCode::OK).await;
                } else {
                    let req = test::TestRequest::get()
                        .uri("/logout")
                        .cookie(cookie.clone())
                        .to_request();
                    let res = test::call_service(&actix, req).await;
                    assert!(res.status().is_success(), "{what}: {}", res.status());
                }
                gate.go.notify_one();
            };
            let (new_id, ()) = tokio::join!(held, logout);
            assert_eq!(core.load(&id).await.unwrap(), None, "{what}: the old id");
            if let Some(new_id) = new_id {
                assert_eq!(
                    core.load(&new_id).await.unwrap(),
                    None,
                    "{what}: the new id"
                );
            }
            assert_eq!(sessions_of_alice(&redis, &core).await, 0, "{what}");
        }
    }
}

/// Requests of both frameworks at the same instant, each setting its own key of one session
/// (6 through actix, 6 through axum, 8 rounds, on sessions of 3 KB and 20 KB): every key of
/// every round is there afterwards. A lost update across the frameworks would drop one:
/// without `request_scope` (actix then replaces the whole state) round 0 loses `actix0`.
#[actix_web::test]
async fn concurrent_writes_through_both_frameworks_lose_nothing() {
    let redis = RedisServer::start();
    let core = redis_store(&redis);
    let actix = test::init_service(
        App::new()
            .wrap(
                SessionMiddleware::builder(ActixStore::new(core.clone()), Key::from(&KEY_MATERIAL))
                    .session_lifecycle(
                        PersistentSession::default().session_ttl(time::Duration::hours(1)),
                    )
                    .build(),
            )
            .wrap(from_fn(request_scope))
            .route("/set", web::get().to(set_now)),
    )
    .await;
    let axum = axum_app(core.clone(), Arc::new(Gate::default()));
    let key = Key::from(&KEY_MATERIAL);
    for size in [3_000, 20_000] {
        let mut state = SessionState::from([("user".to_owned(), "\"alice\"".to_owned())]);
        for i in 0..10 {
            state.insert(format!("pad{i}"), format!("{:?}", "p".repeat(size / 10)));
        }
        let id = core.create(&state, None).await.unwrap();
        let mut jar = actix_web::cookie::CookieJar::new();
        jar.private_mut(&key)
            .add(Cookie::new("id", id.as_str().to_owned()));
        let cookie = jar.delta().next().unwrap().clone().into_owned();
        for round in 0..8 {
            let actix_writes = (0..6).map(|i| {
                let req = test::TestRequest::get()
                    .uri(&format!("/set?key=actix{i}&value=r{round}"))
                    .cookie(cookie.clone())
                    .to_request();
                let actix = &actix;
                async move {
                    let res = test::call_service(actix, req).await;
                    assert!(res.status().is_success(), "{}", res.status());
                }
            });
            let axum_writes = (0..6).map(|i| {
                let (axum, cookie) = (&axum, &cookie);
                async move {
                    axum_call(
                        axum,
                        &format!("/set?key=axum{i}&value=r{round}"),
                        cookie,
                        StatusCode::OK,
                    )
                    .await;
                }
            });
            futures_util::future::join(
                futures_util::future::join_all(actix_writes),
                futures_util::future::join_all(axum_writes),
            )
            .await;
            let stored = core.load(&id).await.unwrap().expect("session stored");
            for framework in ["actix", "axum"] {
                for i in 0..6 {
                    assert_eq!(
                        stored.get(&format!("{framework}{i}")).map(String::as_str),
                        Some(format!("\"r{round}\"").as_str()),
                        "{size} bytes, round {round}: {framework}{i}"
                    );
                }
            }
            assert_eq!(stored.get("user").map(String::as_str), Some("\"alice\""));
        }
    }
}
