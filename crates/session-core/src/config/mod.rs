//! Configuration: every `session_redis_*` option, from every source.
//!
//! The option names are those of Odoo's `session_redis` module (`session_redis_host`, ...),
//! plus the django-redis-sessions spellings as aliases (`SESSION_REDIS_SENTINEL_LIST`, ...).
//! Names are case-insensitive. Sources, each overriding the one before:
//!
//! 1. the defaults ([`SessionConfig::default`]);
//! 2. a config file named by `SESSION_CONFIG`: an Odoo-style `.conf` (`[options]` section) or a
//!    `.toml` file with the same flat keys;
//! 3. the environment: `SESSION_REDIS_*` and `SESSION_FILESTORE_PATH`;
//! 4. code: [`SessionConfigBuilder`].
//!
//! ```
//! use session_core::{config::Mode, SessionConfig};
//!
//! let env = vec![
//!     ("SESSION_REDIS_SENTINEL_LIST".to_string(), "[('10.0.0.1', 26379), ('10.0.0.2', 26379)]".to_string()),
//!     ("SESSION_REDIS_SENTINEL_MASTER_ALIAS".to_string(), "mymaster".to_string()),
//! ];
//! let config = SessionConfig::from_sources(None, env).unwrap();
//! assert_eq!(config.mode, Mode::Sentinel);
//! assert_eq!(config.host.len(), 2);
//! ```
//!
//! Every option of Odoo's module is either honoured or rejected by [`SessionConfig::validate`]
//! with the reason; none is silently ignored. `docs/configuration.md` has the full table.

mod names;
mod parse;
mod pool;
mod serde_impl;
mod sources;

use std::{
    fmt,
    path::{Path, PathBuf},
    time::Duration,
};

pub use pool::{BackendMode, MultiBackendConfig, PoolMember};
pub use sources::{SessionConfigBuilder, CONFIG_FILE_VAR};

pub(crate) use parse::redact_url;
use parse::REDACTED;

/// Which engine holds the sessions.
///
/// Deserializes from the same spellings as the text sources: `redis`, `sentinel`, `cluster`,
/// or `false`/`0`/`disabled`/`none` (any case, or the boolean `false`) for [`Mode::Disabled`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One Redis server (the default).
    #[default]
    Redis,
    /// Redis behind Sentinel.
    Sentinel,
    /// Redis Cluster.
    Cluster,
    /// No Redis: sessions live in the file store.
    Disabled,
}

impl Mode {
    /// The canonical spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            Mode::Redis => "redis",
            Mode::Sentinel => "sentinel",
            Mode::Cluster => "cluster",
            Mode::Disabled => "disabled",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Mode {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse::parse_mode_text(&parse::unquote(s)).ok_or_else(|| {
            ConfigError::invalid(
                "session_redis_mode",
                s,
                "one of redis, sentinel, cluster, or False/0/disabled/none to disable Redis",
            )
        })
    }
}

/// A host and an optional port.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HostPort {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port; `None` means `session_redis_port`.
    pub port: Option<u16>,
}

impl HostPort {
    /// A host with an explicit port.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port: Some(port),
        }
    }

    /// The port to connect to, given the configured default port.
    pub fn port_or(&self, default: u16) -> u16 {
        self.port.unwrap_or(default)
    }
}

/// `host`, `host:port`, `[v6]:port`.
impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        match self.port {
            Some(p) => write!(f, ":{p}"),
            None => Ok(()),
        }
    }
}

/// Parses `host`, `host:port`, `[v6]:port` or a bare IPv6 address.
impl std::str::FromStr for HostPort {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse::parse_host_text(s).map_err(|e| {
            ConfigError::invalid(
                "session_redis_host",
                s,
                &format!("host, host:port or [v6]:port ({e})"),
            )
        })
    }
}

/// `session_redis_socket_keepalive_options`: the TCP keepalive knobs of a Python
/// `{socket.TCP_KEEPIDLE: 60, ...}` dict, by name. Applied with `socket_keepalive`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct KeepaliveOptions {
    /// `TCP_KEEPIDLE` (4): idle seconds before the first probe.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle: Option<u32>,
    /// `TCP_KEEPINTVL` (5): seconds between probes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<u32>,
    /// `TCP_KEEPCNT` (6): unanswered probes before the connection is dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// `TCP_USER_TIMEOUT` (18): milliseconds unacknowledged data may wait.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_timeout: Option<u32>,
}

impl KeepaliveOptions {
    /// True when no option is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl fmt::Display for KeepaliveOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = [
            ("TCP_KEEPIDLE", self.idle),
            ("TCP_KEEPINTVL", self.interval),
            ("TCP_KEEPCNT", self.count),
            ("TCP_USER_TIMEOUT", self.user_timeout),
        ]
        .into_iter()
        .filter_map(|(n, v)| v.map(|v| format!("'{n}': {v}")))
        .collect();
        write!(f, "{{{}}}", parts.join(", "))
    }
}

