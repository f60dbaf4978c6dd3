//! The tower layer and service that give each request a [`Session`] and save it afterwards.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use axum::http::{header, Request, Response};
use cookie::{Key, SameSite};
use session_core::{plan::CookiePlan, ConfigError, SessionConfig, SessionStore};
use tower_layer::Layer;
use tower_service::Service;

use crate::{
    config::Config,
    cookies::{CookieKey, CookieSecurity, MAX_FALLBACK_KEYS},
    session::Session,
};

/// A tower [`Layer`] that gives every request a lazy [`Session`] and writes it back afterwards.
///
/// Defaults follow actix-session, so both frameworks can share one cookie: cookie name `id`,
/// path `/`, no domain, `Secure`, `HttpOnly`, `SameSite=Lax`, no `Max-Age` (a browser-session
/// cookie), a store TTL of one day, no sliding expiry.
///
/// ```
/// use std::time::Duration;
/// use session_axum::{Key, SameSite, SessionLayer};
/// use session_core::{plan::CookiePlan, ConfigError, SessionConfig, SessionStore};
///
/// let key = Key::from(&[7u8; 64]); // 64 bytes of secret material, the same as actix's Key::from
/// let layer = SessionLayer::new(SessionStore::memory(), key)
///     .with_name("sid")
///     .with_path("/app")
///     .with_domain("example.com")
///     .with_secure(false)
///     .with_http_only(true)
///     .with_same_site(SameSite::Strict)
///     .with_max_age(Some(Duration::from_secs(3600)))
///     .with_ttl(Some(Duration::from_secs(3600)))
///     .with_sliding_expiry(true);
/// ```
#[derive(Debug, Clone)]
pub struct SessionLayer {
    config: Arc<Config>,
}

impl SessionLayer {
    /// A layer over `store` whose cookies are sealed with `key`, with the defaults.
    pub fn new(store: SessionStore, key: Key) -> Self {
        Self {
            config: Arc::new(Config::new(store, key, &CookiePlan::default())),
        }
    }

