//! The axum-login demo (`examples/axum_login.rs`): axum-login 0.18 over tower-sessions'
//! `SessionManagerLayer` over [`TowerStore`] over our store, as a library so tests can run it
//! in-process on any [`SessionStore`].
//!
//! It reads the same configuration as the other demos ([`DemoSettings::from_env`]: the file
//! store when nothing is configured, Redis in any mode otherwise) and keys tower-sessions'
//! private (encrypted) cookie with `SESSION_SECRET`. With `SESSION_REDIS_KEY_EXPIRE`, every
//! request with a session restarts its TTL (see [`router`]).
//!
//! | route | behaviour |
//! |---|---|
//! | `POST /login` | form fields `user` and `password`; 200 `logged in as <user>` (a new session id: axum-login cycles it), 401 for a wrong pair, 400 when a field is missing or longer than 256 bytes |
//! | `GET /protected` | 200 `hello, <user>` when logged in; 401 otherwise (axum-login's `login_required!`) |
//! | `POST /logout` | ends the session (deleted from the store, cookie removed) |
//! | `GET /healthz` | as the other demos |
//! | `GET /` | `hello` |
//!
//! The users are two fixed demo accounts, [`DEMO_USERS`]; their passwords are kept as SHA-256
//! digests, a stand-in for a user database with a real password hash (argon2, ...). The
//! `session_auth_hash` axum-login stores in each session is keyed with the cookie key material,
//! so the session store holds nothing to guess a password from.
//!
//! [`TowerScopeLayer`] wraps axum-login's layer: inside it a login (axum-login cycles the
//! session id) racing a logout or another login of the same session keeps at most one live
//! id and the logout sticks (the loser answers 409, with no cookie), and a store failure of
//! the request answers 503 (unavailable) or 413 (too large) instead of axum-login's empty 500.
//! The outermost middleware ([`outage_is_503`]) still turns a 500 into 503 when the adapter's
//! calls just failed as unavailable, or the store's health check says a backend is down.

use std::collections::HashMap;