/// The whole configuration.
///
/// A plain serde struct (every field optional thanks to `#[serde(default)]`), so an
/// application can embed it in its own configuration. `host` deserializes from a string
/// (`"a:1,b:2"`), a list of strings or a list of `[host, port]` pairs; durations are seconds.
///
/// `Debug` and `Display` never show passwords.
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SessionConfig {
    /// `session_redis_mode`.
    pub mode: Mode,
    /// `session_redis_key_expire`, seconds; 0 = no expiry from this setting.
    pub key_expire: u64,
    /// `session_redis_prefix`.
    pub prefix: String,
    /// `session_filestore_path`; `None` = [`SessionConfig::default_filestore_path`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filestore_path: Option<PathBuf>,
    /// `session_redis_url`: `redis://`, `rediss://`, `unix://` (or `redis+unix://`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `session_redis_host` (alias `SESSION_REDIS_SENTINEL_LIST`): one host in redis mode,
    /// the sentinels in sentinel mode, the seed nodes in cluster mode. Empty = `localhost`
    /// in redis mode.
    #[serde(with = "serde_impl::hosts")]
    pub host: Vec<HostPort>,
    /// `session_redis_port`: the port of hosts given without one.
    pub port: u16,
    /// `session_redis_username`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// `session_redis_password`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// `session_redis_db`.
    pub db: i64,
    /// `session_redis_unix_socket_path` (alias `SESSION_REDIS_UNIX_DOMAIN_SOCKET_PATH`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unix_socket_path: Option<PathBuf>,
    /// `session_redis_socket_timeout`, seconds; `None` = no response timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket_timeout: Option<f64>,
    /// `session_redis_socket_connect_timeout`, seconds; `None` = the client's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket_connect_timeout: Option<f64>,
    /// `session_redis_max_connections`: pool size; `None` = the pool's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    /// `session_redis_single_connection_client`: one multiplexed connection, no pool.
    pub single_connection_client: bool,

    /// `session_redis_socket_keepalive`: TCP keepalive on every connection.
    pub socket_keepalive: bool,
    /// `session_redis_socket_keepalive_options`: keepalive knobs; need `socket_keepalive`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket_keepalive_options: Option<KeepaliveOptions>,
    /// `session_redis_encoding` (Python only: `utf-8` accepted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// `session_redis_encoding_errors` (Python only: `strict` accepted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding_errors: Option<String>,
    /// `session_redis_charset` (old redis-py name of `encoding`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub charset: Option<String>,
    /// `session_redis_errors` (old redis-py name of `encoding_errors`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<String>,
    /// `session_redis_decode_responses` (Python only; no effect in Rust, any value accepted).
    pub decode_responses: bool,
    /// `session_redis_retry_on_timeout`: retry a request once after a timeout.
    pub retry_on_timeout: bool,
    /// `session_redis_ssl`: TLS to host/port, as a `rediss://` URL does.
    pub ssl: bool,
    /// `session_redis_ssl_keyfile`: client key (PEM) for mutual TLS, with `ssl_certfile`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssl_keyfile: Option<PathBuf>,
    /// `session_redis_ssl_certfile`: client certificate (PEM) for mutual TLS, with `ssl_keyfile`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssl_certfile: Option<PathBuf>,
    /// `session_redis_ssl_cert_reqs`: `required` and `optional` verify the server, `none` does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssl_cert_reqs: Option<String>,
    /// `session_redis_ssl_ca_certs`: PEM bundle of trusted CAs (replaces the system roots).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssl_ca_certs: Option<PathBuf>,
    /// `session_redis_ssl_ca_path`: directory of PEM CA files (replaces the system roots).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssl_ca_path: Option<PathBuf>,
    /// `session_redis_ssl_ca_data`: PEM text or base64 DER of trusted CAs (replaces the system roots).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssl_ca_data: Option<String>,
    /// `session_redis_ssl_check_hostname`: false accepts a valid certificate for another name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssl_check_hostname: Option<bool>,
    /// `session_redis_ssl_password`: password of an encrypted PKCS#8 `ssl_keyfile`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssl_password: Option<String>,
    /// `session_redis_ssl_validate_ocsp`. Rejected when true: rustls does not check OCSP.
    pub ssl_validate_ocsp: bool,
    /// `session_redis_ssl_validate_ocsp_stapled`. Rejected when true, as above.
    pub ssl_validate_ocsp_stapled: bool,
    /// `session_redis_ssl_ocsp_context`. Rejected: a pyOpenSSL object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssl_ocsp_context: Option<String>,
    /// `session_redis_ssl_ocsp_expected_cert`. Rejected: no OCSP checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssl_ocsp_expected_cert: Option<String>,
    /// `session_redis_health_check_interval`, seconds: `PING` a connection idle for longer
    /// before using it; 0/unset = never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check_interval: Option<f64>,
    /// `session_redis_client_name`: `CLIENT SETNAME` on every connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// `session_redis_master` (alias `SESSION_REDIS_SENTINEL_MASTER_ALIAS`): the master's
    /// name, sentinel mode only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master: Option<String>,
    /// `session_redis_migrate_from_filestore`: at start-up, move the file store's sessions into
    /// Redis, each only if Redis does not have its id yet (see [`crate::migration`]).
    pub migrate_from_filestore: bool,
    /// `session_redis_sentinel_username`: user for the sentinels themselves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentinel_username: Option<String>,
    /// `session_redis_sentinel_password`: password for the sentinels themselves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentinel_password: Option<String>,
    /// `session_redis_sentinel_read_from_replicas`: loads that do not touch the expiry go
    /// to a replica, writes to the master. Off by default: a load right after a write may
    /// not see it yet (replication is asynchronous). Sentinel mode only.
    pub sentinel_read_from_replicas: bool,
    /// `session_redis_cluster_read_from_replicas`: loads that do not touch the expiry go to
    /// a replica of the slot's master, writes to the master. Off by default, for the same
    /// reason as in sentinel mode (a load right after a write may not see it). Cluster mode
    /// only.
    pub cluster_read_from_replicas: bool,
    /// `session_redis_pool` (alias `SESSION_REDIS_POOL`): sessions partitioned between these
    /// Redis servers by weighted rendezvous hashing of the session id (docs/pool.md).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pool: Vec<PoolMember>,
    /// `session_redis_multi_backends` (alias `ACS_SESSION_MULTISESSIONS_POOL`): backends with
    /// read / write / delete modes (docs/pool.md).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub multi_backends: Vec<MultiBackendConfig>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Redis,
            key_expire: 0,
            prefix: "session:".into(),
            filestore_path: None,
            url: None,
            host: Vec::new(),
            port: 6379,
            username: None,
            password: None,
            db: 0,
            unix_socket_path: None,
            socket_timeout: None,
            socket_connect_timeout: None,
            max_connections: None,
            single_connection_client: false,
            socket_keepalive: false,
            socket_keepalive_options: None,
            encoding: None,
            encoding_errors: None,
            charset: None,
            errors: None,
            decode_responses: false,
            retry_on_timeout: false,
            ssl: false,
            ssl_keyfile: None,
            ssl_certfile: None,
            ssl_cert_reqs: None,
            ssl_ca_certs: None,
            ssl_ca_path: None,
            ssl_ca_data: None,
            ssl_check_hostname: None,
            ssl_password: None,
            ssl_validate_ocsp: false,
            ssl_validate_ocsp_stapled: false,
            ssl_ocsp_context: None,
            ssl_ocsp_expected_cert: None,
            health_check_interval: None,
            client_name: None,
            master: None,
            migrate_from_filestore: false,
            sentinel_username: None,
            sentinel_password: None,
            sentinel_read_from_replicas: false,
            cluster_read_from_replicas: false,
            pool: Vec::new(),
            multi_backends: Vec::new(),
        }
    }
}

