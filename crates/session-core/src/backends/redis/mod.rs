//! Redis backend: standalone, sentinel ([`RedisBackend::sentinel_from_config`]) and cluster
//! ([`RedisBackend::cluster_from_config`], `docs/cluster.md`) modes.
//!
//! # Layout
//! One Redis hash per session at key `prefix + id`: one field per session key, holding the JSON
//! text of its value. Field-level writes (`HSET`/`HDEL`) are what let two concurrent requests
//! that change different keys of one session both keep their change.
//!
//! # One round trip per operation
//! | operation | sent |
//! |---|---|
//! | load | `HGETALL` (pipelined with `PEXPIRE` when touching) |
//! | create | script: if the key is absent, `HSET` + `PEXPIRE` |
//! | replace | script: if the session exists, `DEL` + `HSET` (+ `PEXPIRE`) |
//! | apply | script: if the session exists, `HDEL` + `HSET` (+ `PEXPIRE`) |
//! | touch | `PEXPIRE`, or a script `PERSIST` when the TTL is `None` |
//! | delete | `DEL` |
//!
//! Scripts go by hash (`EVALSHA`); only after a server restart or `SCRIPT FLUSH` does the first
//! call of each script cost one more round trip to load it.
//!
//! # Connections
//! Nothing connects at construction. Two strategies:
//!
//! * one multiplexed connection shared by every task, made on first use and remade by the
//!   next call after it broke: with `single_connection_client = true`, and also **the
//!   default** when `max_connections` is not set (it measured about twice the throughput of a
//!   pool at 16 and 64 concurrent tasks and the same at 1; see `docs/benchmarks.md`);
//! * a [deadpool] pool of `max_connections` multiplexed connections, each used by
//!   one operation at a time, when `max_connections` is set (and `single_connection_client`
//!   is not). [`Strategy::default`] is the single connection, as with the configuration.
//!
//! # TLS
//! A `rediss://host:port/db` URL, or `ssl = true` with host/port, connects over TLS (rustls,
//! with the `ring` provider, which is installed as the process default unless the application
//! installed one first). The server certificate is checked against the **system's** trusted
//! roots (the OS store, read through `rustls-native-certs` when the first connection is made),
//! or only against the CAs of `ssl_ca_certs`/`ssl_ca_path`/`ssl_ca_data` when any is set, and
//! must name `host` unless `ssl_check_hostname` is false. `ssl_certfile`/`ssl_keyfile` (with
//! `ssl_password` for an encrypted PKCS#8 key) add a client certificate. Every file is read
//! in [`RedisBackend::from_config`]. A server whose certificate is not trusted fails every
//! operation with [`StoreError::Unavailable`] (`invalid peer certificate: UnknownIssuer`, ...).
//! `docs/configuration.md` details each option.
//!
//! `rediss://host:port/#insecure` (as redis-rs reads it) turns certificate **and** host name
//! checks off: the traffic is encrypted but anyone in between can read it. For tests against
//! a server with a throwaway certificate only.
//!
//! Every new connection (pooled or single, first or after a reconnect) gets `CLIENT SETNAME`
//! when `client_name` is set. A request that finds its connection dropped or refused, or gets
//! `READONLY`, is retried once on a fresh connection; with `retry_on_timeout`, one that timed
//! out too. Every operation is idempotent, so a retry whose first attempt did run changes
//! nothing: `create` answers "created" again when the key holds exactly what it writes (see
//! `scripts.rs`). With `health_check_interval`, a connection unused for longer than the
//! interval is `PING`ed before use and replaced if that fails; a busy one never is.
//!
//! A server that is down makes operations fail at once with [`StoreError::Unavailable`]; a hung
//! one after `socket_timeout` (default [`DEFAULT_SOCKET_TIMEOUT`]). The same backend works
//! again as soon as the server is back.

mod cluster;
mod connection;
mod scripts;
pub mod sentinel;
mod tls;

