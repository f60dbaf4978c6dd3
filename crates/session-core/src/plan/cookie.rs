//! The cookie and lifecycle settings (`session_cookie_*`, django's names), for the framework
//! crates: one place for the defaults both of them use.

use std::time::Duration;

use crate::{ConfigError, SessionConfig};

/// The store TTL when `session_cookie_age` is unset: one day, actix-session's default.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// The cookie's `SameSite` attribute (no dependency on a cookie crate here; each framework
/// crate maps it onto its own type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SameSitePolicy {
    /// `SameSite=Lax` (the default): sent on top-level navigations from other sites.
    #[default]
    Lax,
    /// `SameSite=Strict`: never sent on requests started by other sites.
    Strict,
    /// `SameSite=None`: sent everywhere; browsers require `Secure` with it.
    None,
}

impl SameSitePolicy {
    /// `Lax`, `Strict` or `None`, any case.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "lax" => Some(Self::Lax),
            "strict" => Some(Self::Strict),
            "none" => Some(Self::None),
            _ => None,
        }
    }
}

/// The session cookie and lifecycle, with the defaults applied: what
/// `session_axum::SessionLayer::from_config` and `session_actix::middleware_from_config` build.
///
/// The defaults are actix-session's (so that both frameworks share one cookie unconfigured):
/// name `id`, path `/`, no domain, `Secure`, `HttpOnly`, `SameSite=Lax`, a cookie that ends
/// with the browser, a store TTL of one day, no refresh on every request.
///
/// ```
/// use std::time::Duration;
/// use session_core::{plan::CookiePlan, SessionConfig};
///
/// let config = SessionConfig::from_sources(None, [
///     ("SESSION_COOKIE_NAME", "sessionid"),
///     ("SESSION_COOKIE_AGE", "1209600"),
/// ]).unwrap();
/// let cookie = config.cookie_plan().unwrap();
/// assert_eq!(cookie.name, "sessionid");
/// // With an age, the cookie persists for it (django's rule) and the store keeps the session
/// // as long.
/// assert_eq!(cookie.max_age, Some(Duration::from_secs(1_209_600)));
/// assert_eq!(cookie.ttl, Duration::from_secs(1_209_600));
/// assert_eq!(CookiePlan::default().name, "id");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CookiePlan {
    /// `session_cookie_name`.
    pub name: String,
    /// `session_cookie_path`.
    pub path: String,
    /// `session_cookie_domain`.
    pub domain: Option<String>,
    /// `session_cookie_secure`.
    pub secure: bool,
    /// `session_cookie_httponly`.
    pub http_only: bool,
    /// `session_cookie_samesite`.
    pub same_site: SameSitePolicy,
    /// The cookie's `Max-Age`: `None` for a cookie that ends with the browser.
    pub max_age: Option<Duration>,
    /// The TTL handed to the store on each write (`session_redis_key_expire` still overrides
    /// it in the store).
    pub ttl: Duration,
    /// `session_save_every_request`.
    pub save_every_request: bool,
}

impl Default for CookiePlan {
    fn default() -> Self {
        Self {
            name: "id".into(),
            path: "/".into(),
            domain: None,
            secure: true,
            http_only: true,
            same_site: SameSitePolicy::Lax,
            max_age: None,
            ttl: DEFAULT_SESSION_TTL,
            save_every_request: false,
        }
    }
}

impl SessionConfig {
    /// The cookie settings alone, checked: for a framework layer over a store built
    /// elsewhere. [`plan`](Self::plan) includes them too.
    pub fn cookie_plan(&self) -> Result<CookiePlan, ConfigError> {
        self.validate_cookie()?;
        let default = CookiePlan::default();
        let age = self.cookie_age.map(Duration::from_secs);
        let browser_session = self.expire_at_browser_close.unwrap_or(age.is_none());
        let ttl = age.unwrap_or(DEFAULT_SESSION_TTL);
        Ok(CookiePlan {
            name: self.cookie_name.clone().unwrap_or(default.name),
            path: self.cookie_path.clone().unwrap_or(default.path),
            domain: self.cookie_domain.clone(),
            secure: self.cookie_secure.unwrap_or(default.secure),
            http_only: self.cookie_httponly.unwrap_or(default.http_only),
            same_site: self
                .cookie_samesite
                .as_deref()
                .and_then(SameSitePolicy::parse)
                .unwrap_or_default(),
            max_age: (!browser_session).then_some(ttl),
            ttl,
            save_every_request: self.save_every_request,
        })
    }
}
