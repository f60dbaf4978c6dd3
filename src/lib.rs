//! What the two demo servers (`examples/actix_demo.rs`, `examples/axum_demo.rs`) share, so
//! that they read the same configuration, derive the same cookie key and report health the
//! same way. Both demos serve one HTTP contract (see the README).
//!
//! Each demo is one `run` function beside the other, [`actix_app::run`] and [`axum_app::run`],
//! shaped alike: [`DemoSettings::from_env`], build the framework's app, bind, serve until
//! stopped. The example binaries only start logging, parse the command line and call it.
//! Both serve the same HTML page at `GET /app` ([`app_page`]), one template for both.

pub mod actix_app;
pub mod app_page;
pub mod axum_app;
pub mod axum_login_app;
mod demo_env;

pub use demo_env::DemoEnv;

use std::{net::SocketAddr, process::ExitCode, time::Duration};

use session_core::{BackendHealth, SessionConfig, SessionStore};

/// The environment variable holding the cookie secret (at least 64 characters).
pub const SECRET_ENV: &str = "SESSION_SECRET";
/// The environment variable naming the listening address.
pub const ADDR_ENV: &str = "SESSION_DEMO_ADDR";
/// The environment variable that marks cookies `Secure` when set to a true value.
pub const SECURE_ENV: &str = "SESSION_COOKIE_SECURE";
/// The cookie name both demos use, so one cookie serves both.
pub const COOKIE_NAME: &str = "id";
/// How long a session lives in both demos (cookie `Max-Age` and store TTL), as actix-session's
/// default; `SESSION_REDIS_KEY_EXPIRE` overrides the store TTL and makes it slide.
pub const SESSION_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);
/// Minimum length of [`SECRET_ENV`]; the first 64 bytes are the key material.
pub const SECRET_MIN_LEN: usize = 64;
/// The longest user name `POST /login` accepts, in bytes. A name is shown back by `/whoami` and
/// stored for a day; without a bound one anonymous request could park megabytes in the store.
pub const MAX_USER_LEN: usize = 256;
/// The `Content-Type` of every demo answer but `/healthz`'s JSON. Explicit, so that no browser
/// guesses HTML from a body that echoes user input (`/whoami`, `/login`).
pub const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// The user name of `POST /login`, checked: `Err` is the short reason the demos answer with 400.
pub fn check_user(user: Option<String>) -> Result<String, &'static str> {
    match user {
        None => Err("missing `user`: expected a form field or query parameter `user`"),
        Some(user) if user.is_empty() => Err("`user` is empty"),
        Some(user) if user.len() > MAX_USER_LEN => Err("`user` is longer than 256 bytes"),
        Some(user) => Ok(user),
    }
}

/// The answer (403) to a request [`is_cross_site`] refuses.
pub const CROSS_SITE_REFUSED: &str = "cross-site request refused";

/// Whether a request that may change state (any method but `GET`, `HEAD`, `OPTIONS`) comes
/// from another site, which every demo refuses with 403. Against login CSRF: another site's
/// form that posts to `/login` logs the visitor in under a name (an account, in the
/// axum-login demo) of the attacker's choosing, whose session then records what the visitor
/// does. `SameSite=Lax` keeps the session cookie off such a post, but the browser still
/// stores the cookie its answer sets.
///
/// Browsers say where a request comes from: `Sec-Fetch-Site` (every current browser), which
/// passes only as `same-origin` or `none` (typed in, a bookmark; `same-site` is a sibling
/// subdomain, possibly someone else's); without it, `Origin`, which must name the request's
/// own `Host`. A request with neither header (curl, a script) is no browser's cross-site form,
/// and passes. Behind a proxy that rewrites `Host`, the `Origin` fallback refuses: browsers
/// without `Sec-Fetch-Site` then need the proxy to keep `Host`.
///
/// `header` gives a request header's value by its (lower-case) name: each framework has its
/// own header map.
pub fn is_cross_site<'a>(method: &str, header: impl Fn(&str) -> Option<&'a [u8]>) -> bool {
    if matches!(method, "GET" | "HEAD" | "OPTIONS") {
        return false;
    }
    let (origin, host) = (header("origin"), header("host"));
    if let Some(site) = header("sec-fetch-site") {
        return !(site.eq_ignore_ascii_case(b"same-origin") || site.eq_ignore_ascii_case(b"none"));
    }
    let Some(origin) = origin else {
        return false;
    };
    let origin_host = origin
        .strip_prefix(b"http://")
        .or_else(|| origin.strip_prefix(b"https://"));
    match (origin_host, host) {
        (Some(origin_host), Some(host)) => !origin_host.eq_ignore_ascii_case(host),
        // `Origin: null` (a sandboxed frame, a redirect across sites), or no `Host`.
        _ => true,
    }
}

