//! The actix-web demo server (`examples/actix_demo.rs`), as a library so tests can start it
//! in-process on any [`SessionStore`].
//!
//! The HTTP contract (shared with the axum demo):
//!
//! | route | |
//! |---|---|
//! | `GET /counter` | increments the integer `n` in the session and returns it as text |
//! | `GET /read` | returns `n` as text (0 when absent); never writes |
//! | `POST /login` | stores `user` (form field or query parameter), renews the session id, 200; 400 when `user` is missing, empty or over [`MAX_USER_LEN`](crate::MAX_USER_LEN) bytes; 409 when a logout or another login of the session came at the same instant |
//! | `POST /logout` | deletes the session everywhere and expires the cookie |
//! | `POST /logout-everywhere` | deletes every session of the logged-in user (all devices, both frameworks) through the session index; 401 when not logged in |
//! | `GET /whoami` | 200 with the user name, or 401 |
//! | `GET /healthz` | 200 with JSON naming each backend and its state; 503 when one is down |
//! | `GET /app` | the HTML page of [`crate::app_page`], for a person with a browser |
//!
//! Every answer, errors included, is `text/plain; charset=utf-8` (JSON for `/healthz`, HTML for
//! `/app`) with `X-Content-Type-Options: nosniff`.
//!
//! How the session layer is put together, and why:
//! * [`ActixStore`] under actix-session's `SessionMiddleware`, with a private cookie named
//!   [`COOKIE_NAME`], `HttpOnly`, `SameSite=Lax`, `Secure` from `SESSION_COOKIE_SECURE`
//!   (every cookie setting through [`crate::demo_cookie_config`]), keyed with
//!   `Key::from(cookie_key_material())`, persistent for [`SESSION_TTL`].
//! * [`request_scope`] outside the session middleware: a store outage answers 503 (actix-session
//!   alone answers 500) and writes change only the keys the request changed, so concurrent
//!   requests that change different keys both keep their change.
//! * `/healthz` sits outside the session middleware, so it never loads a session (actix-session
//!   loads eagerly whenever a cookie comes with the request) and reports an outage as JSON.
//!   So does `/app`: the page is the same for everyone and must load during an outage to say so.
//! * `GET /` answers `hello` from inside the session scope without using the session. Unlike the
//!   axum demo, it still costs one store load when the request carries a session cookie:
//!   actix-session's middleware loads the session before the handler runs, whether the handler
//!   uses it or not (`tests/redis_e2e.rs` asserts exactly one `GET`, plus `PEXPIRE` with
//!   sliding expiry). Routes that must not touch the store belong outside the scope, as
//!   `/healthz` does.
//! * [`plain_text_headers`] outermost: every answer, whichever layer made it (a handler, the
//!   session middleware's 500, [`request_scope`]'s 503, actix's own 400, 404 or 413), carries
//!   `X-Content-Type-Options: nosniff` and an explicit content type.
//! * Sliding expiry when `SESSION_REDIS_KEY_EXPIRE` is set: every request that carries a session
//!   resets its TTL to `key_expire` in the load round trip. Without it, the TTL (actix's
//!   [`SESSION_TTL`]) is refreshed whenever the session changes (actix's `OnStateChanges`).

use std::{net::TcpListener, time::Duration};

use actix_session::{config::PersistentSession, Session, SessionMiddleware};
use actix_web::{
    body::{BodySize, BoxBody, MessageBody},
    cookie::{time, Key, SameSite},
    dev::{Server, ServiceFactory, ServiceRequest, ServiceResponse},
    error::InternalError,
    http::{
        header::{self, HeaderValue},
        StatusCode,
    },
    middleware::{from_fn, Next},
    web, App, HttpResponse, HttpResponseBuilder, HttpServer,
};
use session_actix::{request_scope, ActixStore};
use session_core::SessionStore;

use crate::{
    app_page::{AppPage, Framework},
    check_user, health_report, DemoArgs, DemoSettings, COOKIE_NAME, TEXT_PLAIN,
};

pub use crate::SESSION_TTL;

