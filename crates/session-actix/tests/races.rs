//! Requests of one session at the same instant, through actix-session's `SessionMiddleware`
//! over `ActixStore` inside `request_scope`, on a real Redis server (the middleware tests use
//! the memory store, which takes no version): every request's change lands, and a logout
//! among writers that loaded the session before it sticks.

mod common;

use std::{sync::atomic::Ordering, time::Duration};

use common::{
    answer, id_in, jar_after, purge, renew_later, req, session_cookie, set, set_later, Gate,
};

use actix_session::{config::PersistentSession, SessionMiddleware};
use actix_web::{
    body::MessageBody,
    cookie::{time, Cookie, Key},
    dev::{Service, ServiceResponse},
    http::StatusCode,
    middleware::{from_fn, Condition},
    test, web, App,
};
use futures_util::future::join_all;
use session_actix::{request_scope, ActixStore};
use session_core::{
    backends::redis::RedisBackend,
    testing::probe::{Op, ProbeBackend},
    SessionConfig, SessionStore,
};
use session_testkit::RedisServer;

/// Twelve requests at once per round, each setting its own key again every round (so the
/// records of earlier rounds pile up and writes rewrite the value now and then, staged for a
/// large session, while the other requests of the round come in between): after each round
/// every key holds that round's value. Small, 3 KB and 20 KB sessions; fixed TTL and sliding
/// expiry (`ActixStore::sliding_expiry`).
#[actix_web::test]
async fn concurrent_requests_of_one_session_lose_nothing_and_never_undo_a_logout() {
    let redis = RedisServer::start();
    let config = SessionConfig {
        url: Some(redis.url()),
        ..SessionConfig::default()
    };
    let core = SessionStore::new(RedisBackend::from_config(&config).unwrap());
    for (size, sliding) in [(0, false), (0, true), (3_000, false), (20_000, true)] {
        let case = format!("{size} bytes, sliding: {sliding}");
        let key = Key::generate();
        let mut store = ActixStore::new(core.clone());
        if sliding {
            store = store.sliding_expiry(Duration::from_secs(3600));
        }
        let gate = web::Data::new(Gate::default());
        let app = test::init_service(
            App::new()
                .app_data(gate.clone())
                .wrap(
                    SessionMiddleware::builder(store, key.clone())
                        .session_lifecycle(
                            PersistentSession::default().session_ttl(time::Duration::hours(1)),
                        )
                        .build(),
                )
                .wrap(from_fn(request_scope))
                .route("/set", web::get().to(set))
                .route("/set-later", web::get().to(set_later))
                .route("/renew-later", web::get().to(renew_later))
                .route("/logout", web::get().to(purge)),
        )
        .await;
        let big = "x".repeat(size);
        let res = test::call_service(
            &app,
            test::TestRequest::get()
                .uri(&format!("/set?key=big&value={big}"))
                .to_request(),
        )
        .await;
        let cookie = session_cookie(&res).unwrap();
        let id = id_in(&cookie, &key);

        for round in 0..6 {
            let answers = join_all((0..12).map(|i| {
                test::call_service(&app, req(&format!("/set?key=k{i}&value=r{round}"), &cookie))
            }))
            .await;
            assert!(
                answers.iter().all(|r| r.status() == StatusCode::OK),
                "{case}"
            );
            let state = core.load(&id).await.unwrap().expect(&case);
            assert_eq!(state.len(), 1 + 12, "{case}");
            for i in 0..12 {
                let now = &state[&format!("k{i}")];
                assert_eq!(now, &format!("\"r{round}\""), "{case}, round {round}");
            }
        }
        assert_eq!(
            core.load(&id).await.unwrap().unwrap()["big"],
            format!("\"{big}\"")
        );

        // Writers and renews (a login) that loaded the session, then a logout, then their
        // writes and renews.
        let late = (0..8).map(|i| {
            let uri = if i < 6 {
                format!("/set-later?key=late{i}&value=v")
            } else {
                "/renew-later".to_owned()
            };
            answer(&app, req(&uri, &cookie))
        });
        let (answers, out) = tokio::join!(join_all(late), async {
            while gate.loaded.load(Ordering::SeqCst) < 8 {
                tokio::task::yield_now().await;
            }
            let out = test::call_service(&app, req("/logout", &cookie)).await;
            gate.go.notify_waiters();
            out
        });
        assert_eq!(out.status(), StatusCode::OK, "{case}");
        // The renews find the session gone: 409, no cookie (`two_renews_...` below).
        for (i, (status, _)) in answers.iter().enumerate() {
            let expected = if i < 6 {
                StatusCode::OK
            } else {
                StatusCode::CONFLICT
            };
            assert_eq!(*status, expected, "{case}, request {i}");
        }
        assert_eq!(
            core.load(&id).await.unwrap(),
            None,
            "{case}: logout must stick"
        );
        let kept = sessions_in(&redis);
        assert!(
            kept.is_empty(),
            "{case}: a renew racing the logout kept the session under a new id: {kept:?}"
        );
    }
}