use axum::{
    extract::{rejection::FormRejection, State},
    http::StatusCode,
    middleware::{from_fn, from_fn_with_state, map_response, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
    Form, Json, Router,
};
use axum_login::{login_required, AuthManagerLayerBuilder, AuthSession, AuthUser, AuthnBackend};
use serde::Deserialize;
use session_axum::{TowerScopeLayer, TowerStore};
use session_core::SessionStore;
use sha2::{Digest, Sha256};
use tower_sessions::{cookie::Key, Expiry, SessionManagerLayer};

use crate::{
    axum_app::{plain_text_headers, serve_until_ctrl_c},
    check_user, health_report, DemoArgs, DemoSettings, COOKIE_NAME, MAX_USER_LEN, SESSION_TTL,
};

/// The demo's accounts: user name and password.
pub const DEMO_USERS: [(&str, &str); 2] = [("alice", "wonderland"), ("bob", "builder")];

/// A demo user: axum-login keeps its id and `session_auth_hash` in the session, and logs the
/// session out when the hash no longer matches (a changed password ends every session).
#[derive(Clone)]
pub struct User {
    name: String,
    /// Checked at login; never leaves the process.
    password_digest: [u8; 32],
    /// What axum-login stores in the session: derived from the password *and* the cookie key
    /// material, so the session store holds nothing a password can be guessed from offline.
    session_auth_hash: [u8; 32],
}

impl std::fmt::Debug for User {
    /// The name only: the digest stands for a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl AuthUser for User {
    type Id = String;

    fn id(&self) -> String {
        self.name.clone()
    }

    fn session_auth_hash(&self) -> &[u8] {
        &self.session_auth_hash
    }
}

/// What `POST /login` reads.
#[derive(Clone, Deserialize)]
pub struct Credentials {
    user: Option<String>,
    password: Option<String>,
}

/// The user "database": [`DEMO_USERS`].
#[derive(Clone)]
pub struct Users(HashMap<String, User>);

impl Users {
    /// The demo users; `key_material` (the cookie key's) keys their session auth hashes.
    pub fn new(key_material: &[u8]) -> Self {
        let user = |name: &str, password: &str| {
            let password_digest: [u8; 32] = Sha256::digest(password.as_bytes()).into();
            let session_auth_hash = Sha256::new()
                .chain_update(b"axum-login demo session auth v1")
                .chain_update(Sha256::digest(key_material))
                .chain_update(password_digest)
                .finalize()
                .into();
            User {
                name: name.to_owned(),
                password_digest,
                session_auth_hash,
            }
        };
        Self(
            DEMO_USERS
                .iter()
                .map(|(name, password)| ((*name).to_owned(), user(name, password)))
                .collect(),
        )
    }
}

impl AuthnBackend for Users {
    type User = User;
    type Credentials = (String, String);
    type Error = std::convert::Infallible;

    async fn authenticate(
        &self,
        (name, password): (String, String),
    ) -> Result<Option<User>, Self::Error> {
        let digest: [u8; 32] = Sha256::digest(password.as_bytes()).into();
        Ok(self
            .0
            .get(&name)
            .filter(|user| user.password_digest == digest)
            .cloned())
    }

    async fn get_user(&self, name: &String) -> Result<Option<User>, Self::Error> {
        Ok(self.0.get(name).cloned())
    }
}

/// The demo's routes: tower-sessions' layer over [`TowerStore`] (private cookie
/// [`COOKIE_NAME`] keyed with `key_material`, `Secure` as given, expiring after
/// [`SESSION_TTL`] of inactivity), axum-login's layer on it, and [`TowerScopeLayer`] around
/// both.
///
/// `sliding_expiry` is `session_redis_key_expire`, as [`DemoSettings`] reads it: when set, every
/// request with a session saves it (tower-sessions' `with_always_save`), so the store's TTL
/// restarts at `key_expire` on each request, as in the other demos. tower-sessions has no
/// cheaper way: a session it does not save is not written, and its refresh is a whole-record
/// save (see docs/tower-sessions.md for the cost). Every request is then a writer: one that
/// only read, overlapping a change of the session, puts back what it loaded. The demo changes
/// its sessions only by login (a new id) and logout (a delete), which a late save cannot undo.
///
/// # Panics
/// Panics when `key_material` is shorter than 64 bytes; [`crate::cookie_key_material`] never
/// returns less.
pub fn router(
    store: SessionStore,
    key_material: &[u8],
    secure: bool,
    sliding_expiry: Option<std::time::Duration>,
) -> Router {
    // The cookie must outlive the stored session, or the browser forgets a session that the
    // server still holds.
    let cookie_ttl = SESSION_TTL.max(sliding_expiry.unwrap_or_default());
    let inactivity = time::Duration::try_from(cookie_ttl).unwrap_or(time::Duration::MAX);
    let tower = TowerStore::new(store.clone());
    let sessions = SessionManagerLayer::new(tower.clone())
        .with_name(COOKIE_NAME)
        .with_secure(secure)
        .with_expiry(Expiry::OnInactivity(inactivity))
        .with_always_save(sliding_expiry.is_some())
        .with_private(Key::from(key_material));
    let auth = AuthManagerLayerBuilder::new(Users::new(key_material), sessions).build();
    Router::new()
        .route("/protected", get(protected))
        .route_layer(login_required!(Users))
        .route("/", get(|| async { "hello" }))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .layer(auth)
        // Outside tower-sessions' layer (which `auth` holds): a login (`cycle_id`) racing a
        // logout or another login of the session keeps at most one live id, and the logout
        // sticks; the loser answers 409 with no cookie (docs/tower-sessions.md).
        .layer(TowerScopeLayer::new())
        // Outside the session layers: it never touches a session.
        .route("/healthz", get(healthz))
        .layer(from_fn_with_state((store.clone(), tower), outage_is_503))
        // Before anything touches a session: a refused request stores nothing.
        .layer(from_fn(crate::axum_app::refuse_cross_site))
        .layer(map_response(plain_text_headers))
        .with_state(store)
}

/// Serves the demo until stopped (gracefully, on Ctrl-C).
pub async fn run(args: DemoArgs) -> Result<(), String> {
    let settings = DemoSettings::from_env().await?;
    let app = router(
        settings.store,
        &settings.key_material,
        settings.secure,
        settings.sliding_expiry,
    );
    tracing::info!(users = ?DEMO_USERS.map(|(u, _)| u), "axum-login demo users");
    serve_until_ctrl_c(app, args.addr, "axum-login demo").await
}

/// `POST /login`.
async fn login(
    mut auth: AuthSession<Users>,
    form: Result<Form<Credentials>, FormRejection>,
) -> Response {
    let Ok(Form(Credentials {
        user: Some(user),
        password,
    })) = form
    else {
        return (
            StatusCode::BAD_REQUEST,
            "expected a form with `user` and `password`",
        )
            .into_response();
    };
    // The same bounds as the other demos' user names.
    let user = match check_user(Some(user)) {
        Ok(user) => user,
        Err(reason) => return (StatusCode::BAD_REQUEST, reason).into_response(),
    };
    let password = match password {
        Some(p) if !p.is_empty() && p.len() <= MAX_USER_LEN => p,
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                "`password` is missing, empty or longer than 256 bytes",
            )
                .into_response()
        }
    };
    let found = match auth.authenticate((user, password)).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            return (StatusCode::UNAUTHORIZED, "wrong user name or password").into_response()
        }
        Err(err) => return session_failure(err),
    };
    match auth.login(&found).await {
        Ok(()) => format!("logged in as {}", found.name).into_response(),
        Err(err) => session_failure(err),
    }
}