/// The demo's settings and store: everything a worker needs to build its `App`.
#[derive(Clone)]
pub struct ActixDemo {
    store: SessionStore,
    key: Key,
    secure: bool,
    sliding_expiry: Option<Duration>,
    workers: Option<usize>,
    /// The configuration whose cookie settings build the middleware (`from_settings`);
    /// `None`: the demo's fixed defaults.
    cookie_config: Option<session_core::SessionConfig>,
}

impl std::fmt::Debug for ActixDemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is a secret: leave it out.
        f.debug_struct("ActixDemo")
            .field("store", &self.store)
            .field("secure", &self.secure)
            .field("sliding_expiry", &self.sliding_expiry)
            .finish_non_exhaustive()
    }
}

impl ActixDemo {
    /// A demo over `store`, with the cookie key made from `key_material` (at least 64 bytes, as
    /// [`cookie_key_material`](crate::cookie_key_material) gives). Cookies are not `Secure`; expiry does not slide.
    pub fn new(store: SessionStore, key_material: &[u8]) -> Result<Self, String> {
        let key = Key::try_from(key_material).map_err(|_| {
            format!(
                "cookie key material has {} bytes; at least 64 are needed",
                key_material.len()
            )
        })?;
        Ok(Self {
            store,
            key,
            secure: false,
            sliding_expiry: None,
            workers: None,
            cookie_config: None,
        })
    }

    /// The demo as [`run`] makes it from `settings`: their store and key, the cookie settings
    /// of their configuration (`SESSION_COOKIE_*`, see [`crate::demo_cookie_config`]) through
    /// [`session_actix::middleware_from_config`], and sliding expiry.
    pub fn from_settings(settings: DemoSettings) -> Result<Self, String> {
        settings.config.cookie_plan().map_err(|e| e.to_string())?;
        let mut demo = Self::new(settings.store, &settings.key_material)?
            .secure(settings.secure)
            .sliding_expiry(settings.sliding_expiry);
        demo.cookie_config = Some(settings.config);
        Ok(demo)
    }

    /// Marks cookies `Secure` (for https deployments).
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Resets the session's TTL on every request that loads it (see [`ActixStore::sliding_expiry`]).
    pub fn sliding_expiry(mut self, ttl: Option<Duration>) -> Self {
        self.sliding_expiry = ttl;
        self
    }

    /// Number of worker threads (default: one per CPU core).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = Some(workers);
        self
    }

    /// The actix `App` of one worker.
    pub fn app(
        &self,
    ) -> App<
        impl ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<impl MessageBody>,
            Error = actix_web::Error,
            InitError = (),
        >,
    > {
        let mut store = ActixStore::new(self.store.clone());
        if let Some(ttl) = self.sliding_expiry {
            store = store.sliding_expiry(ttl);
        }
        // The cookie must outlive the stored session, or the browser forgets a session that
        // the server still slides.
        let cookie_ttl = SESSION_TTL.max(self.sliding_expiry.unwrap_or_default());
        let sessions = match &self.cookie_config {
            Some(config) => session_actix::middleware_from_config(store, self.key.clone(), config)
                .expect("cookie settings checked by from_settings")
                .build(),
            None => SessionMiddleware::builder(store, self.key.clone())
                .cookie_name(COOKIE_NAME.to_owned())
                .cookie_secure(self.secure)
                .cookie_http_only(true)
                .cookie_same_site(SameSite::Lax)
                .session_lifecycle(PersistentSession::default().session_ttl(
                    time::Duration::try_from(cookie_ttl).unwrap_or(time::Duration::DAY),
                ))
                .build(),
        };
        App::new()
            .app_data(web::Data::new(self.store.clone()))
            .route("/healthz", web::get().to(healthz))
            .route("/app", web::get().to(app_page))
            .service(
                web::scope("")
                    .wrap(sessions)
                    .wrap(from_fn(request_scope))
                    .route("/", web::get().to(hello))
                    .route("/counter", web::get().to(counter))
                    .route("/read", web::get().to(read))
                    .route("/login", web::post().to(login))
                    .route("/logout", web::post().to(logout))
                    .route("/logout-everywhere", web::post().to(logout_everywhere))
                    .route("/whoami", web::get().to(whoami)),
            )
            // Before anything touches a session: a refused request stores nothing.
            .wrap(from_fn(refuse_cross_site))
            // Last, so outermost: it sees every answer, errors of the layers inside included.
            .wrap(from_fn(plain_text_headers))
    }

    /// Starts serving on `listener`; the returned server runs when awaited or spawned.
    pub fn serve(self, listener: TcpListener) -> std::io::Result<Server> {
        let workers = self.workers;
        let demo = self;
        let mut server = HttpServer::new(move || demo.app());
        if let Some(workers) = workers {
            server = server.workers(workers);
        }
        Ok(server.listen(listener)?.run())
    }
}

