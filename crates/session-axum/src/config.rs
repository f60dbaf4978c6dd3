//! The settings a [`SessionLayer`](crate::SessionLayer) shares with each request's
//! [`Session`](crate::Session), and their defaults.
//!
//! A module of its own so that the layer (which builds and hands out the settings) and the
//! session (which reads them) both depend on it instead of on each other.

use std::time::Duration;

use cookie::Key;
use session_core::{plan::CookiePlan, SessionStore};

use crate::cookies::CookieConfig;

/// Everything the layer shares with each request's session.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) store: SessionStore,
    pub(crate) cookie: CookieConfig,
    pub(crate) ttl: Option<Duration>,
    pub(crate) sliding: bool,
    /// Refresh the TTL and re-send the cookie on every request with a session
    /// (`session_save_every_request`).
    pub(crate) always_save: bool,
    /// Save nothing when the handler answered 5xx.
    pub(crate) skip_save_on_server_error: bool,
}

impl Config {
    /// The settings of `plan`: session-core's defaults (see [`CookiePlan`]), chosen so that
    /// axum and actix-session can share one cookie, or the `session_cookie_*` options.
    pub(crate) fn new(store: SessionStore, key: Key, plan: &CookiePlan) -> Self {
        Self {
            store,
            cookie: CookieConfig::new(key, plan),
            ttl: Some(plan.ttl),
            sliding: false,
            always_save: plan.save_every_request,
            skip_save_on_server_error: false,
        }
    }
}