use std::{collections::HashMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use redis::{
    ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo, RedisError, Value,
};

use self::cluster::Cluster;
pub use self::cluster::CLUSTER_RETRIES;
use self::connection::{Connector, Options, Request, Target};
use self::sentinel::Sentinel;
use crate::{
    config::{KeepaliveOptions, Mode},
    state::check_values_are_json,
    BackendHealth, Changes, ConfigError, SessionBackend, SessionConfig, SessionId, SessionState,
    StoreError,
};

/// The name this backend reports in errors and health checks.
const NAME: &str = "redis";

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

/// How the backend talks to Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// A pool of up to `max_size` multiplexed connections (`max_connections`).
    Pool {
        /// Most connections open at once; at least 1.
        max_size: usize,
    },
    /// One shared, auto-reconnecting multiplexed connection (`single_connection_client`).
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

/// The single shared connection: the default of the configuration too (`max_connections`
/// unset), because it measured fastest.
impl Default for Strategy {
    fn default() -> Self {
        Strategy::Single
    }
}

/// Everything but the address and credentials: for building a backend without a
/// [`SessionConfig`], in tests and benchmarks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSettings {
    /// Prepended to every session id to make the Redis key.
    pub prefix: String,
    /// The connection strategy.
    pub strategy: Strategy,
    /// How long to wait for an answer (`socket_timeout`).
    pub socket_timeout: Duration,
    /// How long to wait for a connection (`socket_connect_timeout`).
    pub connect_timeout: Duration,
    /// TCP keepalive (`socket_keepalive` with `socket_keepalive_options`): `None` leaves it
    /// off; `Some` turns it on, with the system's defaults for the unset knobs. No effect on
    /// unix sockets (`from_config` rejects the combination).
    pub keepalive: Option<KeepaliveOptions>,
    /// Retry a request once after a timeout (`retry_on_timeout`).
    pub retry_on_timeout: bool,
    /// `PING` a connection unused for longer than this before using it
    /// (`health_check_interval`); `None` never checks.
    pub health_check_interval: Option<Duration>,
    /// Set with `CLIENT SETNAME` on every new connection (`client_name`).
    pub client_name: Option<String>,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            prefix: "session:".into(),
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

/// Sessions in one Redis server (or one Redis-protocol server such as Valkey).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use session_core::{backends::redis::RedisBackend, SessionConfig, SessionStore};
///
/// let config = SessionConfig {
///     url: Some("redis://127.0.0.1:6379/0".into()),
///     ..SessionConfig::default()
/// };
/// let store = SessionStore::new(RedisBackend::from_config(&config)?);
/// # Ok(()) }
/// ```
pub struct RedisBackend {
    connector: Connector,
    /// Replica reads in sentinel mode (`sentinel_read_from_replicas`).
    read_connector: Option<Connector>,
    /// The resolver, in sentinel mode.
    sentinel: Option<Arc<Sentinel>>,
    /// The cluster client, in cluster mode.
    cluster: Option<Arc<Cluster>>,
    strategy: Strategy,
    prefix: String,
    location: String,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("location", &self.location)
            .field("prefix", &self.prefix)
            .field("strategy", &self.strategy)
            .finish_non_exhaustive()
    }
}

impl RedisBackend {
    /// Builds the backend from the `session_redis_*` options: `url` (`redis://`, `unix://`,
    /// or `rediss://` for TLS, see the [module docs](self#tls)), else `unix_socket_path`, else `host`/`port`; plus
    /// `username`, `password`, `db`, the two timeouts, `max_connections`,
    /// `single_connection_client`, `socket_keepalive` (+ options), `retry_on_timeout`,
    /// `health_check_interval`, `client_name` and `prefix`.
    ///
    /// `username`, `password` and a non-zero `db` given as separate options override the
    /// URL's parts. Nothing is connected here.
    ///
    /// Strategy: `single_connection_client = true`, or `max_connections` unset, gives one
    /// shared multiplexed connection (the faster one, see the [module docs](self));
    /// `max_connections = n` alone gives a pool of `n` connections.
    ///
    /// In sentinel mode (`session_redis_mode = sentinel`) the backend follows the master the
    /// sentinels report: see [`RedisBackend::sentinel_from_config`].
    pub fn from_config(config: &SessionConfig) -> Result<Self, ConfigError> {
        match config.mode {
            Mode::Sentinel => return Self::sentinel_from_config(config),
            Mode::Cluster => return Self::cluster_from_config(config),
            Mode::Redis | Mode::Disabled => {}
        }
        let tls = tls::TlsSettings::from_config(config)?;
        let info = connection_info(config)?;
        let is_unix = matches!(info.addr(), ConnectionAddr::Unix(_));
        Self::build(info, settings(config, is_unix)?, tls.as_ref())
    }