/// The whole demo: settings from the environment, then serve until stopped (actix-web's
/// server stops gracefully on Ctrl-C and SIGTERM). The axum twin is [`crate::axum_app::run`].
pub async fn run(args: DemoArgs) -> Result<(), String> {
    let demo = ActixDemo::from_settings(DemoSettings::from_env().await?)?;
    let listener =
        TcpListener::bind(args.addr).map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
    tracing::info!(addr = %args.addr, "actix demo listening");
    demo.serve(listener)
        .map_err(|e| format!("cannot start the server on {}: {e}", args.addr))?
        .await
        .map_err(|e| format!("server failed: {e}"))
}

/// `n` from the session: 0 when absent, an error naming the key when it is not an integer.
fn read_n(session: &Session) -> actix_web::Result<i64> {
    session
        .get::<i64>("n")
        .map(|n| n.unwrap_or(0))
        .map_err(|_| {
            actix_web::error::ErrorInternalServerError(
                "session key `n` holds a value that is not an integer",
            )
        })
}

/// Sets `X-Content-Type-Options: nosniff` on every answer, and `text/plain; charset=utf-8` on
/// those that name no content type (actix's own 404 and error answers, actix-session's 500).
/// `/whoami` and `/login` echo the user name: without both headers a browser may sniff markup in
/// it and render it as HTML (stored XSS). An error status with an empty body gets its reason
/// phrase (`Payload Too Large`, ...), so that every error reads as a message.
///
/// An error that reaches this middleware as `Err` (`request_scope`'s 503, actix-session's 500)
/// stays an `Err`, since actix builds its response only after every middleware ran: it is
/// re-wrapped with its response, headers added. (Turning it into a `ServiceResponse` here would
/// need a clone of the request, which breaks actix's routing further in.)
pub async fn plain_text_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    match next.call(req).await {
        Ok(res) => {
            let (req, res) = res.into_parts();
            Ok(ServiceResponse::new(
                req,
                plain_text(res.map_into_boxed_body()),
            ))
        }
        Err(err) => {
            let res = plain_text(err.error_response());
            Err(InternalError::from_response(err, res).into())
        }
    }
}

/// Answers 403 to a request from another site that may change state
/// ([`crate::is_cross_site`]: login CSRF), before any session is touched.
pub async fn refuse_cross_site(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let headers = req.headers();
    if crate::is_cross_site(req.method().as_str(), |name| {
        headers.get(name).map(HeaderValue::as_bytes)
    }) {
        let res = HttpResponse::Forbidden()
            .content_type(TEXT_PLAIN)
            .body(crate::CROSS_SITE_REFUSED);
        return Ok(req.into_response(res));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// The headers of [`plain_text_headers`] on one response.
fn plain_text(mut res: HttpResponse) -> HttpResponse {
    let status = res.status();
    if (status.is_client_error() || status.is_server_error())
        && matches!(res.body().size(), BodySize::None | BodySize::Sized(0))
    {
        res = res.set_body(BoxBody::new(status.canonical_reason().unwrap_or("error")));
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_PLAIN));
    }
    let headers = res.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !headers.contains_key(header::CONTENT_TYPE) {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_PLAIN));
    }
    res
}

/// A `text/plain; charset=utf-8` answer: the type is named by the handler, not left to the
/// fallback of [`plain_text_headers`].
fn text(mut builder: HttpResponseBuilder, body: impl Into<String>) -> HttpResponse {
    builder.content_type(TEXT_PLAIN).body(body.into())
}

async fn hello() -> HttpResponse {
    text(HttpResponse::Ok(), "hello")
}

