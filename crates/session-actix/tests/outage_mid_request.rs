//! Redis dies *during* a request, after actix-session loaded the session and before its write,
//! on a real Redis server (the middleware tests' outages use the memory double, and take the
//! store down before the request): the README's "Redis down gives a typed error (HTTP 503) and
//! the same store recovers when Redis is back, without a restart", and "logout sticks" seen
//! from the client: a logout, a write or a login (renew) that could not be stored is never
//! answered as done (no 200, no cookie set or removed), and once Redis is back the same
//! middleware and store serve new sessions.

mod common;

use actix_session::{Session, SessionMiddleware};
use actix_web::{
    cookie::{Cookie, Key},
    http::StatusCode,
    middleware::from_fn,
    test, web, App, HttpResponse,
};
use common::{id_in, session_cookie};
use session_actix::{request_scope, ActixStore};
use session_core::{SessionConfig, SessionStore};
use session_testkit::RedisServer;

async fn login(session: Session) -> actix_web::Result<HttpResponse> {
    session.renew();
    session.insert("user", "alice")?;
    Ok(HttpResponse::Ok().finish())
}

async fn whoami(session: Session) -> actix_web::Result<HttpResponse> {
    Ok(match session.get::<String>("user")? {
        Some(user) => HttpResponse::Ok().body(user),
        None => HttpResponse::Unauthorized().finish(),
    })
}

/// Reads the session (loaded by the middleware while Redis was up), kills Redis, then makes
/// the change named by the path: the store call after the handler is the first to fail.
async fn kill_then(
    session: Session,
    redis: web::Data<RedisServer>,
    what: web::Path<String>,
) -> actix_web::Result<HttpResponse> {
    assert_eq!(session.get::<String>("user")?.as_deref(), Some("alice"));
    redis.kill();
    match what.as_str() {
        "set" => session.insert("n", 1)?,
        "purge" => session.purge(),
        "renew" => {
            session.renew();
            session.insert("user", "bob")?;
        }
        other => panic!("unknown change {other}"),
    }
    Ok(HttpResponse::Ok().body("done"))
}

/// Status and `Set-Cookie` count of a request, whether the test service hands back a response
/// or the error the server would turn into one.
async fn call<S, B>(app: &S, uri: &str, cookie: Option<&Cookie<'static>>) -> (StatusCode, usize)
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
{
    let mut req = test::TestRequest::get().uri(uri);
    if let Some(cookie) = cookie {
        req = req.cookie(cookie.clone());
    }
    match test::try_call_service(app, req.to_request()).await {
        Ok(res) => (res.status(), res.response().cookies().count()),
        Err(err) => {
            let res = err.error_response();
            (res.status(), res.cookies().count())
        }
    }
}

#[actix_web::test]
async fn redis_dying_between_the_load_and_the_write_is_503_and_the_store_recovers() {
    let redis = web::Data::new(RedisServer::start());
    let config = SessionConfig::builder()
        .set("session_redis_url", &redis.url())
        .build()
        .unwrap();
    let core = SessionStore::from_config(&config).await.unwrap();
    let key = Key::generate();
    let app = test::init_service(
        App::new()
            .app_data(redis.clone())
            .wrap(SessionMiddleware::new(
                ActixStore::new(core.clone()),
                key.clone(),
            ))
            .wrap(from_fn(request_scope))
            .route("/login", web::get().to(login))
            .route("/whoami", web::get().to(whoami))
            .route("/kill-then/{what}", web::get().to(kill_then)),
    )
    .await;

    for what in ["set", "purge", "renew"] {
        let res =
            test::call_service(&app, test::TestRequest::get().uri("/login").to_request()).await;
        assert_eq!(res.status(), StatusCode::OK, "{what}");
        let cookie = session_cookie(&res).expect("a login sets the cookie");
        let id = id_in(&cookie, &key);

        let (status, cookies) = call(&app, &format!("/kill-then/{what}"), Some(&cookie)).await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{what} with Redis gone after the load"
        );
        assert_eq!(
            cookies, 0,
            "{what}: a change that was not stored set or removed the cookie"
        );

        // Redis back (empty: the test kit keeps no data): the same middleware and store serve
        // new sessions, and the old cookie is worth a fresh session, not an error.
        redis.restart();
        assert!(core.load(&id).await.unwrap().is_none(), "{what}");
        let (status, _) = call(&app, "/whoami", Some(&cookie)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
        let res =
            test::call_service(&app, test::TestRequest::get().uri("/login").to_request()).await;
        assert_eq!(res.status(), StatusCode::OK, "{what}: no recovery");
        let fresh = session_cookie(&res).unwrap();
        let res = test::call_service(
            &app,
            test::TestRequest::get()
                .uri("/whoami")
                .cookie(fresh)
                .to_request(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK, "{what}");
        assert_eq!(test::read_body(res).await, "alice", "{what}");
    }
}
