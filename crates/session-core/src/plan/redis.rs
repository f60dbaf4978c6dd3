//! Redis plans: one deployment (standalone, Sentinel or Cluster) or a pool of servers.

use std::time::Duration;

use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo};

#[cfg(feature = "tls")]
use super::TlsPlan;
use crate::{
    config::{redact_url, KeepaliveOptions, Mode, Secret, MAX_DB},
    ConfigError, SessionConfig,
};

/// A reasonable pool size for code that wants a pool ([`Strategy::pool`]). Each pooled
/// connection is multiplexed, so a small pool already carries many concurrent requests; more
/// connections did not help in `docs/benchmarks.md`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16;

/// Response timeout when `socket_timeout` is not set. Long enough for a busy server, short
/// enough that a hung one turns into a 503 before clients give up on their own.
pub const DEFAULT_SOCKET_TIMEOUT: Duration = Duration::from_secs(5);

/// Connection timeout when `socket_connect_timeout` is not set. A refused connection fails at
/// once anyway; this bounds unanswered SYNs and a server too busy to complete the handshake.
pub const DEFAULT_SOCKET_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The Sentinel port, for sentinels given without one.
#[cfg(feature = "sentinel")]
pub const DEFAULT_SENTINEL_PORT: u16 = 26379;

/// How the backend talks to Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// A pool of up to `max_size` multiplexed connections (`max_connections`), each used by
    /// one operation at a time.
    Pool {
        /// Most connections open at once; at least 1.
        max_size: usize,
    },
    /// One shared, auto-reconnecting multiplexed connection: with
    /// `single_connection_client`, and the default without `max_connections`, because it
    /// measured fastest (`docs/benchmarks.md`).
    #[default]
    Single,
}

impl Strategy {
    /// A pool of [`DEFAULT_MAX_CONNECTIONS`].
    pub fn pool() -> Self {
        Strategy::Pool {
            max_size: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// How connections are made and used, every default applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionPlan {
    /// Pool or single connection (`max_connections`, `single_connection_client`).
    pub strategy: Strategy,
    /// How long to wait for an answer (`socket_timeout`).
    pub socket_timeout: Duration,
    /// How long to wait for a connection (`socket_connect_timeout`).
    pub connect_timeout: Duration,
    /// TCP keepalive (`socket_keepalive` with `socket_keepalive_options`): `None` leaves it
    /// off; `Some` turns it on, with the system's defaults for the unset knobs.
    pub keepalive: Option<KeepaliveOptions>,
    /// Retry a request once after a timeout (`retry_on_timeout`).
    pub retry_on_timeout: bool,
    /// `PING` a connection unused for longer than this before using it
    /// (`health_check_interval`); `None` never checks.
    pub health_check_interval: Option<Duration>,
    /// Sent with `CLIENT SETNAME` on every new connection (`client_name`).
    pub client_name: Option<String>,
}

impl Default for ConnectionPlan {
    fn default() -> Self {
        Self {
            strategy: Strategy::default(),
            socket_timeout: DEFAULT_SOCKET_TIMEOUT,
            connect_timeout: DEFAULT_SOCKET_CONNECT_TIMEOUT,
            keepalive: None,
            retry_on_timeout: false,
            health_check_interval: None,
            client_name: None,
        }
    }
}

/// One Redis deployment.
#[derive(Debug)]
#[non_exhaustive]
pub struct RedisPlan {
    /// Which servers.
    pub topology: Topology,
    /// How to connect to them.
    pub connection: ConnectionPlan,
    /// TLS, already read and checked (`ssl`, `rediss://`, `ssl_*`); `None` for plain TCP.
    #[cfg(feature = "tls")]
    pub tls: Option<TlsPlan>,
    /// Prepended to every session id to make the Redis key.
    pub prefix: String,
    /// `session_redis_index_key`: the session key whose values index sessions.
    pub index_key: Option<String>,
}

impl RedisPlan {
    /// One standalone server at `info` (address, credentials, db) with the default
    /// connection settings and prefix, for code that builds a backend without a
    /// configuration (tests, benchmarks):
    ///
    /// ```
    /// use redis::IntoConnectionInfo;
    /// use session_core::{backends::redis::RedisBackend, plan::{RedisPlan, Strategy}};
    ///
    /// let mut plan = RedisPlan::standalone("redis://127.0.0.1:6379".into_connection_info().unwrap());
    /// plan.connection.strategy = Strategy::pool();
    /// let backend = RedisBackend::from_plan(&plan).unwrap(); // connects nothing yet
    /// ```
    pub fn standalone(info: ConnectionInfo) -> Self {
        Self {
            topology: Topology::Standalone(info),
            connection: ConnectionPlan::default(),
            #[cfg(feature = "tls")]
            tls: None,
            prefix: "session:".into(),
            index_key: None,
        }
    }
}

/// Which servers: decided once, from `session_redis_mode`.
#[non_exhaustive]
pub enum Topology {
    /// One server: address, credentials and db, the URL's parts and the separate options
    /// already merged.
    Standalone(ConnectionInfo),
    /// The master (and replicas) that the sentinels report.
    #[cfg(feature = "sentinel")]
    Sentinel(SentinelPlan),
    /// A Redis Cluster, found from seed nodes.
    #[cfg(feature = "cluster")]
    Cluster(ClusterPlan),
}

/// The address only: a `ConnectionInfo` holds the password.
impl std::fmt::Debug for Topology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Topology::Standalone(info) => f
                .debug_tuple("Standalone")
                .field(&info.addr().to_string())
                .finish(),
            #[cfg(feature = "sentinel")]
            Topology::Sentinel(plan) => f.debug_tuple("Sentinel").field(plan).finish(),
            #[cfg(feature = "cluster")]
            Topology::Cluster(plan) => f.debug_tuple("Cluster").field(plan).finish(),
        }
    }
}