async fn counter(session: Session) -> actix_web::Result<HttpResponse> {
    let n = read_n(&session)?.saturating_add(1);
    session.insert("n", n)?;
    Ok(text(HttpResponse::Ok(), n.to_string()))
}

async fn read(session: Session) -> actix_web::Result<HttpResponse> {
    Ok(text(HttpResponse::Ok(), read_n(&session)?.to_string()))
}

/// The `user` parameter, from a form body or the query string.
#[derive(serde::Deserialize)]
struct UserParam {
    user: Option<String>,
}

async fn login(
    session: Session,
    query: web::Query<UserParam>,
    form: Option<web::Form<UserParam>>,
) -> actix_web::Result<HttpResponse> {
    let user = form
        .and_then(|f| f.into_inner().user)
        .or_else(|| query.into_inner().user);
    // Checked before the session is touched: a rejected name stores nothing.
    let user = match check_user(user) {
        Ok(user) => user,
        Err(reason) => return Ok(text(HttpResponse::BadRequest(), reason)),
    };
    session.insert("user", &user)?;
    // A new id at the privilege change: a session id planted before login is worthless after.
    session.renew();
    Ok(text(HttpResponse::Ok(), user))
}

async fn logout(session: Session) -> HttpResponse {
    session.purge();
    text(HttpResponse::Ok(), "logged out")
}

async fn logout_everywhere(
    session: Session,
    store: web::Data<SessionStore>,
) -> actix_web::Result<HttpResponse> {
    let Some(user) = session.get::<String>("user").map_err(|_| {
        actix_web::error::ErrorInternalServerError("session key `user` does not hold a string")
    })?
    else {
        return Ok(text(HttpResponse::Unauthorized(), "not logged in"));
    };
    let (status, body) = crate::logout_everywhere(&store, &user).await;
    if status == 200 {
        // This session was one of them: expire its cookie too.
        session.purge();
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    Ok(text(HttpResponse::build(status), body))
}

async fn whoami(session: Session) -> actix_web::Result<HttpResponse> {
    let user = session.get::<String>("user").map_err(|_| {
        actix_web::error::ErrorInternalServerError("session key `user` does not hold a string")
    })?;
    Ok(match user {
        Some(user) => text(HttpResponse::Ok(), user),
        None => text(HttpResponse::Unauthorized(), "not logged in"),
    })
}

async fn app_page() -> HttpResponse {
    let page = AppPage::render(Framework::Actix);
    let mut res = HttpResponse::Ok();
    for header in page.headers() {
        res.insert_header(header);
    }
    res.body(page.body)
}

async fn healthz(store: web::Data<SessionStore>) -> HttpResponse {
    let (status, body) = health_report(&store).await;
    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE))
        .json(body)
}

#[cfg(test)]
mod tests {
    use actix_web::body::to_bytes;

    use super::*;

    /// The session size limit's 413 (or any error a layer makes with an empty body) reaches the
    /// client as a readable plain-text message with `nosniff`.
    #[actix_web::test]
    async fn an_empty_error_reads_as_its_reason_in_plain_text() {
        let res = plain_text(HttpResponse::PayloadTooLarge().finish());
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(res.headers().get(header::CONTENT_TYPE).unwrap(), TEXT_PLAIN);
        assert_eq!(
            res.headers().get(header::X_CONTENT_TYPE_OPTIONS).unwrap(),
            "nosniff"
        );
        let body = to_bytes(res.into_body()).await.unwrap();
        assert_eq!(body, "Payload Too Large");
    }

    /// A message the error already has is kept, and so is JSON's content type.
    #[actix_web::test]
    async fn a_message_and_its_type_are_kept() {
        let res = plain_text(text(HttpResponse::PayloadTooLarge(), "session too large"));
        let body = to_bytes(res.into_body()).await.unwrap();
        assert_eq!(body, "session too large");
        let res = plain_text(HttpResponse::Ok().json(serde_json::json!({"ok": true})));
        assert_eq!(
            res.headers().get(header::CONTENT_TYPE).unwrap(),
            "application/json"
        );
        assert_eq!(
            res.headers().get(header::X_CONTENT_TYPE_OPTIONS).unwrap(),
            "nosniff"
        );
    }
}