/// `POST /logout-everywhere` of both demos, after the handler found `user` in the request's
/// session: deletes every session of `user` through the store's index
/// ([`SessionStore::delete_indexed`]; the demos index `user` unless `SESSION_REDIS_INDEX_KEY`
/// names another key). The answer: status and plain text.
pub async fn logout_everywhere(store: &SessionStore, user: &str) -> (u16, String) {
    let value = serde_json::Value::String(user.to_owned()).to_string();
    match store.delete_indexed(&value).await {
        Ok(n) => (200, format!("logged out of {n} session(s)")),
        Err(err) if err.is_unavailable() => (
            503,
            "the session store is unavailable: try again in a moment".into(),
        ),
        Err(session_core::StoreError::Unsupported { .. }) => (
            501,
            "no session index: set SESSION_REDIS_INDEX_KEY=user to log out everywhere".into(),
        ),
        Err(err) => {
            tracing::error!(error = %err, "logout everywhere failed");
            (500, "logging out everywhere failed".into())
        }
    }
}

/// Command line of both demos.
#[derive(Debug, clap::Parser)]
#[command(about = "Demo server for Redis-backed sessions (see the README for the HTTP contract)")]
pub struct DemoArgs {
    /// Address to listen on.
    #[arg(long, env = ADDR_ENV, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
}

/// What both demos read from the environment at start-up: the store, the cookie key material,
/// whether cookies are `Secure`, and the sliding expiry (`SESSION_REDIS_KEY_EXPIRE`).
pub struct DemoSettings {
    /// The store, as [`build_store`] makes it.
    pub store: SessionStore,
    /// The cookie key material, as [`cookie_key_material`] gives it (at least 64 bytes).
    pub key_material: Vec<u8>,
    /// Whether cookies are marked `Secure`: `SESSION_COOKIE_SECURE`, off by default (see
    /// [`demo_cookie_config`]).
    pub secure: bool,
    /// The TTL every request that carries a session resets, when `key_expire` is configured.
    pub sliding_expiry: Option<Duration>,
    /// The configuration read at start-up, with the cookie settings of [`demo_cookie_config`]:
    /// both demos build their session layer from it (`SESSION_COOKIE_*`, django's names).
    pub config: SessionConfig,
}

impl std::fmt::Debug for DemoSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key material is a secret: leave it out.
        f.debug_struct("DemoSettings")
            .field("store", &self.store)
            .field("secure", &self.secure)
            .field("sliding_expiry", &self.sliding_expiry)
            .finish_non_exhaustive()
    }
}

impl DemoSettings {
    /// Reads the settings both demos start from, in the process environment.
    pub async fn from_env() -> Result<Self, String> {
        Self::from_demo_env(&DemoEnv::process()?).await
    }

    /// Reads the settings from `env`, exactly as [`from_env`](Self::from_env) reads the process
    /// environment: tests run demos with different settings side by side in one process. The
    /// cookie secret is checked first, so a bad `SESSION_SECRET` is reported without waiting for
    /// a connection to the store.
    pub async fn from_demo_env(env: &DemoEnv) -> Result<Self, String> {
        let key_material = key_material_in(env)?;
        let (config, store) = build_store_in(env).await?;
        let sliding_expiry = config.key_expire_duration();
        let config = demo_cookie_config(&config, sliding_expiry);
        // Checked here, so a bad cookie setting stops the demo at start-up, naming the key.
        let cookie = config.cookie_plan().map_err(|e| e.to_string())?;
        Ok(Self {
            store,
            key_material,
            secure: cookie.secure,
            sliding_expiry,
            config,
        })
    }
}

/// The exit code of a demo binary: success, or failure after logging the error that ended it.
pub fn exit_code(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// Starts logging to stderr; `RUST_LOG` picks the level (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
}