    /// The sentinel-mode backend: `session_redis_host` lists the sentinels (a port-less host
    /// means port 26379), `session_redis_master` names the master. Every other option applies
    /// as in standalone mode, to the connections to the master (and replicas); `username`,
    /// `password` and the timeouts also apply to the sentinels unless
    /// `session_redis_sentinel_username`/`_password` are set (see
    /// [the sentinel module](sentinel)).
    ///
    /// The master is resolved on the first operation and cached. A `READONLY` reply, or a
    /// dropped or refused connection, makes the next connection resolve it again, and the
    /// operation is retried once (on the new master when the failover is done). Sentinel
    /// events (`+promoted-slave`, `+switch-master`) switch the master at once, and drop the
    /// connections to the former one before they are used again.
    ///
    /// With `session_redis_sentinel_read_from_replicas`, loads that do not touch the expiry
    /// are sent to a healthy replica: a load right after a write may not see it yet.
    /// `health()` reports every sentinel and the master.
    pub fn sentinel_from_config(config: &SessionConfig) -> Result<Self, ConfigError> {
        let settings = settings(config, false)?;
        let tls = tls::TlsSettings::from_config(config)?;
        if tls.is_some() {
            install_crypto_provider();
        }
        let tcp = settings.keepalive.map(tcp_settings);
        // The same TLS and socket settings for the sentinels and the data nodes, as seed 000
        // passes the Redis options to both.
        let make_client: sentinel::MakeClient = Box::new(move |host, port, redis| {
            let info = ConnectionAddr::Tcp(host.to_string(), port)
                .into_connection_info()?
                .set_redis_settings(redis);
            let info = match &tcp {
                Some(tcp) => info.set_tcp_settings(tcp.clone()),
                None => info,
            };
            match &tls {
                Some(tls) => tls.build_client(info),
                None => redis::Client::open(info),
            }
        });
        let resolver = Arc::new(Sentinel::new(
            config,
            make_client,
            settings.connect_timeout,
            settings.socket_timeout,
        )?);
        let options = options(&settings);
        let connector = |target| match settings.strategy {
            Strategy::Pool { max_size } => Connector::pool(target, &options, max_size.max(1)),
            Strategy::Single => Connector::single(target, &options),
        };
        Ok(Self {
            connector: connector(Target::SentinelMaster(Arc::clone(&resolver))),
            read_connector: config
                .sentinel_read_from_replicas
                .then(|| connector(Target::SentinelReplica(Arc::clone(&resolver)))),
            strategy: settings.strategy,
            prefix: settings.prefix,
            location: resolver.location(),
            sentinel: Some(resolver),
            cluster: None,
        })
    }
}

impl RedisBackend {
    /// The cluster-mode backend (`session_redis_mode = cluster`): `session_redis_host` lists
    /// seed nodes (a port-less host takes `session_redis_port`); the rest of the cluster is
    /// discovered from them. `username`, `password`, the two timeouts, keepalive and the TLS
    /// options apply to every node; `session_redis_cluster_read_from_replicas` sends loads
    /// that do not touch the expiry to replicas.
    ///
    /// One multiplexed connection per node carries every request; redis-rs follows
    /// `MOVED`/`ASK`, refreshes the slot map and reconnects by itself, retrying a request up
    /// to [`CLUSTER_RETRIES`] times within `socket_timeout` in total. A request to slots
    /// whose master is down fails with [`StoreError::Unavailable`] until the master is back
    /// or a replica took over; the backend needs no rebuilding.
    ///
    /// [`SessionConfig::validate`] rejects what a cluster cannot do: `db` other than 0,
    /// `client_name`, `max_connections`, `health_check_interval` (see `docs/cluster.md`).
    /// `single_connection_client` and `retry_on_timeout` are accepted with no effect: there
    /// is always one shared connection per node, and redis-rs retries by itself. Nothing is
    /// connected here.
    pub fn cluster_from_config(config: &SessionConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let settings = settings(config, false)?;
        if settings.retry_on_timeout || config.single_connection_client {
            tracing::info!(
                "session_redis_retry_on_timeout and session_redis_single_connection_client have \
                 no effect in cluster mode: the cluster client shares one connection per node \
                 and retries by itself"
            );
        }
        let tls = tls::TlsSettings::from_config(config)?;
        let cluster = Arc::new(Cluster::from_config(config, &settings, tls.as_ref())?);
        Ok(Self {
            connector: Connector::Cluster(Arc::clone(&cluster)),
            read_connector: None,
            sentinel: None,
            strategy: Strategy::Single,
            prefix: settings.prefix,
            location: cluster.location(),
            cluster: Some(cluster),
        })
    }
}

