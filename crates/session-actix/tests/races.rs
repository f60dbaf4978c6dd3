//! Requests of one session at the same instant, through actix-session's `SessionMiddleware`
//! over `ActixStore` inside `request_scope`, on a real Redis server (the middleware tests use
//! the memory store, which takes no version): every request's change lands, and a logout
//! among writers that loaded the session before it sticks.

mod common;

use std::{sync::atomic::Ordering, time::Duration};

use common::{id_in, purge, renew_later, req, session_cookie, set, set_later, Gate};

use actix_session::{config::PersistentSession, SessionMiddleware};
use actix_web::{
    cookie::{time, Key},
    http::StatusCode,
    middleware::from_fn,
    test, web, App,
};
use futures_util::future::join_all;
use session_actix::{request_scope, ActixStore};
use session_core::{backends::redis::RedisBackend, SessionConfig, SessionStore};
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
            test::call_service(&app, req(&uri, &cookie))
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
        assert!(
            answers.iter().all(|r| r.status() == StatusCode::OK),
            "{case}"
        );
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
    let (renewed, out) = tokio::join!(
        test::call_service(&app, req("/renew-later", &cookie)),
        async {
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
        }
    );
    assert_eq!(out.status(), StatusCode::OK);
    assert_eq!(renewed.status(), StatusCode::OK);
    let kept = sessions_in(&redis);
    assert!(
        kept.is_empty(),
        "a renew racing the logout kept the session under a new id: {kept:?}"
    );
}