/// The 64 bytes of cookie key material: the first 64 bytes of `SESSION_SECRET`, or random
/// bytes (with a warning) when it is unset. Both demos feed these bytes to their framework's
/// `Key::from`, so a cookie made by one is read by the other.
pub fn cookie_key_material() -> Result<Vec<u8>, String> {
    key_material_in(&DemoEnv::process()?)
}

/// [`cookie_key_material`] from `env`.
fn key_material_in(env: &DemoEnv) -> Result<Vec<u8>, String> {
    match env.get(SECRET_ENV) {
        Some(secret) if secret.len() >= SECRET_MIN_LEN => Ok(secret.as_bytes().to_vec()),
        Some(secret) => Err(format!(
            "{SECRET_ENV} must be at least {SECRET_MIN_LEN} characters long (it has {})",
            secret.len()
        )),
        None => {
            tracing::warn!(
                "{SECRET_ENV} is not set: using a random cookie key, so every session ends when this server restarts"
            );
            let mut bytes = vec![0u8; SECRET_MIN_LEN];
            rand::fill(&mut bytes[..]);
            Ok(bytes)
        }
    }
}

/// The `session_cookie_*` settings of `config`, with the demos' defaults where a setting is
/// unset: cookie [`COOKIE_NAME`], not `Secure` (the demos serve plain http on loopback;
/// `SESSION_COOKIE_SECURE=true` turns it on), and a persistent cookie of [`SESSION_TTL`], or
/// of the sliding TTL when that is longer (the cookie must outlive a session the server still
/// slides). Everything else is session-core's defaults (`HttpOnly`, `SameSite=Lax`, path `/`).
pub fn demo_cookie_config(
    config: &SessionConfig,
    sliding_expiry: Option<Duration>,
) -> SessionConfig {
    let mut config = config.clone();
    config
        .cookie_name
        .get_or_insert_with(|| COOKIE_NAME.to_owned());
    config.cookie_secure.get_or_insert(false);
    config.cookie_age.get_or_insert(
        SESSION_TTL
            .max(sliding_expiry.unwrap_or_default())
            .as_secs(),
    );
    config
}

/// True when neither a `SESSION_CONFIG` file nor any `SESSION_REDIS_*` variable is in `env`.
fn nothing_configured(env: &DemoEnv) -> bool {
    env.names().all(|name| {
        let name = name.to_ascii_uppercase();
        name != "SESSION_CONFIG" && !name.starts_with("SESSION_REDIS_")
    })
}

/// Reads the configuration exactly as session-core does (`SESSION_CONFIG` file, then
/// `SESSION_REDIS_*` environment) and builds the store, saying at start-up where sessions live.
///
/// With no configuration at all the demos use the file store instead of session-core's
/// default (Redis on localhost), so that they run on a machine without Redis.
pub async fn build_store() -> Result<(SessionConfig, SessionStore), String> {
    build_store_in(&DemoEnv::process()?).await
}

/// [`build_store`] from `env`.
pub async fn build_store_in(env: &DemoEnv) -> Result<(SessionConfig, SessionStore), String> {
    let mut config = SessionConfig::from_env_vars(env.vars()).map_err(|e| e.to_string())?;
    if nothing_configured(env) {
        config.mode = session_core::Mode::Disabled;
    }
    // The demos' login stores `user`: index it, for `POST /logout-everywhere`.
    config.index_key.get_or_insert_with(|| "user".to_owned());
    let store = SessionStore::from_config(&config)
        .await
        .map_err(|e| e.to_string())?;
    match config.mode {
        session_core::Mode::Disabled => tracing::info!(
            path = %config.filestore_path().display(),
            "Redis is disabled: sessions live in the file store"
        ),
        mode => tracing::info!(mode = mode.as_str(), "sessions live in Redis"),
    }
    Ok((config, store))
}

/// The `/healthz` answer: HTTP status (200, or 503 when a backend is down) and JSON body.
pub async fn health_report(store: &SessionStore) -> (u16, serde_json::Value) {
    let backends: Vec<BackendHealth> = store.health().await;
    let all_up = backends.iter().all(|b| b.up);
    let body = serde_json::json!({
        "status": if all_up { "ok" } else { "unavailable" },
        "backends": backends,
    });
    (if all_up { 200 } else { 503 }, body)
}

