//! Redis dies *during* a request, after the handler loaded its session and before the layer's
//! write, on a real Redis server (the layer tests' outages use the memory double, and take the
//! store down before the request): the README's "Redis down gives a typed error (HTTP 503) and
//! the same store recovers when Redis is back, without a restart", and "logout sticks" seen
//! from the client: a logout, a write or a login (renew) that could not be stored is never
//! answered as done (no 200, no cookie set or removed), and once Redis is back the same layer
//! and store serve new sessions. Also with `with_skip_save_on_server_error`, whose purge is
//! still made after a 5xx.

mod common;

use std::sync::Arc;

use axum::{extract::Path, http::StatusCode, routing::get, Extension, Router};
use common::{key, open, send};
use session_axum::{Session, SessionError, SessionLayer};
use session_core::{SessionConfig, SessionStore};
use session_testkit::RedisServer;

async fn login(session: Session) -> Result<(), SessionError> {
    session.insert("user", "alice").await?;
    session.renew().await
}

async fn whoami(session: Session) -> Result<(StatusCode, String), SessionError> {
    Ok(match session.get::<String>("user").await? {
        Some(user) => (StatusCode::OK, user),
        None => (StatusCode::UNAUTHORIZED, String::new()),
    })
}

/// Loads the session while Redis is up, kills Redis, then makes the change named by the path:
/// the layer's store call after the handler is the first to fail.
async fn kill_then(
    session: Session,
    Extension(redis): Extension<Arc<RedisServer>>,
    Path(what): Path<String>,
) -> Result<&'static str, SessionError> {
    assert_eq!(
        session.get::<String>("user").await?.as_deref(),
        Some("alice")
    );
    redis.kill();
    match what.as_str() {
        "set" => session.insert("n", &1).await?,
        "remove" => {
            session.remove::<String>("user").await?;
        }
        "purge" => session.purge().await?,
        "renew" => {
            session.renew().await?;
            session.insert("user", "bob").await?;
        }
        other => panic!("unknown change {other}"),
    }
    Ok("done")
}

#[tokio::test]
async fn redis_dying_between_the_load_and_the_write_is_503_and_the_store_recovers() {
    let redis = Arc::new(RedisServer::start());
    let config = SessionConfig::builder()
        .set("session_redis_url", &redis.url())
        .build()
        .unwrap();
    let store = SessionStore::from_config(&config).await.unwrap();
    for skip_save_on_server_error in [false, true] {
        let layer = SessionLayer::new(store.clone(), key())
            .with_skip_save_on_server_error(skip_save_on_server_error);
        let app = Router::new()
            .route("/login", get(login))
            .route("/whoami", get(whoami))
            .route("/kill-then/{what}", get(kill_then))
            .layer(layer)
            .layer(Extension(redis.clone()));

        for what in ["set", "remove", "purge", "renew"] {
            let case = format!("{what}, skip_save_on_server_error: {skip_save_on_server_error}");
            let res = send(&app, "GET", "/login", None).await;
            assert_eq!(res.status, StatusCode::OK, "{case}");
            let cookie = res.cookie_pair();
            let id = open(&cookie);

            let res = send(&app, "GET", &format!("/kill-then/{what}"), Some(&cookie)).await;
            assert_eq!(
                res.status,
                StatusCode::SERVICE_UNAVAILABLE,
                "{case}: Redis gone after the load: {res:?}"
            );
            assert!(
                res.set_cookie.is_empty(),
                "{case}: a change that was not stored set or removed the cookie: {res:?}"
            );

            // Redis back (empty: the test kit keeps no data): the same layer and store serve
            // new sessions, and the old cookie is worth a fresh session, not an error.
            redis.restart();
            assert!(store.load(&id).await.unwrap().is_none(), "{case}");
            let res = send(&app, "GET", "/whoami", Some(&cookie)).await;
            assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{case}: {res:?}");
            let res = send(&app, "GET", "/login", None).await;
            assert_eq!(res.status, StatusCode::OK, "{case}: no recovery: {res:?}");
            let res = send(&app, "GET", "/whoami", Some(&res.cookie_pair())).await;
            assert_eq!(
                (res.status, res.body.as_str()),
                (StatusCode::OK, "alice"),
                "{case}"
            );
        }
    }
}
