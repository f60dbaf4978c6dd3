//! Configuration: every `session_redis_*` option, from every source.
//!
//! STUB: the config helper replaces this file (and adds sibling modules). The items and field
//! names below are the contract the rest of the crate relies on: keep them.

use std::path::PathBuf;

/// Which engine holds the sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
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

/// A host and an optional port.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HostPort {
    /// Host name or address.
    pub host: String,
    /// Port; `None` means `session_redis_port`.
    pub port: Option<u16>,
}

/// The whole configuration.
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SessionConfig {
    /// `session_redis_mode`.
    pub mode: Mode,
    /// `session_redis_key_expire`, seconds; 0 = no expiry from this setting.
    pub key_expire: u64,
    /// `session_redis_prefix`.
    pub prefix: String,
    /// `session_filestore_path`.
    pub filestore_path: Option<PathBuf>,
    /// `session_redis_url`.
    pub url: Option<String>,
    /// `session_redis_host`.
    pub host: Vec<HostPort>,
    /// `session_redis_port`.
    pub port: u16,
    /// `session_redis_username`.
    pub username: Option<String>,
    /// `session_redis_password`.
    pub password: Option<String>,
    /// `session_redis_db`.
    pub db: i64,
    /// `session_redis_unix_socket_path`.
    pub unix_socket_path: Option<PathBuf>,
    /// `session_redis_socket_timeout`, seconds.
    pub socket_timeout: Option<f64>,
    /// `session_redis_socket_connect_timeout`, seconds.
    pub socket_connect_timeout: Option<f64>,
    /// `session_redis_max_connections`.
    pub max_connections: Option<usize>,
    /// `session_redis_single_connection_client`.
    pub single_connection_client: bool,
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
        }
    }
}

impl std::fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionConfig { .. }")
    }
}

impl SessionConfig {
    /// STUB: reads `SESSION_CONFIG` and `SESSION_REDIS_*` (the config helper implements it).
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self::default())
    }

    /// Checks the combination of options.
    pub fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }

    /// The file store root.
    pub fn filestore_path(&self) -> PathBuf {
        self.filestore_path
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("rust-web-sessions"))
    }

    /// `key_expire` as a duration, `None` when 0.
    pub fn key_expire_duration(&self) -> Option<std::time::Duration> {
        (self.key_expire > 0).then(|| std::time::Duration::from_secs(self.key_expire))
    }
}

/// A configuration error naming the key, the value and what is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration `{key}` = {value}: {expected}")]
pub struct ConfigError {
    /// The option's canonical name.
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
}
