//! Shared by the integration tests: the handlers that set a key now or after a signal, and
//! reading the session cookie of a response and the id it seals.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};

use actix_session::Session;
use actix_web::{
    cookie::{Cookie, CookieJar, Key},
    dev::ServiceResponse,
    web, HttpResponse,
};
use session_core::SessionId;
use tokio::sync::Notify;

#[derive(serde::Deserialize)]
pub struct KeyValue {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

pub async fn set(session: Session, q: web::Query<KeyValue>) -> actix_web::Result<HttpResponse> {
    session.insert(&q.key, &q.value)?;
    Ok(HttpResponse::Ok().finish())
}

pub async fn purge(session: Session) -> HttpResponse {
    session.purge();
    HttpResponse::Ok().finish()
}

/// What the `_later` handlers wait on: each counts itself in `loaded` once it has loaded the
/// session, then waits for `go`.
#[derive(Default)]
pub struct Gate {
    pub loaded: AtomicUsize,
    pub go: Notify,
}

impl Gate {
    /// Counts a handler that loaded its session, then waits for the test's signal (a permit
    /// of `notify_one` given before counts too).
    pub async fn pass(&self) {
        let go = self.go.notified();
        self.loaded.fetch_add(1, Ordering::SeqCst);
        go.await;
    }
}

/// Loads the session, then waits for the test's signal before changing it: the window in
/// which a concurrent request acts.
pub async fn set_later(
    session: Session,
    q: web::Query<KeyValue>,
    gate: web::Data<Gate>,
) -> actix_web::Result<HttpResponse> {
    let _ = session.get::<String>(&q.key)?;
    gate.pass().await;
    session.insert(&q.key, &q.value)?;
    Ok(HttpResponse::Ok().finish())
}

/// The session cookie (`id`) a response sets, if any.
pub fn session_cookie<B>(res: &ServiceResponse<B>) -> Option<Cookie<'static>> {
    res.response()
        .cookies()
        .find(|c| c.name() == "id")
        .map(|c| c.into_owned())
}

/// The session id inside a cookie, decrypted with the app's key.
pub fn id_in(cookie: &Cookie<'static>, key: &Key) -> SessionId {
    let mut jar = CookieJar::new();
    jar.add_original(cookie.clone());
    let plain = jar.private(key).get("id").expect("cookie decrypts");
    SessionId::parse(plain.value()).expect("cookie holds a session id")
}

/// A store on `redis`, with the default configuration.
pub fn redis_store(redis: &session_testkit::RedisServer) -> session_core::SessionStore {
    let config = session_core::SessionConfig {
        url: Some(redis.url()),
        ..session_core::SessionConfig::default()
    };
    session_core::SessionStore::new(
        session_core::backends::redis::RedisBackend::from_config(&config).unwrap(),
    )
}

/// A GET of `uri` with the session cookie.
pub fn req(uri: &str, cookie: &Cookie<'static>) -> actix_http::Request {
    actix_web::test::TestRequest::get()
        .uri(uri)
        .cookie(cookie.clone())
        .to_request()
}

/// Loads the session, waits for the test's signal, then renews it (a login) under another
/// user.
pub async fn renew_later(
    session: Session,
    gate: web::Data<Gate>,
) -> actix_web::Result<HttpResponse> {
    let _ = session.get::<String>("user")?;
    gate.pass().await;
    session.renew();
    session.insert("user", "mallory")?;
    Ok(HttpResponse::Ok().finish())
}

/// The session cookie a browser keeps after `answers`' session cookies (`None`: the answer
/// set none), applied in that order over the one it sent: a live cookie replaces it, a
/// removal (empty value) drops it, an answer without one leaves it.
pub fn jar_after(
    sent: &Cookie<'static>,
    answers: &[Option<Cookie<'static>>],
) -> Option<Cookie<'static>> {
    let mut jar = Some(sent.clone());
    for set in answers.iter().flatten() {
        jar = (!set.value().is_empty()).then(|| set.clone());
    }
    jar
}

/// Sends `req` through `app` as a server does: an error is answered by its own response
/// (what `request_scope` made of it: 409, 413, 503). The status and the session cookie set.
pub async fn answer<S, B>(
    app: &S,
    req: actix_http::Request,
) -> (actix_web::http::StatusCode, Option<Cookie<'static>>)
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    match actix_web::test::try_call_service(app, req).await {
        Ok(res) => (res.status(), session_cookie(&res)),
        Err(err) => {
            let res = err.error_response();
            let cookie = res
                .cookies()
                .find(|c| c.name() == "id")
                .map(|c| c.into_owned());
            (res.status(), cookie)
        }
    }
}