/// The sessions stored on `server` (values with our header; records alone are none).
fn sessions_in(server: &RedisServer) -> Vec<String> {
    let keys: Vec<String> = server.cmd(&["KEYS", "session:*"]);
    keys.iter()
        .map(|k| server.cmd::<Vec<u8>>(&["GET", k]))
        .filter(|value| value.starts_with(b"v1:"))
        .map(|value| String::from_utf8_lossy(&value).into_owned())
        .collect()
}

/// The race above held at its worst moment: a renew loaded the session, a logout deleted it,
/// and a write at the loaded version sent its `APPEND` (the common write, with no script),
/// which leaves records alone under the deleted key until its writer drops them. The
/// renew's delete of the old id (actix-session calls it, then its save) found those records,
/// a plain `DEL` answered "removed", and the save kept the session under the new id after
/// the logout. Now a delete answers true only for a session.
#[actix_web::test]
async fn a_renew_after_a_logout_and_a_late_writes_append_brings_nothing_back() {
    let redis = RedisServer::start();
    let config = SessionConfig {
        url: Some(redis.url()),
        ..SessionConfig::default()
    };
    let core = SessionStore::new(RedisBackend::from_config(&config).unwrap());
    let key = Key::generate();
    let gate = web::Data::new(Gate::default());
    let app = test::init_service(
        App::new()
            .app_data(gate.clone())
            .wrap(SessionMiddleware::new(
                ActixStore::new(core.clone()),
                key.clone(),
            ))
            .wrap(from_fn(request_scope))
            .route("/set", web::get().to(set))
            .route("/renew-later", web::get().to(renew_later))
            .route("/logout", web::get().to(purge)),
    )
    .await;
    let res = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/set?key=user&value=alice")
            .to_request(),
    )
    .await;
    let cookie = session_cookie(&res).unwrap();
    let id = id_in(&cookie, &key);
    let (renewed, out) = tokio::join!(answer(&app, req("/renew-later", &cookie)), async {
        while gate.loaded.load(Ordering::SeqCst) < 1 {
            tokio::task::yield_now().await;
        }
        let out = test::call_service(&app, req("/logout", &cookie)).await;
        let _: i64 = redis.cmd(&[
            "APPEND",
            &format!("session:{}", id.as_str()),
            r#","late":"v" "#,
        ]);
        gate.go.notify_waiters();
        out
    });
    assert_eq!(out.status(), StatusCode::OK);
    assert_eq!(renewed, (StatusCode::CONFLICT, None));
    let kept = sessions_in(&redis);
    assert!(
        kept.is_empty(),
        "a renew racing the logout kept the session under a new id: {kept:?}"
    );
}

/// An app over `core` with the renewing, writing and logout handlers, inside `request_scope`
/// when `scoped`.
async fn renewing_app(
    core: &SessionStore,
    key: &Key,
    gate: &web::Data<Gate>,
    scoped: bool,
) -> impl Service<
    actix_http::Request,
    Response = ServiceResponse<impl MessageBody>,
    Error = actix_web::Error,
> {
    test::init_service(
        App::new()
            .app_data(gate.clone())
            .wrap(SessionMiddleware::new(
                ActixStore::new(core.clone()),
                key.clone(),
            ))
            .wrap(Condition::new(scoped, from_fn(request_scope)))
            .route("/set", web::get().to(set))
            .route("/renew-later", web::get().to(renew_later))
            .route("/logout", web::get().to(purge)),
    )
    .await
}

/// A session holding `user=alice`, made through `app`: its cookie.
async fn alice<S, B>(app: &S) -> Cookie<'static>
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let res = test::call_service(
        app,
        test::TestRequest::get()
            .uri("/set?key=user&value=alice")
            .to_request(),
    )
    .await;
    session_cookie(&res).unwrap()
}

/// A store over `redis` behind a probe (to hold or fail its calls): the probe and the store.
fn probed(redis: &RedisServer) -> (ProbeBackend, SessionStore) {
    let config = SessionConfig {
        url: Some(redis.url()),
        ..SessionConfig::default()
    };
    let probe = ProbeBackend::wrap(std::sync::Arc::new(
        RedisBackend::from_config(&config).unwrap(),
    ));
    let core = SessionStore::new(probe.clone());
    (probe, core)
}

/// [`renewing_app`] over `core` with a fresh key and gate, and alice's session made through
/// it: the key, the gate, the app and alice's cookie.
async fn with_alice(
    core: &SessionStore,
    scoped: bool,
) -> (
    Key,
    web::Data<Gate>,
    impl Service<
        actix_http::Request,
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
    >,
    Cookie<'static>,
) {
    let key = Key::generate();
    let gate = web::Data::new(Gate::default());
    let app = renewing_app(core, &key, &gate, scoped).await;
    let cookie = alice(&app).await;
    (key, gate, app, cookie)
}