/// `GET /protected`, behind `login_required!`.
async fn protected(auth: AuthSession<Users>) -> Response {
    match auth.user {
        Some(user) => format!("hello, {}", user.name).into_response(),
        // The route layer lets no anonymous request through; kept for safety.
        None => (StatusCode::UNAUTHORIZED, "not logged in").into_response(),
    }
}

/// `POST /logout`.
async fn logout(mut auth: AuthSession<Users>) -> Response {
    match auth.logout().await {
        Ok(_) => "logged out".into_response(),
        Err(err) => session_failure(err),
    }
}

/// A session failure inside a handler: logged (our errors hold no id or data); 500, which
/// [`outage_is_503`] turns into 503 when the store is down.
fn session_failure(err: axum_login::Error<Users>) -> Response {
    tracing::error!(error = %err, "session operation failed");
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}

/// `GET /healthz`: each backend and its state; 503 when one is down.
async fn healthz(State(store): State<SessionStore>) -> Response {
    let (status, body) = health_report(&store).await;
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(body)).into_response()
}

/// Answers 503 for a 500 that a session store outage caused: axum-login and tower-sessions
/// answer every store error with an empty 500, so the adapter says whether its calls just
/// failed as unavailable ([`TowerStore::failed_unavailable_within`]), and otherwise the store's
/// (shared, at most once a second) health check decides. The health check alone still said
/// "up" for up to a second after an outage began, and such a request got the 500.
pub async fn outage_is_503(
    State((store, tower)): State<(SessionStore, TowerStore)>,
    req: axum::extract::Request,
    next: Next,
) -> Response {
    let res = next.run(req).await;
    if res.status() == StatusCode::INTERNAL_SERVER_ERROR
        && (tower.failed_unavailable_within(std::time::Duration::from_secs(1))
            || store.health().await.iter().any(|b| !b.up))
    {
        // The text of `TowerScopeLayer` and of the axum layer's outage answer.
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "session store unavailable, please retry later",
        )
            .into_response();
    }
    res
}