/// The settings every mode shares.
fn settings(config: &SessionConfig, is_unix: bool) -> Result<RedisSettings, ConfigError> {
    {
        let settings = RedisSettings {
            prefix: config.prefix.clone(),
            strategy: match (config.single_connection_client, config.max_connections) {
                (true, _) | (false, None) => Strategy::Single,
                (false, Some(0)) => {
                    return Err(ConfigError::unsupported(
                        "session_redis_max_connections",
                        "0",
                        "a pool size of at least 1",
                    ))
                }
                (false, Some(max_size)) => Strategy::Pool { max_size },
            },
            socket_timeout: timeout(
                "session_redis_socket_timeout",
                config.socket_timeout,
                DEFAULT_SOCKET_TIMEOUT,
            )?,
            connect_timeout: timeout(
                "session_redis_socket_connect_timeout",
                config.socket_connect_timeout,
                DEFAULT_SOCKET_CONNECT_TIMEOUT,
            )?,
            keepalive: keepalive(config, is_unix)?,
            retry_on_timeout: config.retry_on_timeout,
            health_check_interval: health_check_interval(config.health_check_interval)?,
            client_name: client_name(config.client_name.as_deref())?,
        };
        Ok(settings)
    }
}

fn options(settings: &RedisSettings) -> Options {
    Options {
        connect_timeout: settings.connect_timeout,
        response_timeout: settings.socket_timeout,
        client_name: settings.client_name.clone(),
        retry_on_timeout: settings.retry_on_timeout,
        health_check_interval: settings.health_check_interval,
    }
}

impl RedisBackend {
    /// Builds the backend from explicit connection information, such as
    /// `"redis://127.0.0.1:6379".into_connection_info()`, or a `rediss://` one for TLS.
    /// Nothing is connected here.
    pub fn new(info: ConnectionInfo, settings: RedisSettings) -> Result<Self, ConfigError> {
        Self::build(info, settings, None)
    }

    fn build(
        info: ConnectionInfo,
        settings: RedisSettings,
        tls: Option<&tls::TlsSettings>,
    ) -> Result<Self, ConfigError> {
        let info = match settings.keepalive {
            Some(options) => info.set_tcp_settings(tcp_settings(options)),
            None => info,
        };
        // `ssl = True` turns a host/port address into a TLS one.
        let info = match tls {
            Some(tls) => tls.tls_info(info),
            None => info,
        };
        let location = match info.addr() {
            ConnectionAddr::TcpTls { insecure, .. } => {
                install_crypto_provider();
                let fragment = if *insecure { "/#insecure" } else { "" };
                format!("rediss://{}{fragment}", info.addr())
            }
            addr => addr.to_string(),
        };
        let client = match tls {
            Some(tls) => tls.build_client(info),
            None => redis::Client::open(info),
        }
        .map_err(|err| {
            ConfigError::unsupported("session_redis_url", &location, &err.to_string())
        })?;
        let options = options(&settings);
        let target = Target::Fixed(Box::new(client));
        let connector = match settings.strategy {
            Strategy::Pool { max_size } => Connector::pool(target, &options, max_size.max(1)),
            Strategy::Single => Connector::single(target, &options),
        };
        Ok(Self {
            connector,
            read_connector: None,
            strategy: settings.strategy,
            prefix: settings.prefix,
            location,
            sentinel: None,
            cluster: None,
        })
    }

    /// The connection strategy in use.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// Where the server is (`host:port`, `rediss://host:port` for TLS, or a socket path),
    /// without credentials.
    pub fn location(&self) -> &str {
        &self.location
    }

    fn key(&self, id: &SessionId) -> String {
        format!("{}{}", self.prefix, id.as_str())
    }

    async fn run<T: redis::FromRedisValue>(&self, request: Request<'_>) -> Result<T, StoreError> {
        self.connector
            .run(&request)
            .await
            .map_err(|err| self.error(&err))
    }

    /// Like `run`, on a replica when replica reads are on: for requests that only read.
    async fn run_read<T: redis::FromRedisValue>(
        &self,
        request: Request<'_>,
    ) -> Result<T, StoreError> {
        self.read_connector
            .as_ref()
            .unwrap_or(&self.connector)
            .run(&request)
            .await
            .map_err(|err| self.error(&err))
    }

