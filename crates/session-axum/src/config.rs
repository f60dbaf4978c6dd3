//! The settings a [`SessionLayer`](crate::SessionLayer) shares with each request's
//! [`Session`](crate::Session), and their defaults.
//!
//! A module of its own so that the layer (which builds and hands out the settings) and the
//! session (which reads them) both depend on it instead of on each other.

use std::time::Duration;

use cookie::Key;
use session_core::SessionStore;

use crate::cookies::CookieConfig;

/// The TTL handed to the store when none is configured: one day, as actix-session's default.
const DEFAULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Everything the layer shares with each request's session.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) store: SessionStore,
    pub(crate) cookie: CookieConfig,
    pub(crate) ttl: Option<Duration>,
    pub(crate) sliding: bool,
}

impl Config {
    /// The defaults, chosen so that axum and actix-session can share one cookie: cookie name
    /// `id`, path `/`, no domain, `Secure`, `HttpOnly`, `SameSite=Lax`, no `Max-Age`, a store
    /// TTL of one day, no sliding expiry.
    pub(crate) fn new(store: SessionStore, key: Key) -> Self {
        Self {
            store,
            cookie: CookieConfig::new(key),
            ttl: Some(DEFAULT_TTL),
            sliding: false,
        }
    }
}