#[cfg(test)]
mod tests {
    /// [`super::is_cross_site`] over these `Sec-Fetch-Site`, `Origin` and `Host` values.
    fn is_cross_site(
        method: &str,
        site: Option<&'static [u8]>,
        origin: Option<&'static [u8]>,
        host: Option<&'static [u8]>,
    ) -> bool {
        super::is_cross_site(method, |name| match name {
            "sec-fetch-site" => site,
            "origin" => origin,
            "host" => host,
            _ => None,
        })
    }

    #[test]
    fn cross_site_requests_are_told_by_sec_fetch_site_then_origin() {
        let h = |s: &'static str| Some(s.as_bytes());
        // Reads pass whatever they say.
        assert!(!is_cross_site(
            "GET",
            h("cross-site"),
            h("http://evil.example"),
            h("a:1")
        ));
        for site in ["cross-site", "same-site", "garbage"] {
            assert!(is_cross_site("POST", h(site), None, h("a:1")), "{site}");
        }
        for site in ["same-origin", "none", "Same-Origin"] {
            // Sec-Fetch-Site decides: a browser that sends it sends the truth.
            assert!(
                !is_cross_site("POST", h(site), h("http://evil.example"), h("a:1")),
                "{site}"
            );
        }
        assert!(is_cross_site(
            "POST",
            None,
            h("http://evil.example"),
            h("a:1")
        ));
        assert!(is_cross_site("POST", None, h("null"), h("a:1")));
        assert!(is_cross_site("DELETE", None, h("http://a:2"), h("a:1")));
        assert!(!is_cross_site("POST", None, h("http://A:1"), h("a:1")));
        assert!(!is_cross_site("POST", None, h("https://a:1"), h("a:1")));
        // Neither header: no browser's form.
        assert!(!is_cross_site("POST", None, None, h("a:1")));
    }

    use super::*;

    #[test]
    fn user_names_are_bounded_in_bytes() {
        assert!(check_user(None).is_err());
        assert!(check_user(Some(String::new())).is_err());
        assert!(check_user(Some("u".repeat(MAX_USER_LEN))).is_ok());
        let reason = check_user(Some("u".repeat(MAX_USER_LEN + 1))).unwrap_err();
        // The reason names the bound the code applies.
        assert!(reason.contains(&MAX_USER_LEN.to_string()), "{reason}");
        assert!(check_user(Some("é".repeat(MAX_USER_LEN / 2 + 1))).is_err());
    }

    /// A given environment is read as the process environment would be: the secret's length
    /// checked, `SESSION_COOKIE_SECURE`'s spellings, and "nothing configured" only when no
    /// `SESSION_CONFIG` nor `SESSION_REDIS_*` is there.
    #[test]
    fn a_given_environment_is_read_like_the_process_one() {
        let secret = "s".repeat(SECRET_MIN_LEN);
        let env = DemoEnv::from_vars([(SECRET_ENV, secret.as_str())]);
        assert_eq!(key_material_in(&env).unwrap(), secret.as_bytes());
        let short = DemoEnv::from_vars([(SECRET_ENV, "short")]);
        let err = key_material_in(&short).unwrap_err();
        assert!(err.contains(SECRET_ENV) && err.contains("64"), "{err}");
        assert!(!err.contains("short"), "the secret leaked: {err}");
        assert_eq!(key_material_in(&DemoEnv::default()).unwrap().len(), 64);

        // `SESSION_COOKIE_SECURE` is read by session-core's configuration, with the demos'
        // default (off) when unset.
        let secure = |vars: Vec<(&str, &str)>| {
            let config = SessionConfig::from_sources(None, vars).unwrap();
            demo_cookie_config(&config, None)
                .cookie_plan()
                .unwrap()
                .secure
        };
        for (value, expected) in [("true", true), ("ON", true), ("1", true), ("no", false)] {
            assert_eq!(secure(vec![(SECURE_ENV, value)]), expected);
        }
        assert!(!secure(vec![]));

        assert!(nothing_configured(&DemoEnv::from_vars([(SECRET_ENV, "x")])));
        assert!(!nothing_configured(&DemoEnv::from_vars([(
            "session_redis_host",
            "127.0.0.1"
        )])));
        assert!(!nothing_configured(&DemoEnv::from_vars([(
            "SESSION_CONFIG",
            "a.conf"
        )])));
        // Debug shows names, never values.
        let debug = format!("{:?}", DemoEnv::from_vars([(SECRET_ENV, secret.as_str())]));
        assert!(
            debug.contains(SECRET_ENV) && !debug.contains(&secret),
            "{debug}"
        );
    }
}