    fn error(&self, err: &RedisError) -> StoreError {
        match StoreError::from_redis(NAME, err) {
            StoreError::Unavailable {
                backend,
                timed_out,
                message,
            } => {
                let hint = if message.contains("invalid peer certificate") {
                    // The one TLS failure an operator can act on without reading our docs.
                    " (the server's certificate must be valid for the host name \
                     (session_redis_ssl_check_hostname) and signed by a trusted CA: the \
                     system's roots, or those of session_redis_ssl_ca_certs, ssl_ca_path and \
                     ssl_ca_data when any is set)"
                } else if message.contains("CertificateRequired") {
                    " (the server requires a client certificate: set \
                     session_redis_ssl_certfile and session_redis_ssl_keyfile)"
                } else if message.contains("received fatal alert") {
                    " (the server refused the TLS handshake: is the client certificate of \
                     session_redis_ssl_certfile signed by a CA the server trusts?)"
                } else if self.cluster.is_some() {
                    cluster::hint(err)
                } else {
                    ""
                };
                StoreError::Unavailable {
                    backend,
                    timed_out,
                    message: format!("{}: {message}{hint}", self.location),
                }
            }
            other => other,
        }
    }

    async fn conditional_write(
        &self,
        script: &redis::Script,
        id: &SessionId,
        ttl: Option<Duration>,
        args: impl FnOnce(&mut redis::ScriptInvocation<'_>),
    ) -> Result<bool, StoreError> {
        let mut invocation = script.key(self.key(id));
        invocation.arg(ttl_arg(ttl));
        args(&mut invocation);
        let written: i64 = self.run(Request::Script(invocation)).await?;
        Ok(written == 1)
    }
}

#[async_trait]
impl SessionBackend for RedisBackend {
    async fn load(
        &self,
        id: &SessionId,
        touch: Option<Duration>,
    ) -> Result<Option<SessionState>, StoreError> {
        let key = self.key(id);
        let mut pipe = redis::pipe();
        pipe.cmd("HGETALL").arg(&key);
        if let Some(ttl) = touch {
            pipe.cmd("PEXPIRE").arg(&key).arg(millis(ttl)).ignore();
        }
        let (fields,): (Value,) = if touch.is_some() {
            self.run(Request::Pipe(pipe)).await?
        } else {
            self.run_read(Request::Pipe(pipe)).await?
        };
        let state = parse_hash(fields)?;
        if state.is_empty() {
            return Ok(None);
        }
        check_values_are_json(&state).map_err(corrupt)?;
        Ok(Some(state))
    }

    async fn create(
        &self,
        id: &SessionId,
        state: &SessionState,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.conditional_write(&scripts::CREATE_SCRIPT, id, ttl, |inv| {
            push_pairs(inv, state.iter());
        })
        .await
    }

    async fn replace(
        &self,
        id: &SessionId,
        state: &SessionState,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.conditional_write(&scripts::REPLACE_SCRIPT, id, ttl, |inv| {
            push_pairs(inv, state.iter());
        })
        .await
    }

    async fn apply(
        &self,
        id: &SessionId,
        changes: &Changes,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.conditional_write(&scripts::APPLY_SCRIPT, id, ttl, |inv| {
            inv.arg(changes.remove.len());
            for field in &changes.remove {
                inv.arg(field);
            }
            push_pairs(inv, changes.set.iter());
        })
        .await
    }

    async fn touch(&self, id: &SessionId, ttl: Option<Duration>) -> Result<bool, StoreError> {
        let existed: i64 = match ttl {
            Some(ttl) => {
                let mut pipe = redis::pipe();
                pipe.cmd("PEXPIRE").arg(self.key(id)).arg(millis(ttl));
                let (set,): (i64,) = self.run(Request::Pipe(pipe)).await?;
                set
            }
            None => {
                self.run(Request::Script(scripts::PERSIST_SCRIPT.key(self.key(id))))
                    .await?
            }
        };
        Ok(existed == 1)
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        let mut pipe = redis::pipe();
        pipe.cmd("DEL").arg(self.key(id));
        let (deleted,): (i64,) = self.run(Request::Pipe(pipe)).await?;
        Ok(deleted > 0)
    }