/// A user name and password. `Debug` never shows the password.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Auth {
    /// ACL user.
    pub username: Option<String>,
    /// Password (of the ACL user, or `AUTH`).
    pub password: Option<String>,
}

impl Auth {
    /// A user name without a password gets the empty password (see [`login_password`]).
    fn new(username: &Option<String>, password: &Option<String>) -> Self {
        Self {
            username: username.clone(),
            password: login_password(username.as_deref(), password.as_deref()),
        }
    }

    /// In redis-rs' form.
    pub fn info(&self) -> RedisConnectionInfo {
        let mut info = RedisConnectionInfo::default();
        if let Some(user) = &self.username {
            info = info.set_username(user);
        }
        if let Some(password) = &self.password {
            info = info.set_password(password);
        }
        info
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("username", &self.username)
            .field("password", &Secret(&self.password))
            .finish()
    }
}

/// Sentinel mode (`session_redis_mode = sentinel`).
#[cfg(feature = "sentinel")]
#[derive(Debug, Clone)]
pub struct SentinelPlan {
    /// The sentinels, ports defaulted to [`DEFAULT_SENTINEL_PORT`].
    pub sentinels: Vec<(String, u16)>,
    /// The name of the master they monitor (`session_redis_master`).
    pub master: String,
    /// What to tell the sentinels: `session_redis_sentinel_username`/`_password`, else the
    /// data nodes' credentials (as Odoo's `session_redis` passes the Redis options to the
    /// sentinels too).
    pub sentinel_auth: Auth,
    /// True when `sentinel_auth` is the data nodes' credentials used as a fallback: they are
    /// dropped for a sentinel that has no password.
    pub sentinel_auth_is_fallback: bool,
    /// Credentials of the master and replicas.
    pub node_auth: Auth,
    /// Database number on the master and replicas.
    pub db: i64,
    /// `session_redis_sentinel_read_from_replicas`.
    pub read_from_replicas: bool,
}

