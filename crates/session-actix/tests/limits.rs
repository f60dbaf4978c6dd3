//! A session over `session_redis_max_session_size` answers 413 and stores nothing.

use actix_session::{Session, SessionMiddleware};
use actix_web::{cookie::Key, http::StatusCode, middleware::from_fn, test, web, App, HttpResponse};
use session_actix::{request_scope, ActixStore};
use session_core::{testing::probe::ProbeBackend, SessionStore};

#[derive(serde::Deserialize)]
struct Put {
    len: usize,
}

/// Stores `len` bytes under `blob`.
async fn put(session: Session, q: web::Query<Put>) -> actix_web::Result<HttpResponse> {
    session.insert("blob", "x".repeat(q.len))?;
    Ok(HttpResponse::Ok().finish())
}

/// A login: a new id for the session, with `len` bytes under `blob`.
async fn renew_put(session: Session, q: web::Query<Put>) -> actix_web::Result<HttpResponse> {
    session.renew();
    put(session, q).await
}

#[actix_web::test]
async fn an_oversized_session_is_413_with_nothing_stored() {
    let probe = ProbeBackend::memory();
    let store = SessionStore::new(probe.clone()).with_max_session_size(Some(1024));
    let app = test::init_service(
        App::new()
            .wrap(SessionMiddleware::new(
                ActixStore::new(store),
                Key::from(&[7; 64]),
            ))
            .wrap(from_fn(request_scope))
            .route("/put", web::get().to(put))
            .route("/renew-put", web::get().to(renew_put)),
    )
    .await;

    // A new session over the limit: `save` refuses it. (Errors become responses in the
    // server; the test service hands them back as they are.)
    let err = test::try_call_service(
        &app,
        test::TestRequest::get().uri("/put?len=2000").to_request(),
    )
    .await
    .expect_err("refused");
    let res = err.error_response();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(probe.writes(), 0, "nothing stored");
    let body = actix_web::body::to_bytes(res.into_body()).await.unwrap();
    assert_eq!(body, "session too large: nothing was stored");

    // A session within the limit, then grown over it: `update` refuses it and the stored
    // session keeps its last good state.
    let res = test::call_service(
        &app,
        test::TestRequest::get().uri("/put?len=100").to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = res
        .response()
        .cookies()
        .find(|c| c.name() == "id")
        .expect("a session cookie")
        .into_owned();
    let writes = probe.writes();
    let err = test::try_call_service(
        &app,
        test::TestRequest::get()
            .uri("/put?len=5000")
            .cookie(cookie.clone())
            .to_request(),
    )
    .await
    .expect_err("refused");
    assert_eq!(err.error_response().status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(probe.writes(), writes, "nothing written");

    // A renew over the limit: refused before the old id is deleted (actix-session deletes
    // it first; `request_scope` holds that delete until the new id is stored), so the user
    // keeps the session and the cookie.
    let err = test::try_call_service(
        &app,
        test::TestRequest::get()
            .uri("/renew-put?len=5000")
            .cookie(cookie.clone())
            .to_request(),
    )
    .await
    .expect_err("refused");
    assert_eq!(err.error_response().status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(probe.writes(), writes, "nothing written, nothing deleted");
    let res = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/put?len=10")
            .cookie(cookie)
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK, "the session is still there");
    assert_eq!(probe.writes(), writes + 1);
}