    async fn health(&self) -> Vec<BackendHealth> {
        if let Some(sentinel) = &self.sentinel {
            return sentinel.health(NAME).await;
        }
        if let Some(cluster) = &self.cluster {
            return cluster.health(NAME).await;
        }
        let mut pipe = redis::pipe();
        pipe.cmd("PING");
        let result: Result<(String,), StoreError> = self.run(Request::Pipe(pipe)).await;
        vec![BackendHealth {
            name: NAME.into(),
            location: self.location.clone(),
            up: result.is_ok(),
            error: result.err().map(|err| err.to_string()),
        }]
    }

    fn name(&self) -> &str {
        NAME
    }
}

fn corrupt(detail: String) -> StoreError {
    StoreError::Corrupt {
        backend: NAME.into(),
        detail,
    }
}

/// Milliseconds for `PEXPIRE`, never 0 (which would delete the key at once).
/// A TTL in milliseconds for `PEXPIRE`, capped at 100 years: Redis refuses an expiry whose
/// absolute time overflows, and a framework may hand over an absurdly long TTL.
fn millis(ttl: Duration) -> u64 {
    const MAX_MS: u64 = crate::config::MAX_KEY_EXPIRE_SECS * 1000;
    u64::try_from(ttl.as_millis())
        .unwrap_or(MAX_MS)
        .clamp(1, MAX_MS)
}

/// The scripts' `ARGV[1]`: expiry in milliseconds, 0 for none.
fn ttl_arg(ttl: Option<Duration>) -> u64 {
    ttl.map_or(0, millis)
}

fn push_pairs<'a>(
    invocation: &mut redis::ScriptInvocation<'_>,
    pairs: impl Iterator<Item = (&'a String, &'a String)>,
) {
    for (field, value) in pairs {
        invocation.arg(field).arg(value);
    }
}

/// Reads an `HGETALL` reply (a flat array in RESP2, a map in RESP3) into a session, insisting
/// on UTF-8 text. Other replies mean the library and server disagree: reported as corrupt data
/// rather than a panic.
fn parse_hash(value: Value) -> Result<SessionState, StoreError> {
    let pairs: Vec<(Value, Value)> = match value {
        Value::Nil => Vec::new(),
        Value::Map(pairs) => pairs,
        Value::Array(items) => {
            if items.len() % 2 != 0 {
                return Err(corrupt("HGETALL returned an odd number of items".into()));
            }
            let mut items = items.into_iter();
            let mut pairs = Vec::new();
            while let (Some(field), Some(value)) = (items.next(), items.next()) {
                pairs.push((field, value));
            }
            pairs
        }
        _ => {
            return Err(corrupt(
                "HGETALL returned something other than a hash".into(),
            ))
        }
    };
    let mut state = HashMap::with_capacity(pairs.len());
    for (field, value) in pairs {
        let field =
            text(field).ok_or_else(|| corrupt("a session key name is not UTF-8 text".into()))?;
        let value = text(value).ok_or_else(|| {
            corrupt(format!(
                "the value of session key `{field}` is not UTF-8 text"
            ))
        })?;
        state.insert(field, value);
    }
    Ok(state)
}

fn text(value: Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes).ok(),
        Value::SimpleString(text) => Some(text),
        _ => None,
    }
}

fn timeout(key: &str, seconds: Option<f64>, default: Duration) -> Result<Duration, ConfigError> {
    match seconds {
        None => Ok(default),
        Some(s) => Duration::try_from_secs_f64(s)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                ConfigError::unsupported(key, &s.to_string(), "a number of seconds above 0")
            }),
    }
}

/// `socket_keepalive` and its options. The options alone are an error rather than ignored (as
/// redis-py does): whoever wrote them expects keepalive.
fn keepalive(
    config: &SessionConfig,
    is_unix: bool,
) -> Result<Option<KeepaliveOptions>, ConfigError> {
    let options = config.socket_keepalive_options.unwrap_or_default();
    if !config.socket_keepalive {
        if options.is_empty() {
            return Ok(None);
        }
        return Err(ConfigError::unsupported(
            "session_redis_socket_keepalive_options",
            &options.to_string(),
            "session_redis_socket_keepalive = True alongside: the options only tune keepalive, \
             which is off",
        ));
    }
    if is_unix {
        return Err(ConfigError::unsupported(
            "session_redis_socket_keepalive",
            "True",
            "a TCP connection: TCP keepalive has no meaning on a unix socket",
        ));
    }
    Ok(Some(options))
}