/// Two renews (a login) of one session at the same instant: a login form submitted twice, or
/// a stolen cookie's request racing the victim's login. Both load the session and wait, then
/// both renew it. Inside `request_scope` the renew whose delete of the old id comes first
/// keeps its new id; the other stores nothing and answers 409 with no cookie, so a browser
/// that receives both answers, in either order, ends with the live cookie, and one session
/// is stored (before: the other answered 200 with a cookie naming nothing, which logged the
/// user out whenever it arrived last). Without `request_scope`, actix-session's save of a
/// renew cannot be told from a new session's: both renews keep a live session (the documented
/// limit, checked as such).
#[actix_web::test]
async fn two_renews_of_one_session_at_once_keep_one_login() {
    let redis = RedisServer::start();
    let config = SessionConfig {
        url: Some(redis.url()),
        ..SessionConfig::default()
    };
    let core = SessionStore::new(RedisBackend::from_config(&config).unwrap());
    for scoped in [true, false] {
        for round in 0..10 {
            let case = format!("scoped: {scoped}, round {round}");
            let _: () = redis.cmd(&["FLUSHALL"]);
            let (key, gate, app, cookie) = with_alice(&core, scoped).await;
            let old = id_in(&cookie, &key);
            let (answers, ()) = tokio::join!(
                join_all((0..2).map(|_| answer(&app, req("/renew-later", &cookie)))),
                async {
                    while gate.loaded.load(Ordering::SeqCst) < 2 {
                        tokio::task::yield_now().await;
                    }
                    gate.go.notify_waiters();
                }
            );
            let (statuses, cookies): (Vec<StatusCode>, Vec<_>) = answers.into_iter().unzip();
            assert_eq!(
                core.load(&old).await.unwrap(),
                None,
                "{case}: the old id lives"
            );
            let live: Vec<_> = cookies
                .iter()
                .flatten()
                .filter(|c| !c.value().is_empty())
                .collect();
            let kept = sessions_in(&redis);
            if !scoped {
                assert_eq!(statuses, [StatusCode::OK; 2], "{case}");
                assert_eq!(
                    (live.len(), kept.len()),
                    (2, 2),
                    "{case}: the documented limit"
                );
                continue;
            }
            assert_eq!(
                live.len(),
                1,
                "{case}: answers setting a session cookie: {} ({statuses:?})",
                live.len()
            );
            assert_eq!(kept.len(), 1, "{case}: sessions stored: {}", kept.len());
            let winner = id_in(live[0], &key);
            assert_eq!(
                core.load(&winner).await.unwrap().unwrap()["user"],
                "\"mallory\"",
                "{case}"
            );
            let mut sorted = statuses.clone();
            sorted.sort();
            assert_eq!(sorted, [StatusCode::OK, StatusCode::CONFLICT], "{case}");
            for (first, second) in [(0, 1), (1, 0)] {
                let jar = jar_after(&cookie, &[cookies[first].clone(), cookies[second].clone()]);
                assert_eq!(
                    jar.map(|c| id_in(&c, &key)).as_ref(),
                    Some(&winner),
                    "{case}: a browser receiving answer {first} then {second} is logged out"
                );
            }
        }
    }
}

/// A logout that lands inside a renew, between its two store calls: actix-session deletes
/// the old id, then saves the state under a new one. Held at the renew's create, and at its
/// delete. Before: a logout between actix-session's delete and its save found nothing to
/// delete, answered "logged out", and the save brought the session back under the new id.
/// Inside `request_scope` the delete now waits for the save, which creates the new id first
/// and deletes the old one after, as the axum layer does: whichever call the logout comes
/// between, the renew's delete finds nothing, the new id goes again, and the renew answers
/// 409 with no cookie.
#[actix_web::test]
async fn a_logout_during_a_renew_sticks() {
    let redis = RedisServer::start();
    for held in [Op::Create, Op::Delete] {
        let (probe, core) = probed(&redis);
        let (_, gate, app, cookie) = with_alice(&core, true).await;
        let pause = probe.pause(held);
        let (renewed, out) = tokio::join!(answer(&app, req("/renew-later", &cookie)), async {
            while gate.loaded.load(Ordering::SeqCst) < 1 {
                tokio::task::yield_now().await;
            }
            gate.go.notify_waiters();
            pause.reached().await;
            let out = test::call_service(&app, req("/logout", &cookie)).await;
            pause.release();
            out
        });
        assert_eq!(out.status(), StatusCode::OK, "{held:?}");
        let kept = sessions_in(&redis);
        assert!(
            kept.is_empty(),
            "held at {held:?}: the renew kept the session under a new id after the logout \
             (renew answered {}, live cookie: {})",
            renewed.0,
            renewed.1.as_ref().is_some_and(|c| !c.value().is_empty())
        );
        assert_eq!(renewed, (StatusCode::CONFLICT, None), "{held:?}");
    }
}