/// Shows `Some(<redacted>)` for a set secret.
struct Secret<'a>(&'a Option<String>);

impl fmt::Debug for Secret<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(_) => write!(f, "Some({REDACTED})"),
            None => f.write_str("None"),
        }
    }
}

impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = self.url.as_deref().map(redact_url);
        f.debug_struct("SessionConfig")
            .field("mode", &self.mode)
            .field("key_expire", &self.key_expire)
            .field("prefix", &self.prefix)
            .field("filestore_path", &self.filestore_path)
            .field("url", &url)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &Secret(&self.password))
            .field("db", &self.db)
            .field("unix_socket_path", &self.unix_socket_path)
            .field("socket_timeout", &self.socket_timeout)
            .field("socket_connect_timeout", &self.socket_connect_timeout)
            .field("max_connections", &self.max_connections)
            .field("single_connection_client", &self.single_connection_client)
            .field("socket_keepalive", &self.socket_keepalive)
            .field("socket_keepalive_options", &self.socket_keepalive_options)
            .field("encoding", &self.encoding)
            .field("encoding_errors", &self.encoding_errors)
            .field("charset", &self.charset)
            .field("errors", &self.errors)
            .field("decode_responses", &self.decode_responses)
            .field("retry_on_timeout", &self.retry_on_timeout)
            .field("ssl", &self.ssl)
            .field("ssl_keyfile", &self.ssl_keyfile)
            .field("ssl_certfile", &self.ssl_certfile)
            .field("ssl_cert_reqs", &self.ssl_cert_reqs)
            .field("ssl_ca_certs", &self.ssl_ca_certs)
            .field("ssl_ca_path", &self.ssl_ca_path)
            .field("ssl_ca_data", &self.ssl_ca_data)
            .field("ssl_check_hostname", &self.ssl_check_hostname)
            .field("ssl_password", &Secret(&self.ssl_password))
            .field("ssl_validate_ocsp", &self.ssl_validate_ocsp)
            .field("ssl_validate_ocsp_stapled", &self.ssl_validate_ocsp_stapled)
            .field("ssl_ocsp_context", &self.ssl_ocsp_context)
            .field("ssl_ocsp_expected_cert", &self.ssl_ocsp_expected_cert)
            .field("health_check_interval", &self.health_check_interval)
            .field("client_name", &self.client_name)
            .field("master", &self.master)
            .field("migrate_from_filestore", &self.migrate_from_filestore)
            .field("sentinel_username", &self.sentinel_username)
            .field("sentinel_password", &Secret(&self.sentinel_password))
            .field(
                "sentinel_read_from_replicas",
                &self.sentinel_read_from_replicas,
            )
            .field(
                "cluster_read_from_replicas",
                &self.cluster_read_from_replicas,
            )
            .field("pool", &self.pool)
            .field("multi_backends", &self.multi_backends)
            .finish()
    }
}

/// The options that differ from the defaults, one `session_redis_* = value` per line in the
/// syntax of a config file (mode always first), secrets shown as `<redacted>`. Handy for a
/// start-up log line.
impl fmt::Display for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (key, value)) in self.entries().into_iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{key} = {value}")?;
        }
        Ok(())
    }
}

fn py_bool(b: bool) -> String {
    if b { "True" } else { "False" }.into()
}

fn secs(f: f64) -> String {
    // Whole seconds print without a fraction, like an Odoo config writes them.
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        f.to_string()
    }
}

/// The longest `session_redis_key_expire` accepted: 100 years.
pub const MAX_KEY_EXPIRE_SECS: u64 = 100 * 365 * 24 * 60 * 60;

