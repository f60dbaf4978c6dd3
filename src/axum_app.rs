//! The axum demo server (`examples/axum_demo.rs`), as a library so tests can start it
//! in-process on any [`SessionStore`]. Same HTTP contract as the actix demo
//! ([`crate::actix_app`], and the README).
//!
//! Besides the contract, `GET /` answers `hello` from behind the session layer without touching
//! the session: the session is lazy, so this request makes no store (Redis) call even when it
//! carries a valid session cookie (`tests/redis_e2e.rs` checks that on a real redis-server).
//!
//! Every answer, the session layer's and axum's own errors included, leaves through
//! [`plain_text_headers`]: `X-Content-Type-Options: nosniff` and an explicit content type.

use axum::{
    body::{Body, HttpBody},
    extract::Request,
    extract::{rejection::FormRejection, Query, State},
    http::{header, HeaderValue, StatusCode},
    middleware::{from_fn, map_response, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
    Form, Json, Router,
};
use serde::Deserialize;
use session_axum::{Key, Session, SessionError, SessionLayer};
use session_core::SessionStore;

use std::time::Duration;

use crate::{
    app_page::{AppPage, Framework},
    check_user, health_report, DemoArgs, DemoSettings, COOKIE_NAME, SESSION_TTL, TEXT_PLAIN,
};

/// The session layer both demos agree on: cookie [`COOKIE_NAME`], key from `key_material`
/// (`Key::from`, as the actix demo does), `Secure` as given, a persistent cookie and store TTL
/// of [`SESSION_TTL`] (as the actix demo), and sliding expiry to `sliding_expiry` when
/// `SESSION_REDIS_KEY_EXPIRE` is set (the core's TTL rule then makes every refresh use it).
///
/// # Panics
/// Panics when `key_material` is shorter than 64 bytes; [`crate::cookie_key_material`] never
/// returns less.
pub fn session_layer(
    store: SessionStore,
    key_material: &[u8],
    secure: bool,
    sliding_expiry: Option<Duration>,
) -> SessionLayer {
    // The cookie must outlive the stored session, or the browser forgets a session that the
    // server still slides.
    let cookie_ttl = SESSION_TTL.max(sliding_expiry.unwrap_or_default());
    SessionLayer::new(store, Key::from(key_material))
        .with_name(COOKIE_NAME)
        .with_secure(secure)
        .with_max_age(Some(cookie_ttl))
        .with_ttl(Some(SESSION_TTL))
        .with_sliding_expiry(sliding_expiry.is_some())
}

/// The demo's routes behind the shared session layer (see [`session_layer`]).
///
/// # Panics
/// As [`session_layer`].
pub fn router(
    store: SessionStore,
    key_material: &[u8],
    secure: bool,
    sliding_expiry: Option<Duration>,
) -> Router {
    let layer = session_layer(store.clone(), key_material, secure, sliding_expiry);
    router_with_layer(store, layer)
}

/// The demo as [`run`] makes it from `settings`: their store and key, the cookie settings of
/// their configuration (`SESSION_COOKIE_*`, see [`crate::demo_cookie_config`]) through
/// [`SessionLayer::from_config`], and sliding expiry when `SESSION_REDIS_KEY_EXPIRE` is set.
///
/// # Panics
/// When the cookie settings are invalid, which [`DemoSettings::from_env`] has already refused.
pub fn router_from_settings(settings: DemoSettings) -> Router {
    let layer = SessionLayer::from_config(
        settings.store.clone(),
        Key::from(&settings.key_material),
        &settings.config,
    )
    .expect("cookie settings checked by DemoSettings")
    .with_sliding_expiry(settings.sliding_expiry.is_some());
    router_with_layer(settings.store, layer)
}

/// The demo's routes behind a given layer, for tests that need other settings (sliding expiry,
/// a persistent cookie). `store` answers `/healthz` and should be the layer's store.
pub fn router_with_layer(store: SessionStore, layer: SessionLayer) -> Router {
    Router::new()
        .route("/", get(hello))
        .route("/counter", get(counter))
        .route("/read", get(read))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/whoami", get(whoami))
        .route("/logout-everywhere", post(logout_everywhere))
        .layer(layer)
        .with_state(store.clone())
        // /healthz and /app sit outside the session layer: they never touch a session (the
        // page loads during an outage, to say so).
        .route("/healthz", get(move || healthz(store.clone())))
        .route("/app", get(app_page))
        // Before anything touches a session: a refused request stores nothing.
        .layer(from_fn(refuse_cross_site))
        // Last, so outermost: it sees every answer, the session layer's errors included.
        .layer(map_response(plain_text_headers))
}

/// Answers 403 to a request from another site that may change state
/// ([`crate::is_cross_site`]: login CSRF), before any session is touched.
pub async fn refuse_cross_site(req: Request, next: Next) -> Response {
    let headers = req.headers();
    if crate::is_cross_site(req.method().as_str(), |name| {
        headers.get(name).map(HeaderValue::as_bytes)
    }) {
        return (StatusCode::FORBIDDEN, crate::CROSS_SITE_REFUSED).into_response();
    }
    next.run(req).await
}

/// Sets `X-Content-Type-Options: nosniff` on every answer and `text/plain; charset=utf-8` on
/// those that name no content type (axum's empty 404 and 405). `/whoami` and `/login` echo the
/// user name: without both headers a browser may sniff markup in it and render it as HTML.
/// An error status with an empty body gets its reason phrase (`Payload Too Large`, ...), so
/// that every error reads as a message.
pub async fn plain_text_headers(mut res: Response) -> Response {
    let status = res.status();
    if (status.is_client_error() || status.is_server_error())
        && res.body().size_hint().exact() == Some(0)
    {
        let reason = status.canonical_reason().unwrap_or("error");
        *res.body_mut() = Body::from(reason);
        res.headers_mut().remove(header::CONTENT_LENGTH);
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

/// The whole demo: settings from the environment, then serve until stopped (gracefully, on
/// Ctrl-C). The actix twin is [`crate::actix_app::run`].
pub async fn run(args: DemoArgs) -> Result<(), String> {
    let app = router_from_settings(DemoSettings::from_env().await?);
    serve_until_ctrl_c(app, args.addr, "axum demo").await
}

/// Serves `app` on `addr` until Ctrl-C (gracefully), logging `name` and the address once
/// listening: the end of every axum demo's `run`.
pub async fn serve_until_ctrl_c(
    app: Router,
    addr: std::net::SocketAddr,
    name: &str,
) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    tracing::info!(%addr, "{name} listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| format!("server failed: {e}"))
}

/// `GET /`: a route behind the session layer that never touches the session.
async fn hello() -> &'static str {
    "hello"
}

/// `GET /counter`: increments `n` and returns it.
async fn counter(session: Session) -> Result<String, SessionError> {
    let n = session
        .get::<i64>("n")
        .await?
        .unwrap_or(0)
        .saturating_add(1);
    session.insert("n", &n).await?;
    Ok(n.to_string())
}

/// `GET /read`: returns `n` (0 when absent) and never writes.
async fn read(session: Session) -> Result<String, SessionError> {
    Ok(session.get::<i64>("n").await?.unwrap_or(0).to_string())
}

#[derive(Debug, Deserialize)]
struct UserParam {
    user: Option<String>,
}

/// `POST /login`: stores `user` (form field, else query parameter) and renews the session id.
async fn login(
    session: Session,
    Query(query): Query<UserParam>,
    form: Result<Form<UserParam>, FormRejection>,
) -> Response {
    let from_form = form.ok().and_then(|Form(f)| f.user);
    // Checked before the session is touched: a rejected name stores nothing.
    let user = match check_user(from_form.or(query.user)) {
        Ok(user) => user,
        Err(reason) => return (StatusCode::BAD_REQUEST, reason).into_response(),
    };
    let result = async {
        session.insert("user", &user).await?;
        // A new id at login: an id planted before it is worthless (session fixation).
        session.renew().await
    };
    match result.await {
        // The user name, as the actix demo answers.
        Ok(()) => (StatusCode::OK, user).into_response(),
        Err(err) => err.into_response(),
    }
}

/// `POST /logout`: deletes the session everywhere and expires the cookie.
async fn logout(session: Session) -> Result<&'static str, SessionError> {
    session.purge().await?;
    Ok("logged out")
}

/// `POST /logout-everywhere`: every session of the logged-in user, on every device and both
/// frameworks, deleted through the session index; 401 when not logged in.
async fn logout_everywhere(
    State(store): State<SessionStore>,
    session: Session,
) -> Result<Response, SessionError> {
    let Some(user) = session.get::<String>("user").await? else {
        return Ok((StatusCode::UNAUTHORIZED, "not logged in").into_response());
    };
    let (status, body) = crate::logout_everywhere(&store, &user).await;
    if status == 200 {
        // This session was one of them: expire its cookie too.
        session.purge().await?;
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    Ok((status, body).into_response())
}

/// `GET /whoami`: 200 with the user name, or 401.
async fn whoami(session: Session) -> Result<Response, SessionError> {
    Ok(match session.get::<String>("user").await? {
        Some(user) => (StatusCode::OK, user).into_response(),
        None => (StatusCode::UNAUTHORIZED, "not logged in").into_response(),
    })
}

/// `GET /app`: the page of [`crate::app_page`].
async fn app_page() -> Response {
    let page = AppPage::render(Framework::Axum);
    (page.headers(), page.body).into_response()
}

/// `GET /healthz`: each backend and its state; 503 when one is down.
async fn healthz(store: SessionStore) -> Response {
    let (status, body) = health_report(&store).await;
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;

    use super::*;

    /// The session size limit's 413 (or any error made with an empty body) reaches the client
    /// as a readable plain-text message with `nosniff`.
    #[tokio::test]
    async fn an_empty_error_reads_as_its_reason_in_plain_text() {
        let res = plain_text_headers(StatusCode::PAYLOAD_TOO_LARGE.into_response()).await;
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(res.headers()[header::CONTENT_TYPE], TEXT_PLAIN);
        assert_eq!(res.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        let body = to_bytes(res.into_body(), 1024).await.unwrap();
        assert_eq!(body, "Payload Too Large");
    }

    /// A message the error already has is kept, and so is JSON's content type.
    #[tokio::test]
    async fn a_message_and_its_type_are_kept() {
        let res = plain_text_headers(
            (StatusCode::PAYLOAD_TOO_LARGE, "session too large").into_response(),
        )
        .await;
        let body = to_bytes(res.into_body(), 1024).await.unwrap();
        assert_eq!(body, "session too large");
        let res = plain_text_headers(Json(serde_json::json!({"ok": true})).into_response()).await;
        assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(res.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
}