/// The socket options redis-rs applies to every TCP connection it opens.
fn tcp_settings(options: KeepaliveOptions) -> redis::io::tcp::TcpSettings {
    let mut keepalive = redis::io::tcp::socket2::TcpKeepalive::new();
    if let Some(idle) = options.idle {
        keepalive = keepalive.with_time(Duration::from_secs(idle.into()));
    }
    if let Some(interval) = options.interval {
        keepalive = keepalive.with_interval(Duration::from_secs(interval.into()));
    }
    if let Some(count) = options.count {
        keepalive = keepalive.with_retries(count);
    }
    let settings = redis::io::tcp::TcpSettings::default().set_keepalive(keepalive);
    match options.user_timeout {
        Some(ms) => settings.set_user_timeout(Duration::from_millis(ms.into())),
        None => settings,
    }
}

fn health_check_interval(seconds: Option<f64>) -> Result<Option<Duration>, ConfigError> {
    match seconds {
        None => Ok(None),
        Some(0.0) => Ok(None),
        Some(s) => Duration::try_from_secs_f64(s).map(Some).map_err(|_| {
            ConfigError::unsupported(
                "session_redis_health_check_interval",
                &s.to_string(),
                "a number of seconds, 0 or more (0: no checks)",
            )
        }),
    }
}

/// Redis refuses names with spaces or newlines; an empty one would clear the name.
fn client_name(name: Option<&str>) -> Result<Option<String>, ConfigError> {
    match name {
        None => Ok(None),
        Some(name) if !name.is_empty() && name.chars().all(|c| c.is_ascii_graphic()) => {
            Ok(Some(name.to_owned()))
        }
        Some(name) => Err(ConfigError::unsupported(
            "session_redis_client_name",
            name,
            "a non-empty name of printable ASCII characters without spaces (Redis' rule for CLIENT SETNAME)",
        )),
    }
}