/// Cluster mode (`session_redis_mode = cluster`).
#[cfg(feature = "cluster")]
#[derive(Debug, Clone)]
pub struct ClusterPlan {
    /// Seed nodes, ports defaulted to `session_redis_port`.
    pub seeds: Vec<(String, u16)>,
    /// Credentials for every node.
    pub auth: Auth,
    /// `session_redis_cluster_read_from_replicas`.
    pub read_from_replicas: bool,
}

/// `session_redis_pool`.
#[derive(Debug)]
pub struct PoolPlan {
    /// The members, in configured order.
    pub members: Vec<PoolMemberPlan>,
}

/// One member of a [`PoolPlan`].
#[derive(Debug)]
pub struct PoolMemberPlan {
    /// Its stable identity, which routing hashes (see `PoolMember::identity`).
    pub identity: String,
    /// Its share of the sessions, relative to the others; ≥ 1.
    pub weight: u32,
    /// The member's server: the top-level options with its address, db and password.
    pub redis: RedisPlan,
}

/// The plan of a validated configuration in redis, sentinel or cluster mode.
pub(super) fn redis(config: &SessionConfig) -> Result<RedisPlan, ConfigError> {
    let topology = topology(config)?;
    let is_unix = matches!(&topology, Topology::Standalone(info) if matches!(info.addr(), ConnectionAddr::Unix(_)));
    Ok(RedisPlan {
        connection: connection(config, is_unix)?,
        #[cfg(feature = "tls")]
        tls: TlsPlan::from_config(config)?,
        prefix: config.prefix.clone(),
        index_key: None,
        topology,
    })
}

/// The plan of a validated configuration with `session_redis_pool`.
pub(super) fn pool(config: &SessionConfig) -> Result<PoolPlan, ConfigError> {
    let members = config
        .pool
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let redis = redis(&m.member_config(config)).map_err(|mut e| {
                e.key = format!("session_redis_pool[{i}].{}", e.key);
                e
            })?;
            Ok(PoolMemberPlan {
                identity: m.identity(config),
                weight: m.weight,
                redis,
            })
        })
        .collect::<Result<_, ConfigError>>()?;
    Ok(PoolPlan { members })
}

fn topology(config: &SessionConfig) -> Result<Topology, ConfigError> {
    if !cfg!(feature = "tls") {
        let url_tls = config.url.as_deref().is_some_and(|url| {
            let scheme = url
                .trim()
                .split_once("://")
                .map(|(s, _)| s.to_ascii_lowercase());
            matches!(scheme.as_deref(), Some("rediss" | "valkeys"))
        });
        if url_tls {
            let shown = redact_url(config.url.as_deref().unwrap_or_default());
            return Err(ConfigError::feature_disabled(
                "session_redis_url",
                &shown,
                "tls",
            ));
        }
        if config.ssl {
            return Err(ConfigError::feature_disabled(
                "session_redis_ssl",
                "True",
                "tls",
            ));
        }
    }
    match config.mode {
        #[cfg(feature = "sentinel")]
        Mode::Sentinel => Ok(Topology::Sentinel(sentinel(config))),
        #[cfg(not(feature = "sentinel"))]
        Mode::Sentinel => Err(ConfigError::feature_disabled(
            "session_redis_mode",
            "sentinel",
            "sentinel",
        )),
        #[cfg(feature = "cluster")]
        Mode::Cluster => Ok(Topology::Cluster(cluster(config))),
        #[cfg(not(feature = "cluster"))]
        Mode::Cluster => Err(ConfigError::feature_disabled(
            "session_redis_mode",
            "cluster",
            "cluster",
        )),
        Mode::Redis | Mode::Disabled => standalone(config).map(Topology::Standalone),
    }
}

