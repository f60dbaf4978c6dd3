//! Configuration: every `session_redis_*` option, from every source (see the crate docs,
//! "Configuration"). Its types are re-exported at the crate root, their one public path.
//!
//! # Modules
//!
//! This file holds the public types and expands the option table of `options.rs` into
//! [`SessionConfig`] and what each option needs (`Field`, `OPTIONS`, `ALIASES`, `apply`,
//! `entries`, `Debug`). Each submodule below uses only the modules named after its colon,
//! plus the items of this file, so there is no cycle between submodules:
//!
//! - `options` (the table, as macros), `error`, `redact`: nothing;
//! - `literal` (Python literals, TOML values): `error`, `redact`;
//! - `host` (host lists): `error`, `literal`, `redact`;
//! - `pool`: `error`, `host`, `literal`, `redact`;
//! - `multi`: `error`, `literal`, `redact`;
//! - `names` (lookup, suggestions): only the generated `Field`, `OPTIONS` and `ALIASES`;
//! - `parse` (one value, typed for its option): `error`, `host`, `literal`, `names`,
//!   `redact`, and the `pool` and `multi` types;
//! - `display` (how each option is shown): `pool`, `multi`, `redact`;
//! - `validate`: `error`, `host`, `pool`, `multi`, `redact`;
//! - `sources` (files, environment, builder): `error`, `literal`, `names`, `parse`, `pool`,
//!   `multi`, `redact`;
//! - `serde_impl`: `host`, `parse`, `redact`.

#[macro_use]
mod options;

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

/// The most bytes read from a file the configuration names: the config file itself and the
/// TLS certificates and keys. None comes near it (Debian's whole CA bundle is about 200 KB),
/// and a path naming something that never ends (`/dev/zero`, a device, a pipe) or a huge
/// file by mistake must be a start-up error naming the option, not a read until memory runs
/// out.
pub(crate) const MAX_CONFIG_FILE_BYTES: u64 = 4 << 20;

/// The bytes of `path`, when it holds at most [`MAX_CONFIG_FILE_BYTES`]; an `InvalidData` error
/// otherwise, whose text the option's error shows.
pub(crate) fn read_bounded(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_CONFIG_FILE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_CONFIG_FILE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "it is larger, or never ends",
        ));
    }
    Ok(bytes)
}

pub use error::{ConfigError, ConfigErrorKind};
pub use multi::{BackendMode, MultiBackendConfig};
pub use pool::PoolMember;
pub use sources::{SessionConfigBuilder, CONFIG_FILE_VAR};

// For the backends' errors; a build with every backend compiled out has no user of them.
#[allow(unused_imports)]
pub(crate) use options::MAX_DB;
#[allow(unused_imports)]
pub(crate) use redact::{redact_url, shorten};
// For the plans' `Debug`, which hide secrets as `SessionConfig`'s does.
#[allow(unused_imports)]
pub(crate) use display::Secret;

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
///
/// `Display` and `Debug` show a host that holds an `@` with its password redacted: no host
/// name has one, and such a text is most likely a `redis://:password@host` URL set as a host
/// in code, which `validate` refuses but which may be shown before that.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HostPort {
    /// Host name or address (IPv6 without brackets).
    #[serde(serialize_with = "serde_impl::host")]
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
        let host = redact::redact_url(&self.host);
        if host.contains(':') {
            write!(f, "[{host}]")?;
        } else {
            f.write_str(&host)?;
        }
        match self.port {
            Some(p) => write!(f, ":{p}"),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostPort")
            .field("host", &redact::redact_url(&self.host))
            .field("port", &self.port)
            .finish()
    }
}

/// `session_redis_socket_keepalive_options`: the TCP keepalive knobs of a Python
/// `{socket.TCP_KEEPIDLE: 60, ...}` dict, by name. Applied with `socket_keepalive`. Serialized
/// with those names, as the option's parser reads them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct KeepaliveOptions {
    /// `TCP_KEEPIDLE` (4): idle seconds before the first probe.
    #[serde(skip_serializing_if = "Option::is_none", rename = "TCP_KEEPIDLE")]
    pub idle: Option<u32>,
    /// `TCP_KEEPINTVL` (5): seconds between probes.
    #[serde(skip_serializing_if = "Option::is_none", rename = "TCP_KEEPINTVL")]
    pub interval: Option<u32>,
    /// `TCP_KEEPCNT` (6): unanswered probes before the connection is dropped.
    #[serde(skip_serializing_if = "Option::is_none", rename = "TCP_KEEPCNT")]
    pub count: Option<u32>,
    /// `TCP_USER_TIMEOUT` (18): milliseconds unacknowledged data may wait.
    #[serde(skip_serializing_if = "Option::is_none", rename = "TCP_USER_TIMEOUT")]
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

// The struct, its `Default` and `Debug`, and everything else one option needs: see options.rs.
session_options!();

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
}