    /// A layer with the cookie and lifecycle settings of `config` (`session_cookie_name`,
    /// `_age`, `_domain`, `_path`, `_secure`, `_httponly`, `_samesite`,
    /// `session_expire_at_browser_close`, `session_save_every_request`: django's names, read
    /// from the same sources as every `session_redis_*` option). The `with_*` methods still
    /// adjust it afterwards. Fails when one of those settings is invalid, naming it.
    ///
    /// ```
    /// use session_axum::{Key, SessionLayer};
    /// use session_core::{SessionConfig, SessionStore};
    ///
    /// let config = SessionConfig::from_sources(None, [
    ///     ("SESSION_COOKIE_NAME", "sid"),
    ///     ("SESSION_COOKIE_AGE", "3600"),
    ///     ("SESSION_COOKIE_SAMESITE", "Strict"),
    /// ]).unwrap();
    /// let layer = SessionLayer::from_config(SessionStore::memory(), Key::generate(), &config).unwrap();
    ///
    /// let bad = SessionConfig { cookie_path: Some("no-slash".into()), ..SessionConfig::default() };
    /// let err = SessionLayer::from_config(SessionStore::memory(), Key::generate(), &bad).unwrap_err();
    /// assert!(err.to_string().contains("session_cookie_path"));
    /// ```
    pub fn from_config(
        store: SessionStore,
        key: Key,
        config: &SessionConfig,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            config: Arc::new(Config::new(store, key, &config.cookie_plan()?)),
        })
    }

    fn edit(mut self, f: impl FnOnce(&mut Config)) -> Self {
        // Clones the config only while the layer is being built and already shared.
        let config = Arc::make_mut(&mut self.config);
        f(config);
        config.cookie.refresh_template();
        self
    }

    /// The cookie name (default `id`, as actix-session).
    pub fn with_name(self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.edit(|c| c.cookie.name = name)
    }

    /// The cookie `Path` (default `/`).
    pub fn with_path(self, path: impl Into<String>) -> Self {
        let path = path.into();
        self.edit(|c| c.cookie.path = path)
    }

    /// The cookie `Domain` (default none: the cookie goes back only to the host that set it).
    pub fn with_domain(self, domain: impl Into<String>) -> Self {
        let domain = domain.into();
        self.edit(|c| c.cookie.domain = Some(domain))
    }

    /// Whether the cookie is marked `Secure`, sent over https only (default true).
    pub fn with_secure(self, secure: bool) -> Self {
        self.edit(|c| c.cookie.secure = secure)
    }

    /// Whether the cookie is marked `HttpOnly`, hidden from scripts (default true).
    pub fn with_http_only(self, http_only: bool) -> Self {
        self.edit(|c| c.cookie.http_only = http_only)
    }

    /// The cookie's `SameSite` attribute (default `Lax`).
    pub fn with_same_site(self, same_site: SameSite) -> Self {
        self.edit(|c| c.cookie.same_site = same_site)
    }

    /// The cookie's `Max-Age`: `Some` makes a persistent cookie, `None` (the default) a cookie
    /// the browser drops when it closes.
    pub fn with_max_age(self, max_age: Option<Duration>) -> Self {
        self.edit(|c| c.cookie.max_age = max_age)
    }

    /// The TTL handed to the store on each write: the framework TTL of session-core's TTL rule,
    /// which a configured `session_redis_key_expire` overrides. `None` stores sessions without
    /// expiry unless `key_expire` is set, and so does `Some(Duration::ZERO)` (a TTL of zero
    /// is the rule's "none", as `session_redis_key_expire = 0` is). Default: one day.
    pub fn with_ttl(self, ttl: Option<Duration>) -> Self {
        self.edit(|c| c.ttl = ttl)
    }

    /// Sliding expiry: every request that loads the session resets its TTL in the same round
    /// trip as the load, and re-sends the cookie when it has a `Max-Age` (the sealed value the
    /// request carried, with a fresh `Max-Age`; sealed again only when it was sealed with a
    /// fallback key). A session with its own [`Expiry`](crate::Expiry) other than the
    /// layer's TTL gets its own TTL in a second round trip right after the load, so that a
    /// request whose write never comes (a 5xx with
    /// [`with_skip_save_on_server_error`](Self::with_skip_save_on_server_error), a panic) never
    /// leaves it the layer's. Default: off.
    pub fn with_sliding_expiry(self, sliding: bool) -> Self {
        self.edit(|c| c.sliding = sliding)
    }

    /// How the cookie protects the id: [`CookieSecurity::Private`] (encrypted, the default) or
    /// [`CookieSecurity::Signed`] (readable, unforgeable), as actix-session's
    /// `cookie_content_security`; an actix service with the same setting and key shares the
    /// cookie.
    pub fn with_cookie_security(self, security: CookieSecurity) -> Self {
        self.edit(|c| c.cookie.security = security)
    }

    /// Keys of earlier rotations, newest first (at most [`MAX_FALLBACK_KEYS`]; more are
    /// ignored, with a warning): a cookie sealed with one of them still opens, and is sent
    /// back sealed with the current key, so users stay logged in across a key rotation.
    /// Remove an old key once the longest cookie lifetime has passed.
    ///
    /// ```
    /// use session_axum::{Key, SessionLayer};
    /// use session_core::SessionStore;
    ///
    /// let (old, new) = (Key::generate(), Key::generate());
    /// let layer = SessionLayer::new(SessionStore::memory(), new).with_fallback_keys([old]);
    /// ```
    pub fn with_fallback_keys(self, keys: impl IntoIterator<Item = Key>) -> Self {
        let mut keys: Vec<Key> = keys.into_iter().collect();
        if keys.len() > MAX_FALLBACK_KEYS {
            tracing::warn!(
                given = keys.len(),
                kept = MAX_FALLBACK_KEYS,
                "too many fallback cookie keys; the oldest are ignored"
            );
            keys.truncate(MAX_FALLBACK_KEYS);
        }
        let keys = keys.into_iter().map(CookieKey::new).collect();
        self.edit(|c| c.cookie.fallback_keys = keys)
    }

    /// Refresh the session on every request that carries one, even when nothing changed: the
    /// store TTL is reset (a load and a `PEXPIRE` when the handler does not touch the session,
    /// since the session may carry its own expiry; in the load's round trip with sliding
    /// expiry) and a persistent cookie is re-sent with
    /// a fresh `Max-Age`. tower-sessions' `always_save`, django's `SESSION_SAVE_EVERY_REQUEST`.
    /// Default: off.
    pub fn with_always_save(self, always_save: bool) -> Self {
        self.edit(|c| c.always_save = always_save)
    }

    /// When the handler answers with a 5xx status, save nothing (no write, no cookie): a
    /// request that failed half-way does not leave half its changes in the session. But a
    /// [`purge`](crate::Session::purge) (a logout) is still made, and its cookie removed: a
    /// logout sticks whatever the handler did after it. Default: off (the changes are saved
    /// whatever the status, as tower-sessions and actix-session do).
    pub fn with_skip_save_on_server_error(self, skip: bool) -> Self {
        self.edit(|c| c.skip_save_on_server_error = skip)
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

/// The [`Service`] made by [`SessionLayer`]: puts a [`Session`] into the request's extensions,
/// runs the inner service, then saves the session (at most one store write) and sets or
/// expires the cookie.
///
/// When that write fails the response is replaced by the error's (503 when the store is
/// unavailable), so a change the client was told about is never silently lost.
#[derive(Debug, Clone)]
pub struct SessionService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: From<&'static str> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        // The clone that was polled ready serves this request; the fresh clone stays for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let sealed = self.config.cookie.sealed_values(req.headers());
        let session = Session::new(Arc::clone(&self.config), sealed);
        req.extensions_mut().insert(session.clone());
        let skip_on_error = self.config.skip_save_on_server_error;
        Box::pin(async move {
            let mut res = inner.call(req).await?;
            let saved = if skip_on_error && res.status().is_server_error() {
                session.save_purge_only().await
            } else {
                session.save().await
            };
            match saved {
                Ok(Some(cookie)) => {
                    res.headers_mut().append(header::SET_COOKIE, cookie);
                }
                Ok(None) => {}
                Err(err) => {
                    err.log();
                    return Ok(err.answer());
                }
            }
            Ok(res)
        })
    }
}