#[cfg(feature = "sentinel")]
fn sentinel(config: &SessionConfig) -> SentinelPlan {
    let explicit = config.sentinel_username.is_some() || config.sentinel_password.is_some();
    SentinelPlan {
        sentinels: config
            .host
            .iter()
            .map(|hp| (hp.host.clone(), hp.port.unwrap_or(DEFAULT_SENTINEL_PORT)))
            .collect(),
        // `validate` insists on a non-blank name in sentinel mode.
        master: config
            .master
            .as_deref()
            .unwrap_or_default()
            .trim()
            .to_owned(),
        sentinel_auth: if explicit {
            Auth::new(&config.sentinel_username, &config.sentinel_password)
        } else {
            Auth::new(&config.username, &config.password)
        },
        sentinel_auth_is_fallback: !explicit,
        node_auth: Auth::new(&config.username, &config.password),
        db: config.db,
        read_from_replicas: config.sentinel_read_from_replicas,
    }
}

#[cfg(feature = "cluster")]
fn cluster(config: &SessionConfig) -> ClusterPlan {
    if config.retry_on_timeout || config.single_connection_client {
        tracing::info!(
            "session_redis_retry_on_timeout and session_redis_single_connection_client have \
             no effect in cluster mode: the cluster client shares one connection per node \
             and retries by itself"
        );
    }
    ClusterPlan {
        seeds: config
            .host
            .iter()
            .map(|hp| (hp.host.clone(), hp.port_or(config.port)))
            .collect(),
        auth: Auth::new(&config.username, &config.password),
        read_from_replicas: config.cluster_read_from_replicas,
    }
}

/// The standalone server's address and credentials: `url`, else `unix_socket_path`, else the
/// one host (`localhost` when none). `username`, `password` and a non-zero `db` given as
/// separate options override the URL's parts (docs/configuration.md, "URL rule"), so a
/// password can come from a secret store while the URL stays in a file. `db` has no "unset"
/// state, so only a non-zero db overrides the URL's.
fn standalone(config: &SessionConfig) -> Result<ConnectionInfo, ConfigError> {
    let auth = Auth::new(&config.username, &config.password);
    let Some(url) = &config.url else {
        let addr = match (&config.unix_socket_path, config.host.first()) {
            (Some(path), _) => ConnectionAddr::Unix(path.clone()),
            (None, Some(hp)) => ConnectionAddr::Tcp(hp.host.clone(), hp.port_or(config.port)),
            (None, None) => ConnectionAddr::Tcp("localhost".into(), config.port),
        };
        let info = addr.into_connection_info().map_err(|err| {
            ConfigError::unsupported("session_redis_host", &addr_shown(config), &err.to_string())
        })?;
        check_socket_path(&info, "session_redis_unix_socket_path", || {
            config
                .unix_socket_path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        })?;
        return Ok(info.set_redis_settings(auth.info().set_db(config.db)));
    };
    let shown = redact_url(url);
    let parsed = redis::parse_redis_url(url).ok_or_else(|| {
        ConfigError::unsupported(
            "session_redis_url",
            &shown,
            "a redis://host:port/db, rediss://host:port/db or unix:///path/to/socket URL",
        )
    })?;
    let info = parsed
        .into_connection_info()
        .map_err(|err| ConfigError::unsupported("session_redis_url", &shown, &err.to_string()))?;
    check_socket_path(&info, "session_redis_url", || shown.clone())?;
    let mut merged = info.redis_settings().clone();
    if let Some(username) = &config.username {
        merged = merged.set_username(username);
    }
    if let Some(password) = &config.password {
        merged = merged.set_password(password);
    }
    if config.db != 0 {
        merged = merged.set_db(config.db);
    }
    if let Some(password) = login_password(merged.username(), merged.password()) {
        merged = merged.set_password(password);
    }
    // The bounds of session_redis_port and session_redis_db, which redis-rs does not check
    // in a URL: port 0 is refused like a server that is down, and a db out of range fails
    // every connection's SELECT, both for as long as the process runs.
    if let ConnectionAddr::Tcp(_, 0) | ConnectionAddr::TcpTls { port: 0, .. } = info.addr() {
        return Err(ConfigError::invalid(
            "session_redis_url",
            &shown,
            "a URL with a port from 1 to 65535 (or none, for 6379)",
        ));
    }
    if !(0..=MAX_DB).contains(&merged.db()) {
        return Err(ConfigError::invalid(
            "session_redis_url",
            &shown,
            &format!(
                "a URL with a db from 0 to {MAX_DB} (the path of redis://host/db, the db= of a unix:// URL)"
            ),
        ));
    }
    Ok(info.set_redis_settings(merged))
}

