//! Sessions for axum over the shared [`session_core::SessionStore`].
//!
//! Add a [`SessionLayer`] to a router and take a [`Session`] in handlers:
//!
//! ```
//! use axum::{routing::get, Router};
//! use session_axum::{Key, Session, SessionError, SessionLayer};
//! use session_core::SessionStore;
//!
//! async fn counter(session: Session) -> Result<String, SessionError> {
//!     let n = session.get::<u64>("n").await?.unwrap_or(0) + 1;
//!     session.insert("n", &n).await?;
//!     Ok(n.to_string())
//! }
//!
//! let layer = SessionLayer::new(SessionStore::memory(), Key::generate()).with_secure(false);
//! let app: Router = Router::new().route("/counter", get(counter)).layer(layer);
//! ```
//!
//! # What it costs
//! * Lazy: the cookie is decrypted and the store is called only when a handler first touches
//!   the session. A request whose handler never does makes no store call (but under
//!   [`SessionLayer::with_always_save`], below).
//! * At most one write after the handler: `create` for a new session, `apply` with only the
//!   keys that changed for an existing one, `delete` for a purge, nothing when nothing changed.
//!   Two calls: [`Session::renew`] (`create` under the new id, then `delete` of the old one;
//!   when that delete finds the session gone, a logout or another renew meanwhile, one more
//!   `delete`, of the new id), a [`Session::purge`] followed by new data in the same request
//!   (`delete` of the old id, `create` under the new one), and, under
//!   [`SessionLayer::with_always_save`], a request that carries a session whose handler never
//!   touched it (a load, then a `touch`; one call with sliding expiry, whose load sets the
//!   TTL).
//! * Sliding expiry ([`SessionLayer::with_sliding_expiry`]) refreshes the TTL in the same round
//!   trip as the load.
//!
//! # Settings from configuration
//! [`SessionLayer::from_config`] takes the cookie and lifecycle settings (django's names:
//! `SESSION_COOKIE_NAME`, `_AGE`, `_DOMAIN`, `_PATH`, `_SECURE`, `_HTTPONLY`, `_SAMESITE`,
//! `SESSION_EXPIRE_AT_BROWSER_CLOSE`, `SESSION_SAVE_EVERY_REQUEST`) from a
//! [`session_core::SessionConfig`], read from the same sources as the store's options;
//! `session_actix::middleware_from_config` builds actix-session's middleware from the same
//! settings, so both services write the same cookie.
//!
//! # Per-session expiry, rotation, signed cookies
//! [`Session::set_expiry`] gives one session its own lifetime ([`Expiry`], the "remember me"
//! checkbox); [`SessionLayer::with_fallback_keys`] keeps cookies of an older key working
//! across a rotation; [`SessionLayer::with_cookie_security`] chooses private (encrypted, the
//! default) or signed cookies, both as actix-session writes them;
//! [`SessionLayer::with_always_save`] refreshes every session on every request.
//!
//! # Cookies
//! The cookie holds only the session id, encrypted and authenticated with the cookie crate's
//! private jar (AES-256-GCM, the cookie name as associated data, percent-encoded base64). That is
//! exactly what actix-session's default `SessionMiddleware` writes, so one cookie, one [`Key`]
//! (built from the same 64 bytes: `Key::from(bytes)` on both sides) and one store serve an
//! actix-web service and an axum service side by side. Values are stored as JSON text, as
//! actix-session stores them, so both read each other's data.
//!
//! # Errors
//! A store outage answers 503 (see [`SessionError`]); a tampered, foreign or stale cookie gives
//! a fresh session (and a removal `Set-Cookie` when the handler touched the session); a corrupt stored session is treated as no session, with a warning. Rejected
//! cookies cost one warning per request, with counts, whatever the `Cookie` header holds: only
//! the first 8 cookies of our name are tried (more appear only when the cookie was set for
//! several paths or domains), the rest are counted.
//!
//! # tower-sessions and axum-login
//! With the `tower-sessions` cargo feature, `TowerStore` implements tower-sessions' (0.14)
//! `SessionStore` over the same [`session_core::SessionStore`], so tower-sessions' own
//! `SessionManagerLayer`, and axum-login on it, run on every backend of ours. Its documentation
//! says how their records map onto our layout (their 128-bit id becomes a SHA-256-derived key)
//! and what their whole-record save costs against this crate's changed-keys-only writes.
//! `TowerScopeLayer`, placed outside tower-sessions' layer, gives each request the scope in
//! which `TowerStore` makes their `cycle_id` (axum-login's login) and logouts stick as this
//! crate's renews and purges do.
//!
//! # Modules
//! All private: every public type has one path, at the crate root. Each module depends only on
//! the ones listed after it, so there is no import cycle:
//! * `layer`: [`SessionLayer`] and [`SessionService`]; uses `session`, `config`, `cookies`.
//! * `session`: [`Session`] and its extractor; uses `config`, `cookies`, `error`.
//! * `config`: the settings the layer shares with each session, and their defaults; uses
//!   `cookies`.
//! * `cookies`: opening and sealing the session cookie.
//! * `error`: [`SessionError`] and [`MissingSessionLayer`].
//! * `tower_sessions` (cargo feature `tower-sessions`): `TowerStore`, tower-sessions'
//!   store trait over ours, for tower-sessions' own layer and axum-login, and
//!   `TowerScopeLayer` with its `TowerScopeService`, the per-request scope it uses; uses none
//!   of the above.
#![warn(missing_docs)]

mod config;
mod cookies;
mod error;
mod layer;
mod session;
#[cfg(feature = "tower-sessions")]
mod tower_sessions;

pub use cookie::{time::OffsetDateTime, Key, SameSite};
pub use cookies::{CookieSecurity, MAX_FALLBACK_KEYS};
pub use error::{MissingSessionLayer, SessionError};
pub use layer::{SessionLayer, SessionService};
pub use session::{Expiry, Session, EXPIRY_KEY};
#[cfg(feature = "tower-sessions")]
pub use tower_sessions::{TowerScopeLayer, TowerScopeService, TowerStore, PENDING_FOR};