impl SessionConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> SessionConfigBuilder {
        SessionConfigBuilder::new()
    }

    /// A builder starting from this configuration, to override parts of it in code.
    ///
    /// ```
    /// use session_core::SessionConfig;
    ///
    /// let loaded = SessionConfig::from_sources(None, [("SESSION_REDIS_PORT".to_string(), "6380".to_string())]).unwrap();
    /// let config = loaded.to_builder().port(7000).build().unwrap();
    /// assert_eq!(config.port, 7000);
    /// ```
    pub fn to_builder(&self) -> SessionConfigBuilder {
        SessionConfigBuilder::from_config(self.clone())
    }

    /// Defaults, then `file` (when given), then the `SESSION_REDIS_*` variables among `env`;
    /// validated. `SESSION_CONFIG` in `env` is not consulted: `file` says which file.
    pub fn from_sources<K, V>(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, ConfigError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let builder = Self::builder();
        let builder = match file {
            Some(path) => builder.file(path),
            None => builder,
        };
        builder.env(env).build()
    }

    /// Like [`from_env`](Self::from_env) with the environment given: the file named by
    /// `SESSION_CONFIG` in `env`, then the `SESSION_REDIS_*` variables of `env`.
    pub fn from_env_vars<K, V>(env: impl IntoIterator<Item = (K, V)>) -> Result<Self, ConfigError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        Self::builder().env_with_file(env).build()
    }

    /// Reads the process environment: defaults, then the file named by `SESSION_CONFIG`, then
    /// `SESSION_REDIS_*` / `SESSION_FILESTORE_PATH`; validated. To override in code, use
    /// `SessionConfig::builder().process_env().port(7000).build()`.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::builder().process_env().build()
    }

    /// Defaults, then one config file (`.toml` or Odoo-style INI); validated.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        Self::builder().file(path).build()
    }

    /// Checks the combination of options: every option is honoured, or rejected here with
    /// its reason.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_values()?;
        self.validate_unsupported()?;
        self.validate_pool_and_multi()?;
        self.validate_topology()
    }

    fn validate_values(&self) -> Result<(), ConfigError> {
        if self.port == 0 {
            return Err(ConfigError::invalid(
                "session_redis_port",
                "0",
                "a TCP port, an integer from 1 to 65535",
            ));
        }
        if self.db < 0 {
            return Err(ConfigError::invalid(
                "session_redis_db",
                &self.db.to_string(),
                "an integer ≥ 0",
            ));
        }
        // Redis rejects an expiry whose absolute time (now + TTL, in milliseconds) overflows;
        // catch it here rather than as a failed write on every request.
        if self.key_expire > MAX_KEY_EXPIRE_SECS {
            return Err(ConfigError::invalid(
                "session_redis_key_expire",
                &self.key_expire.to_string(),
                &format!("at most {MAX_KEY_EXPIRE_SECS} seconds (100 years)"),
            ));
        }
        for (key, value) in [
            ("session_redis_socket_timeout", self.socket_timeout),
            (
                "session_redis_socket_connect_timeout",
                self.socket_connect_timeout,
            ),
        ] {
            if let Some(v) = value {
                if !(v.is_finite() && v > 0.0 && v < 1e9) {
                    return Err(ConfigError::invalid(
                        key,
                        &v.to_string(),
                        "a positive number of seconds (unset it for no timeout)",
                    ));
                }
            }
        }
        if let Some(v) = self.health_check_interval {
            if !(v.is_finite() && v >= 0.0) {
                return Err(ConfigError::invalid(
                    "session_redis_health_check_interval",
                    &v.to_string(),
                    "a number of seconds ≥ 0",
                ));
            }
        }
        if let Some(opts) = self.socket_keepalive_options {
            // Linux' limits for the three keepalive knobs; 0 is refused by setsockopt.
            for (name, value, max) in [
                ("TCP_KEEPIDLE", opts.idle, 32767),
                ("TCP_KEEPINTVL", opts.interval, 32767),
                ("TCP_KEEPCNT", opts.count, 127),
            ] {
                if let Some(v) = value.filter(|v| *v == 0 || *v > max) {
                    return Err(ConfigError::invalid(
                        "session_redis_socket_keepalive_options",
                        &format!("{name}: {v}"),
                        &format!("{name} from 1 to {max}"),
                    ));
                }
            }
            // redis-py ignores them without socket_keepalive; whoever wrote them expects
            // keepalive, so say it is off rather than silently do nothing.
            if !self.socket_keepalive && !opts.is_empty() {
                return Err(ConfigError::invalid(
                    "session_redis_socket_keepalive_options",
                    &opts.to_string(),
                    "to be set together with session_redis_socket_keepalive = True (the options only tune keepalive, which is off)",
                ));
            }
        }
        if self.max_connections == Some(0) {
            return Err(ConfigError::invalid(
                "session_redis_max_connections",
                "0",
                "an integer ≥ 1",
            ));
        }
        for h in &self.host {
            if h.host.trim().is_empty() || h.port == Some(0) {
                return Err(ConfigError::invalid(
                    "session_redis_host",
                    &h.to_string(),
                    "host names with ports from 1 to 65535",
                ));
            }
        }
        if let Some(p) = &self.filestore_path {
            if p.as_os_str().is_empty() {
                return Err(ConfigError::invalid(
                    "session_filestore_path",
                    "",
                    "a directory path (unset it for the default)",
                ));
            }
        }
        if let Some(p) = &self.unix_socket_path {
            if p.as_os_str().is_empty() {
                return Err(ConfigError::invalid(
                    "session_redis_unix_socket_path",
                    "",
                    "the path of Redis' unix socket",
                ));
            }
        }
        if let Some(url) = &self.url {
            validate_url(url)?;
        }
        // Python codec settings: Rust works in bytes and UTF-8, which is what these say.
        for (key, value) in [
            ("session_redis_encoding", &self.encoding),
            ("session_redis_charset", &self.charset),
        ] {
            if let Some(v) = value {
                let norm = v.trim().to_ascii_lowercase().replace('_', "-");
                if norm != "utf-8" && norm != "utf8" {
                    return Err(ConfigError::unsupported(
                        key,
                        v,
                        "utf-8: this library stores session data as UTF-8 JSON; other codecs are a Python (redis-py) setting with no equivalent here",
                    ));
                }
            }
        }
        for (key, value) in [
            ("session_redis_encoding_errors", &self.encoding_errors),
            ("session_redis_errors", &self.errors),
        ] {
            if let Some(v) = value {
                if !v.trim().eq_ignore_ascii_case("strict") {
                    return Err(ConfigError::unsupported(
                        key,
                        v,
                        "strict: invalid UTF-8 is always an error here; other error handlers are a Python (redis-py) setting with no equivalent",
                    ));
                }
            }
        }
        Ok(())
    }

    /// `session_redis_pool` and `session_redis_multi_backends`: exclusive, and each replaces the
    /// top-level address, which must then be unset rather than silently ignored.
    fn validate_pool_and_multi(&self) -> Result<(), ConfigError> {
        let (key, what) = match (self.pool.is_empty(), self.multi_backends.is_empty()) {
            (true, true) => return Ok(()),
            (false, false) => {
                return Err(ConfigError::invalid(
                    "session_redis_pool",
                    "(set)",
                    "unset when session_redis_multi_backends is set: put the pool inside one backend's setting instead",
                ))
            }
            (false, true) => ("session_redis_pool", "each pool member gives its own address"),
            (true, false) => (
                "session_redis_multi_backends",
                "each backend gives its own settings",
            ),
        };
        if self.mode != Mode::Redis {
            return Err(ConfigError::invalid(
                "session_redis_mode",
                self.mode.as_str(),
                &format!(
                    "redis (or unset) with {key}: {}",
                    if self.pool.is_empty() {
                        "each backend sets its own mode in its setting"
                    } else {
                        "a pool partitions sessions between standalone Redis servers; sentinel and cluster mode route by themselves"
                    }
                ),
            ));
        }
        let hosts = self
            .host
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        for (option, set, shown) in [
            ("session_redis_host", !self.host.is_empty(), hosts),
            (
                "session_redis_url",
                self.url.is_some(),
                self.url.as_deref().map(redact_url).unwrap_or_default(),
            ),
            (
                "session_redis_unix_socket_path",
                self.unix_socket_path.is_some(),
                self.unix_socket_path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
        ] {
            if set {
                return Err(ConfigError::invalid(
                    option,
                    &shown,
                    &format!("unset when {key} is set: {what}"),
                ));
            }
        }
        if !self.pool.is_empty() {
            let mut seen = std::collections::HashMap::new();
            for (i, member) in self.pool.iter().enumerate() {
                member.validate(i, self)?;
                if let Some(j) = seen.insert(member.identity(self), i) {
                    return Err(ConfigError::invalid(
                        &format!("session_redis_pool[{i}]"),
                        &member.identity(self),
                        &format!("a server not already in the pool (member {j} has the same address and db)"),
                    ));
                }
            }
            return Ok(());
        }
        if self.migrate_from_filestore {
            return Err(ConfigError::invalid(
                "session_redis_migrate_from_filestore",
                "True",
                "unset with session_redis_multi_backends: add the file store as a backend with modes read and delete, and its sessions move as they are used",
            ));
        }
        let mut names = std::collections::HashSet::new();
        for b in &self.multi_backends {
            if !names.insert(b.name.as_str()) {
                return Err(ConfigError::invalid(
                    "session_redis_multi_backends",
                    &format!("backend {:?}", b.name),
                    "unique backend names",
                ));
            }
            b.validate()?;
        }
        for mode in [BackendMode::Read, BackendMode::Write, BackendMode::Delete] {
            if !self.multi_backends.iter().any(|b| b.has(mode)) {
                return Err(ConfigError::invalid(
                    "session_redis_multi_backends",
                    &format!("{} backend(s)", self.multi_backends.len()),
                    &format!(
                        "at least one backend with mode \"{}\" (and one each for read, write and delete)",
                        mode.as_str()
                    ),
                ));
            }
        }
        Ok(())
    }

    fn validate_unsupported(&self) -> Result<(), ConfigError> {
        self.validate_tls()?;
        if self.migrate_from_filestore && self.mode == Mode::Disabled {
            return Err(ConfigError::invalid(
                "session_redis_migrate_from_filestore",
                "True",
                "False when session_redis_mode is disabled: the migration moves file-store sessions into Redis, and Redis is off",
            ));
        }
        Ok(())
    }

    /// The TLS rows: combinations that cannot work, and the OCSP options, which cannot be
    /// honoured on this stack. Files are read later, by the Redis backend at start-up.
    fn validate_tls(&self) -> Result<(), ConfigError> {
        let url_scheme = self
            .url
            .as_deref()
            .and_then(|url| url.split_once("://"))
            .map(|(scheme, _)| scheme.to_ascii_lowercase());
        if self.ssl && self.mode == Mode::Redis {
            if let Some(scheme) = url_scheme.filter(|s| s != "rediss" && s != "valkeys") {
                return Err(ConfigError::invalid(
                    "session_redis_ssl",
                    "True",
                    &format!(
                        "False with a {scheme}:// session_redis_url (`{}`), which asks for a connection without TLS: write rediss:// instead (or unset session_redis_ssl)",
                        redact_url(self.url.as_deref().unwrap_or_default())
                    ),
                ));
            }
            if let (None, Some(p)) = (&self.url, &self.unix_socket_path) {
                return Err(ConfigError::invalid(
                    "session_redis_ssl",
                    "True",
                    &format!(
                        "False with session_redis_unix_socket_path ({}): TLS runs over TCP only; use host/port for TLS",
                        p.display()
                    ),
                ));
            }
        }
        match (&self.ssl_certfile, &self.ssl_keyfile) {
            (Some(p), None) | (None, Some(p)) => {
                let key = if self.ssl_certfile.is_some() {
                    "session_redis_ssl_certfile"
                } else {
                    "session_redis_ssl_keyfile"
                };
                return Err(ConfigError::invalid(
                    key,
                    &p.display().to_string(),
                    "session_redis_ssl_certfile and session_redis_ssl_keyfile together: mutual TLS needs both the client certificate and its private key",
                ));
            }
            _ => {}
        }
        if let Some(reqs) = &self.ssl_cert_reqs {
            let norm = reqs.trim().to_ascii_lowercase();
            let norm = norm.trim_start_matches("ssl.").trim_start_matches("cert_");
            if !matches!(norm, "required" | "optional" | "none") {
                return Err(ConfigError::invalid(
                    "session_redis_ssl_cert_reqs",
                    reqs,
                    "one of required, optional, none",
                ));
            }
        }
        if self.mode == Mode::Sentinel && self.ssl_check_hostname == Some(false) {
            return Err(ConfigError::unsupported(
                "session_redis_ssl_check_hostname",
                "False",
                "True in sentinel mode: host name checks cannot be turned off for the masters the sentinels name (redis-rs has no setting for it); put the names you connect with in the certificates, or use session_redis_ssl_cert_reqs = none (no checks at all) on a trusted network",
            ));
        }
        const OCSP: &str = "not possible: rustls, the TLS library under redis-rs, does not check OCSP and redis-rs takes no custom certificate verifier. Instead, use short-lived server certificates (revocation matters less), keep revoked certificates out through your CA's CRL process, or put a TLS proxy that checks OCSP (stunnel, HAProxy) in front of Redis; then unset this option";
        if self.ssl_validate_ocsp {
            return Err(ConfigError::unsupported(
                "session_redis_ssl_validate_ocsp",
                "True",
                OCSP,
            ));
        }
        if self.ssl_validate_ocsp_stapled {
            return Err(ConfigError::unsupported(
                "session_redis_ssl_validate_ocsp_stapled",
                "True",
                OCSP,
            ));
        }
        if let Some(cert) = &self.ssl_ocsp_expected_cert {
            return Err(ConfigError::unsupported(
                "session_redis_ssl_ocsp_expected_cert",
                &shorten(cert),
                OCSP,
            ));
        }
        if let Some(ctx) = &self.ssl_ocsp_context {
            return Err(ConfigError::unsupported(
                "session_redis_ssl_ocsp_context",
                &shorten(ctx),
                "not possible: it is a pyOpenSSL context object, which has no meaning outside Python; unset it (for OCSP checks, see session_redis_ssl_validate_ocsp)",
            ));
        }
        Ok(())
    }

    fn validate_topology(&self) -> Result<(), ConfigError> {
        let hosts = || {
            self.host
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        let sentinel_only = |this: &Self| -> Result<(), ConfigError> {
            if let Some(m) = &this.master {
                return Err(ConfigError::invalid(
                    "session_redis_master",
                    m,
                    &format!(
                        "no master name in {} mode: session_redis_master is for session_redis_mode = sentinel",
                        this.mode
                    ),
                ));
            }
            for (key, value, secret) in [
                (
                    "session_redis_sentinel_username",
                    &this.sentinel_username,
                    false,
                ),
                (
                    "session_redis_sentinel_password",
                    &this.sentinel_password,
                    true,
                ),
            ] {
                if let Some(v) = value {
                    return Err(ConfigError::invalid(
                        key,
                        if secret { REDACTED } else { v },
                        &format!(
                            "nothing in {} mode: {key} is for session_redis_mode = sentinel",
                            this.mode
                        ),
                    ));
                }
            }
            if this.sentinel_read_from_replicas {
                return Err(ConfigError::invalid(
                    "session_redis_sentinel_read_from_replicas",
                    "True",
                    &format!(
                        "False in {} mode: replica reads are for session_redis_mode = sentinel",
                        this.mode
                    ),
                ));
            }
            Ok(())
        };
        if self.cluster_read_from_replicas && !matches!(self.mode, Mode::Cluster | Mode::Disabled) {
            return Err(ConfigError::invalid(
                "session_redis_cluster_read_from_replicas",
                "True",
                &format!(
                    "False in {} mode: replica reads of this option are for session_redis_mode = cluster",
                    self.mode
                ),
            ));
        }
        match self.mode {
            // Redis is off: its connection settings may stay in the file for later.
            Mode::Disabled => Ok(()),
            Mode::Redis => {
                sentinel_only(self)?;
                if self.host.len() > 1 {
                    return Err(ConfigError::invalid(
                        "session_redis_host",
                        &hosts(),
                        "one host in redis mode: set session_redis_mode = sentinel (with session_redis_master) or cluster for a list",
                    ));
                }
                if let Some(url) = &self.url {
                    let conflict = if !self.host.is_empty() {
                        Some(("session_redis_host", hosts()))
                    } else if let Some(p) = &self.unix_socket_path {
                        Some(("session_redis_unix_socket_path", p.display().to_string()))
                    } else if self.port != 6379 {
                        Some(("session_redis_port", self.port.to_string()))
                    } else {
                        None
                    };
                    if let Some((key, value)) = conflict {
                        return Err(ConfigError::invalid(
                            key,
                            &value,
                            &format!(
                                "no value when session_redis_url is set (`{}`): the URL gives the address; put it in the URL or unset the URL",
                                redact_url(url)
                            ),
                        ));
                    }
                }
                if let (Some(p), false) = (&self.unix_socket_path, self.host.is_empty()) {
                    return Err(ConfigError::invalid(
                        "session_redis_unix_socket_path",
                        &p.display().to_string(),
                        &format!(
                            "either a unix socket or session_redis_host (`{}`), not both",
                            hosts()
                        ),
                    ));
                }
                Ok(())
            }
            Mode::Sentinel => {
                if self.host.is_empty() {
                    return Err(ConfigError::invalid(
                        "session_redis_host",
                        "(empty)",
                        "the list of sentinels in sentinel mode, such as [('10.0.0.1', 26379), ('10.0.0.2', 26379)] (or SESSION_REDIS_SENTINEL_LIST)",
                    ));
                }
                if self.master.as_deref().is_none_or(|m| m.trim().is_empty()) {
                    return Err(ConfigError::invalid(
                        "session_redis_master",
                        "(unset)",
                        "the name of the master the sentinels monitor, required in sentinel mode (or SESSION_REDIS_SENTINEL_MASTER_ALIAS)",
                    ));
                }
                self.no_url_or_socket("sentinel mode takes the sentinels in session_redis_host")
            }
            Mode::Cluster => {
                sentinel_only(self)?;
                if self.host.is_empty() {
                    return Err(ConfigError::invalid(
                        "session_redis_host",
                        "(empty)",
                        "one or more seed nodes in cluster mode, such as 10.0.0.1:7000,10.0.0.2:7000",
                    ));
                }
                self.no_url_or_socket("cluster mode takes its seed nodes in session_redis_host")?;
                self.validate_cluster_options()
            }
        }
    }

    /// The options a Redis Cluster cannot honour: each one an error with the reason, so
    /// nothing set is silently ignored (docs/cluster.md lists them).
    fn validate_cluster_options(&self) -> Result<(), ConfigError> {
        if self.db != 0 {
            return Err(ConfigError::invalid(
                "session_redis_db",
                &self.db.to_string(),
                "0 in cluster mode: a Redis Cluster has only database 0",
            ));
        }
        if let Some(name) = &self.client_name {
            return Err(ConfigError::unsupported(
                "session_redis_client_name",
                name,
                "no client name in cluster mode: the redis-rs cluster client opens and reopens its node connections itself and has no hook to send CLIENT SETNAME on each; unset it",
            ));
        }
        if let Some(max) = self.max_connections {
            return Err(ConfigError::unsupported(
                "session_redis_max_connections",
                &max.to_string(),
                "no pool size in cluster mode: the cluster client keeps one multiplexed connection per node, shared by every request; unset it",
            ));
        }
        if let Some(interval) = self.health_check_interval.filter(|s| *s != 0.0) {
            return Err(ConfigError::unsupported(
                "session_redis_health_check_interval",
                &interval.to_string(),
                "0 or unset in cluster mode: the cluster client checks and reconnects its node connections itself and cannot PING them before use",
            ));
        }
        Ok(())
    }

    fn no_url_or_socket(&self, why: &str) -> Result<(), ConfigError> {
        if let Some(url) = &self.url {
            return Err(ConfigError::invalid(
                "session_redis_url",
                &redact_url(url),
                &format!("no URL in {} mode: {why}", self.mode),
            ));
        }
        if let Some(p) = &self.unix_socket_path {
            return Err(ConfigError::invalid(
                "session_redis_unix_socket_path",
                &p.display().to_string(),
                &format!("no unix socket in {} mode: {why}", self.mode),
            ));
        }
        Ok(())
    }

    /// The file store root: `session_filestore_path`, or
    /// [`default_filestore_path`](Self::default_filestore_path).
    pub fn filestore_path(&self) -> PathBuf {
        self.filestore_path
            .clone()
            .unwrap_or_else(Self::default_filestore_path)
    }

    /// The default file store root, from the process environment:
    /// `$STATE_DIRECTORY/sessions` when run by systemd with `StateDirectory=`, else
    /// `$XDG_STATE_HOME/rust-web-sessions/sessions`, else
    /// `$HOME/.local/state/rust-web-sessions/sessions`, else
    /// `<temp dir>/rust-web-sessions/sessions`. Relative values are skipped, as the XDG
    /// specification asks.
    pub fn default_filestore_path() -> PathBuf {
        let abs = |var: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
        };
        // systemd may list several state directories separated by ':'; the first is ours.
        if let Some(dir) = std::env::var("STATE_DIRECTORY")
            .ok()
            .and_then(|v| v.split(':').next().map(PathBuf::from))
            .filter(|p| p.is_absolute())
        {
            return dir.join("sessions");
        }
        let base = abs("XDG_STATE_HOME")
            .or_else(|| abs("HOME").map(|h| h.join(".local").join("state")))
            .unwrap_or_else(std::env::temp_dir);
        base.join("rust-web-sessions").join("sessions")
    }

    /// `key_expire` as a duration, `None` when 0.
    pub fn key_expire_duration(&self) -> Option<Duration> {
        (self.key_expire > 0).then(|| Duration::from_secs(self.key_expire))
    }

    /// `socket_timeout` as a duration (`None`: no response timeout).
    pub fn socket_timeout_duration(&self) -> Option<Duration> {
        self.socket_timeout
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
    }

    /// `socket_connect_timeout` as a duration (`None`: the client's default).
    pub fn socket_connect_timeout_duration(&self) -> Option<Duration> {
        self.socket_connect_timeout
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
    }

    /// The options that differ from the defaults as `(session_redis_*, value)` in config-file
    /// syntax, secrets redacted. `Display` prints these.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        let d = Self::default();
        let mut out: Vec<(&'static str, String)> =
            vec![("session_redis_mode", self.mode.to_string())];
        let mut opt = |key: &'static str, v: Option<String>| {
            if let Some(v) = v {
                out.push((key, v));
            }
        };
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        let flag = |b: bool| b.then(|| py_bool(true));
        opt(
            "session_redis_key_expire",
            (self.key_expire != 0).then(|| self.key_expire.to_string()),
        );
        opt(
            "session_redis_prefix",
            (self.prefix != d.prefix).then(|| format!("{:?}", self.prefix)),
        );
        opt("session_filestore_path", path(&self.filestore_path));
        opt("session_redis_url", self.url.as_deref().map(redact_url));
        opt(
            "session_redis_host",
            (!self.host.is_empty()).then(|| {
                self.host
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            }),
        );
        opt(
            "session_redis_port",
            (self.port != d.port).then(|| self.port.to_string()),
        );
        opt("session_redis_username", self.username.clone());
        opt(
            "session_redis_password",
            self.password.as_ref().map(|_| REDACTED.into()),
        );
        opt(
            "session_redis_db",
            (self.db != 0).then(|| self.db.to_string()),
        );
        opt(
            "session_redis_unix_socket_path",
            path(&self.unix_socket_path),
        );
        opt(
            "session_redis_socket_timeout",
            self.socket_timeout.map(secs),
        );
        opt(
            "session_redis_socket_connect_timeout",
            self.socket_connect_timeout.map(secs),
        );
        opt(
            "session_redis_max_connections",
            self.max_connections.map(|m| m.to_string()),
        );
        opt(
            "session_redis_single_connection_client",
            flag(self.single_connection_client),
        );
        opt(
            "session_redis_socket_keepalive",
            flag(self.socket_keepalive),
        );
        opt(
            "session_redis_socket_keepalive_options",
            self.socket_keepalive_options.map(|o| o.to_string()),
        );
        opt("session_redis_encoding", self.encoding.clone());
        opt(
            "session_redis_encoding_errors",
            self.encoding_errors.clone(),
        );
        opt("session_redis_charset", self.charset.clone());
        opt("session_redis_errors", self.errors.clone());
        opt(
            "session_redis_decode_responses",
            flag(self.decode_responses),
        );
        opt(
            "session_redis_retry_on_timeout",
            flag(self.retry_on_timeout),
        );
        opt("session_redis_ssl", flag(self.ssl));
        opt("session_redis_ssl_keyfile", path(&self.ssl_keyfile));
        opt("session_redis_ssl_certfile", path(&self.ssl_certfile));
        opt("session_redis_ssl_cert_reqs", self.ssl_cert_reqs.clone());
        opt("session_redis_ssl_ca_certs", path(&self.ssl_ca_certs));
        opt("session_redis_ssl_ca_path", path(&self.ssl_ca_path));
        opt(
            "session_redis_ssl_ca_data",
            self.ssl_ca_data.as_deref().map(shorten),
        );
        opt(
            "session_redis_ssl_check_hostname",
            self.ssl_check_hostname.map(py_bool),
        );
        opt(
            "session_redis_ssl_password",
            self.ssl_password.as_ref().map(|_| REDACTED.into()),
        );
        opt(
            "session_redis_ssl_validate_ocsp",
            flag(self.ssl_validate_ocsp),
        );
        opt(
            "session_redis_ssl_validate_ocsp_stapled",
            flag(self.ssl_validate_ocsp_stapled),
        );
        opt(
            "session_redis_ssl_ocsp_context",
            self.ssl_ocsp_context.as_deref().map(shorten),
        );
        opt(
            "session_redis_ssl_ocsp_expected_cert",
            self.ssl_ocsp_expected_cert.as_deref().map(shorten),
        );
        opt(
            "session_redis_health_check_interval",
            self.health_check_interval.map(secs),
        );
        opt("session_redis_client_name", self.client_name.clone());
        opt("session_redis_master", self.master.clone());
        opt(
            "session_redis_migrate_from_filestore",
            flag(self.migrate_from_filestore),
        );
        opt(
            "session_redis_sentinel_username",
            self.sentinel_username.clone(),
        );
        opt(
            "session_redis_sentinel_password",
            self.sentinel_password.as_ref().map(|_| REDACTED.into()),
        );
        opt(
            "session_redis_sentinel_read_from_replicas",
            flag(self.sentinel_read_from_replicas),
        );
        opt(
            "session_redis_cluster_read_from_replicas",
            flag(self.cluster_read_from_replicas),
        );
        opt(
            "session_redis_pool",
            (!self.pool.is_empty()).then(|| pool::show_pool(&self.pool)),
        );
        opt(
            "session_redis_multi_backends",
            (!self.multi_backends.is_empty()).then(|| pool::show_multi(&self.multi_backends)),
        );
        out
    }
}