/// The password to send: `password`, or the empty one for a user named without one.
/// redis-rs sends `AUTH` only with a password, so a user name alone (an ACL user created
/// `nopass`, or `redis://user@host`) was dropped without a word and every connection stayed
/// on the `default` user, which may do far more. `AUTH user ""` logs a `nopass` user in and
/// is refused for any other, which fails as a wrong password would.
fn login_password(username: Option<&str>, password: Option<&str>) -> Option<String> {
    match (username, password) {
        (_, Some(password)) => Some(password.to_owned()),
        (Some(_), None) => Some(String::new()),
        (None, None) => None,
    }
}

/// A unix socket path that no socket address can hold (longer than `sun_path`: 107 bytes on
/// Linux, or holding a NUL byte) fails every connection with the same error for ever: refused
/// here, where the option can be named, rather than met as an outage on every request.
fn check_socket_path(
    info: &ConnectionInfo,
    key: &str,
    shown: impl FnOnce() -> String,
) -> Result<(), ConfigError> {
    #[cfg(unix)]
    if let ConnectionAddr::Unix(path) = info.addr() {
        if std::os::unix::net::SocketAddr::from_pathname(path).is_err() {
            let bytes = path.as_os_str().len();
            let why = if std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()).contains(&0) {
                "a socket path without NUL bytes".to_owned()
            } else {
                format!(
                    "a socket path of at most 107 bytes (103 on macOS), what a unix socket address holds; this one has {bytes} bytes: use a shorter path, such as a link to the socket"
                )
            };
            return Err(ConfigError::invalid(key, &shown(), &why));
        }
    }
    #[cfg(not(unix))]
    let _ = (info, key, shown);
    Ok(())
}

fn addr_shown(config: &SessionConfig) -> String {
    config
        .host
        .first()
        .map(ToString::to_string)
        .unwrap_or_else(|| "localhost".into())
}

/// The connection settings, defaults applied. `validate` has checked every number; what is
/// left are the rules that need the address (keepalive on a unix socket) or that only this
/// crate has (Redis' rule for client names).
fn connection(config: &SessionConfig, is_unix: bool) -> Result<ConnectionPlan, ConfigError> {
    let keepalive = if config.socket_keepalive {
        if is_unix {
            return Err(ConfigError::unsupported(
                "session_redis_socket_keepalive",
                "True",
                "a TCP connection: TCP keepalive has no meaning on a unix socket",
            ));
        }
        Some(config.socket_keepalive_options.unwrap_or_default())
    } else {
        None
    };
    if let Some(name) = &config.client_name {
        // Redis refuses names with spaces or newlines; an empty one would clear the name.
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_graphic()) {
            return Err(ConfigError::unsupported(
                "session_redis_client_name",
                name,
                "a non-empty name of printable ASCII characters without spaces (Redis' rule for CLIENT SETNAME)",
            ));
        }
    }
    Ok(ConnectionPlan {
        strategy: match (config.single_connection_client, config.max_connections) {
            (false, Some(max_size)) => Strategy::Pool { max_size },
            _ => Strategy::Single,
        },
        socket_timeout: config
            .socket_timeout
            .map_or(DEFAULT_SOCKET_TIMEOUT, seconds),
        connect_timeout: config
            .socket_connect_timeout
            .map_or(DEFAULT_SOCKET_CONNECT_TIMEOUT, seconds),
        keepalive,
        retry_on_timeout: config.retry_on_timeout,
        health_check_interval: config
            .health_check_interval
            .filter(|s| *s > 0.0)
            .map(seconds),
        client_name: config.client_name.clone(),
    })
}

/// A duration of seconds already checked by `validate` (finite, positive, bounded).
fn seconds(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX)
}