/// Makes sure rustls has a crypto provider: redis-rs builds its TLS configuration with the
/// process default one, and pulls rustls in without choosing any. An application that
/// installed its own provider keeps it (the `Err` of `install_default` says just that).
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn connection_info(config: &SessionConfig) -> Result<ConnectionInfo, ConfigError> {
    if config.db < 0 {
        return Err(ConfigError::unsupported(
            "session_redis_db",
            &config.db.to_string(),
            "a database number of 0 or more",
        ));
    }
    let mut redis = RedisConnectionInfo::default();
    if let Some(username) = &config.username {
        redis = redis.set_username(username);
    }
    if let Some(password) = &config.password {
        redis = redis.set_password(password);
    }
    redis = redis.set_db(config.db);

    let Some(url) = &config.url else {
        let addr = if let Some(path) = &config.unix_socket_path {
            ConnectionAddr::Unix(path.clone())
        } else {
            if config.host.len() > 1 {
                return Err(ConfigError::unsupported(
                    "session_redis_host",
                    &format!("{} hosts", config.host.len()),
                    "one host in standalone mode (several hosts need sentinel or cluster mode)",
                ));
            }
            match config.host.first() {
                Some(hp) => ConnectionAddr::Tcp(hp.host.clone(), hp.port.unwrap_or(config.port)),
                None => ConnectionAddr::Tcp("localhost".into(), config.port),
            }
        };
        let info = addr
            .into_connection_info()
            .map_err(|err| ConfigError::unsupported("session_redis_host", "", &err.to_string()))?;
        return Ok(info.set_redis_settings(redis));
    };

    let shown = crate::config::redact_url(url);
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
    // The separate options override the URL's parts (docs/configuration.md, "URL rule"), so
    // a password can come from a secret store while the URL stays in a file. `db` has no
    // "unset" state, so only a non-zero db overrides the URL's.
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
    Ok(info.set_redis_settings(merged))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rediss_is_tls_and_keeps_the_password_out_of_sight() {
        for (url, insecure, location) in [
            (
                "rediss://user:hunter2@example.com:6380/1",
                false,
                "rediss://example.com:6380",
            ),
            (
                "rediss://:hunter2@127.0.0.1:6380/2#insecure",
                true,
                "rediss://127.0.0.1:6380/#insecure",
            ),
        ] {
            let config = SessionConfig {
                url: Some(url.into()),
                ..SessionConfig::default()
            };
            let info = connection_info(&config).unwrap();
            assert!(
                matches!(info.addr(), ConnectionAddr::TcpTls { insecure: i, .. } if *i == insecure),
                "{url}"
            );
            assert_eq!(info.redis_settings().password(), Some("hunter2"));
            let backend = RedisBackend::from_config(&config).unwrap();
            assert_eq!(backend.location(), location);
            assert!(!format!("{backend:?}").contains("hunter2"));
        }
    }

    #[test]
    fn unknown_url_fragment_is_rejected_without_the_password() {
        let config = SessionConfig {
            url: Some("rediss://:hunter2@127.0.0.1:6380/#nocheck".into()),
            ..SessionConfig::default()
        };
        let err = RedisBackend::from_config(&config).unwrap_err();
        assert_eq!(err.key, "session_redis_url");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn bad_url_names_the_option_without_the_password() {
        let config = SessionConfig {
            url: Some("http://:hunter2@example.com".into()),
            ..SessionConfig::default()
        };
        let err = RedisBackend::from_config(&config).unwrap_err();
        assert_eq!(err.key, "session_redis_url");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn options_override_the_url_parts() {
        let config = SessionConfig {
            url: Some("redis://:fromurl@127.0.0.1:7000".into()),
            username: Some("app".into()),
            password: Some("fromoption".into()),
            db: 3,
            ..SessionConfig::default()
        };
        let info = connection_info(&config).unwrap();
        assert_eq!(info.addr().to_string(), "127.0.0.1:7000");
        assert_eq!(info.redis_settings().password(), Some("fromoption"));
        assert_eq!(info.redis_settings().username(), Some("app"));
        assert_eq!(info.redis_settings().db(), 3);

        let config = SessionConfig {
            url: Some("redis://:fromurl@127.0.0.1:7000/5".into()),
            ..SessionConfig::default()
        };
        let info = connection_info(&config).unwrap();
        assert_eq!(info.redis_settings().db(), 5);
        assert_eq!(info.redis_settings().password(), Some("fromurl"));
    }

    #[test]
    fn host_port_and_socket() {
        let info = connection_info(&SessionConfig::default()).unwrap();
        assert_eq!(info.addr().to_string(), "localhost:6379");
        let config = SessionConfig {
            host: vec![crate::config::HostPort {
                host: "10.0.0.1".into(),
                port: Some(7001),
            }],
            port: 7000,
            ..SessionConfig::default()
        };
        assert_eq!(
            connection_info(&config).unwrap().addr().to_string(),
            "10.0.0.1:7001"
        );
        let config = SessionConfig {
            unix_socket_path: Some("/tmp/r.sock".into()),
            ..SessionConfig::default()
        };
        assert_eq!(
            connection_info(&config).unwrap().addr().to_string(),
            "/tmp/r.sock"
        );
        let config = SessionConfig {
            url: Some("unix:///tmp/r.sock?db=2".into()),
            ..SessionConfig::default()
        };
        let info = connection_info(&config).unwrap();
        assert_eq!(info.addr().to_string(), "/tmp/r.sock");
        assert_eq!(info.redis_settings().db(), 2);
    }

    #[test]
    fn bad_numbers_are_rejected() {
        for config in [
            SessionConfig {
                socket_timeout: Some(0.0),
                ..SessionConfig::default()
            },
            SessionConfig {
                socket_connect_timeout: Some(f64::NAN),
                ..SessionConfig::default()
            },
            SessionConfig {
                max_connections: Some(0),
                ..SessionConfig::default()
            },
            SessionConfig {
                db: -1,
                ..SessionConfig::default()
            },
        ] {
            assert!(RedisBackend::from_config(&config).is_err());
        }
    }

    #[test]
    fn strategy_follows_the_two_options() {
        let strategy = |single, max| {
            RedisBackend::from_config(&SessionConfig {
                single_connection_client: single,
                max_connections: max,
                ..SessionConfig::default()
            })
            .unwrap()
            .strategy()
        };
        assert_eq!(strategy(false, None), Strategy::Single);
        assert_eq!(strategy(true, Some(8)), Strategy::Single);
        assert_eq!(strategy(false, Some(8)), Strategy::Pool { max_size: 8 });
    }

    #[test]
    fn ttl_is_never_zero_milliseconds() {
        assert_eq!(millis(Duration::from_micros(10)), 1);
        assert_eq!(ttl_arg(None), 0);
        assert_eq!(ttl_arg(Some(Duration::from_secs(2))), 2000);
    }
}