/// Long values (certificates) are cut in errors and logs.
/// `s` cut to 40 characters, for error messages.
pub(crate) fn shorten(s: &str) -> String {
    let s = s.trim();
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

fn validate_url(url: &str) -> Result<(), ConfigError> {
    let shown = redact_url(url);
    let bad = |why: &str| {
        Err(ConfigError::invalid(
            "session_redis_url",
            &shown,
            &format!("a redis://, rediss:// or unix:// URL ({why})"),
        ))
    };
    let Some((scheme, rest)) = url.trim().split_once("://") else {
        return bad("no scheme");
    };
    match scheme.to_ascii_lowercase().as_str() {
        "redis" | "rediss" => {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
            let host = authority.rsplit('@').next().unwrap_or("");
            if host.is_empty() {
                return bad("no host");
            }
            Ok(())
        }
        "unix" | "redis+unix" => {
            let path = rest.split(['?', '#']).next().unwrap_or("");
            if path.is_empty() {
                return bad("no socket path");
            }
            Ok(())
        }
        other => bad(&format!("unknown scheme `{other}`")),
    }
}

/// A configuration error naming the key, the value and what is expected.
///
/// Values of secret options are `<redacted>`; so is the password inside a URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration `{key}` = {value}: {expected}")]
pub struct ConfigError {
    /// The option's name (as written in the source, or canonical for combination checks).
    pub key: String,
    /// The value given (secrets redacted).
    pub value: String,
    /// What is expected instead, or why the option is rejected.
    pub expected: String,
}

impl ConfigError {
    /// An option that is understood but not supported.
    pub fn unsupported(key: &str, value: &str, reason: &str) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
            expected: reason.into(),
        }
    }

    /// A value that is not valid for its option.
    pub fn invalid(key: &str, value: &str, expected: &str) -> Self {
        Self::unsupported(key, value, expected)
    }

    /// An option this release does not implement yet; the message starts with
    /// "not yet supported".
    pub fn not_yet_supported(key: &str, value: &str, plan: &str) -> Self {
        Self::unsupported(key, value, &format!("not yet supported: {plan}"))
    }

    /// True for [`not_yet_supported`](Self::not_yet_supported) errors.
    pub fn is_not_yet_supported(&self) -> bool {
        self.expected.starts_with("not yet supported")
    }
}
