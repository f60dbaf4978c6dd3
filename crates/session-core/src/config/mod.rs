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
//!
//! # Modules
//!
//! This file holds the public types; each submodule uses only those listed after it (and the
//! types here), so there is no cycle between them:
//!
//! - `error`, `redact`: nothing;
//! - `literal` (Python literals, TOML values): `error`, `redact`;
//! - `host` (host lists): `literal`;
//! - `pool`: `host`, `literal`, `redact`;
//! - `multi`: `literal`, `redact`;
//! - `names` (option names, aliases, suggestions): nothing;
//! - `parse` (one value, typed for its option): `host`, `literal`, `names`, `redact`, and the
//!   `pool` and `multi` types;
//! - `display`: `pool`, `multi`, `redact`;
//! - `validate`: `pool`, `multi`, `redact`;
//! - `sources` (files, environment, builder): `literal`, `names`, `parse`, `pool`, `multi`,
//!   `redact`;
//! - `serde_impl`: `host`, `parse`.

mod display;
mod error;
mod host;
mod literal;
mod multi;
mod names;
mod parse;
mod pool;
mod redact;
mod serde_impl;
mod sources;
mod validate;

use std::{fmt, path::PathBuf, time::Duration};

pub use error::{ConfigError, ConfigErrorKind};
pub use multi::{BackendMode, MultiBackendConfig};
pub use pool::PoolMember;
pub use sources::{SessionConfigBuilder, CONFIG_FILE_VAR};

use redact::REDACTED;
pub(crate) use redact::{redact_url, shorten};

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

/// The longest `session_redis_key_expire` accepted: 100 years.
pub const MAX_KEY_EXPIRE_SECS: u64 = 100 * 365 * 24 * 60 * 60;
impl SessionConfig {
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
}