/// A logout whose client drops the request before its delete is sent (the tab closed right
/// after "log out"): the delete runs to its end, inside `request_scope` (which sends the
/// delete it held back) and outside it (actix-session's own call). Before, the dropped
/// request took the delete with it, and the session, with any stolen copy of its cookie,
/// stayed good for its TTL. The probe holds the delete while the test drops the request.
#[actix_web::test]
async fn a_logout_dropped_by_its_client_still_ends_the_session() {
    let redis = RedisServer::start();
    for scoped in [true, false] {
        let (probe, core) = probed(&redis);
        let (key, _, app, cookie) = with_alice(&core, scoped).await;
        let id = id_in(&cookie, &key);
        let held = probe.pause(Op::Delete);
        tokio::select! {
            _ = test::call_service(&app, req("/logout", &cookie)) => {
                panic!("scoped: {scoped}: the logout ended without its delete")
            }
            _ = held.reached() => {}
        }
        held.release();
        // A delete that goes on after its request is gone takes a moment to land.
        let mut gone = false;
        for _ in 0..200 {
            gone = core.load(&id).await.unwrap().is_none();
            if gone {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            gone,
            "scoped: {scoped}: a logout dropped by its client left the session stored"
        );
    }
}

/// A logout whose request is dropped (a client gone) after actix-session's delete, which
/// `request_scope` holds back, and before `request_scope` sends it: a middleware between
/// the two that is still at work after the inner services (here one that never ends). The
/// held delete is sent from the scope's drop; it was dropped with the request, and the
/// session, with any stolen copy of its cookie, stayed good for its TTL.
#[actix_web::test]
async fn a_held_logout_is_sent_when_its_request_is_dropped_after_the_session_middleware() {
    use actix_web::{body::BoxBody, dev::ServiceRequest, middleware::Next};
    async fn hang_after(
        req: ServiceRequest,
        next: Next<BoxBody>,
    ) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
        let res = next.call(req).await?;
        std::future::pending::<()>().await;
        Ok(res)
    }
    let redis = RedisServer::start();
    let config = SessionConfig {
        url: Some(redis.url()),
        ..SessionConfig::default()
    };
    let core = SessionStore::from_config(&config).await.unwrap();
    let key = Key::generate();
    let session = || SessionMiddleware::new(ActixStore::new(core.clone()), key.clone());
    let app = test::init_service(
        App::new()
            .wrap(session())
            .wrap(from_fn(request_scope))
            .route("/set", web::get().to(set)),
    )
    .await;
    let cookie = alice(&app).await;
    let id = id_in(&cookie, &key);
    let hanging = test::init_service(
        App::new()
            .wrap(session())
            .wrap(from_fn(hang_after))
            .wrap(from_fn(request_scope))
            .route("/logout", web::get().to(purge)),
    )
    .await;
    let dropped = tokio::time::timeout(
        Duration::from_millis(300),
        test::call_service(&hanging, req("/logout", &cookie)),
    )
    .await;
    assert!(dropped.is_err(), "the request hangs");
    let mut gone = false;
    for _ in 0..200 {
        gone = core.load(&id).await.unwrap().is_none();
        if gone {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(gone, "the dropped logout left the session stored");
}

/// A logout whose held delete, sent by `request_scope`, fails for a reason other than an
/// outage (here the store reports the session corrupt): 500 with no cookie change, as when
/// actix-session's own delete fails, and no text of the store's error in the answer (which
/// names backends and their messages; actix-session answers its own store errors with an
/// empty 500). The answer carried the error's text.
#[actix_web::test]
async fn a_failed_held_logout_answers_500_without_the_stores_error_text() {
    let redis = RedisServer::start();
    let (probe, core) = probed(&redis);
    let (key, _, app, cookie) = with_alice(&core, true).await;
    probe.fail(
        Op::Delete,
        Some(session_core::testing::probe::Fault::Corrupt),
    );
    let err = test::try_call_service(&app, req("/logout", &cookie))
        .await
        .err()
        .expect("the failed logout is an error");
    probe.fail(Op::Delete, None);
    let res = err.error_response();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        res.cookies().next().is_none(),
        "a cookie set or removed: {:?}",
        res.headers()
    );
    let body = actix_web::body::to_bytes(res.into_body()).await.unwrap();
    let body = String::from_utf8_lossy(&body);
    assert!(
        !body.contains("backend") && !body.contains("corrupt"),
        "the answer shows the store's error: {body}"
    );
    assert!(core.load(&id_in(&cookie, &key)).await.unwrap().is_some());
}
