//! Redis backend: one server, Redis behind Sentinel, or a Redis Cluster, decided once by the
//! [plan](crate::plan::Topology) (`docs/sentinel.md`, `docs/cluster.md`).
//!
//! # Layout
//! One string per session at key `prefix + id`: a version header, then one JSON object of
//! records (`=key`: set, `-key`: removed; `layout.rs`), so a load is one `GET` and one
//! parse, the cost of the peers' reads (measured against the hash of earlier versions in
//! `docs/benchmarks.md`). A write appends the records of its changed keys (the object is
//! stored without its closing brace): as with the hash's field-level writes, two concurrent requests that
//! change different keys both keep their change, with no version check. The version (the
//! header's random tag, new with every rewrite, and the value's length) guards the writes that replace the value:
//! a rewrite once the records outweigh the session, and the delete of a session left with
//! no key (`RedisBackend::save`).
//!
//! Sessions stored as hashes by earlier versions (one field per key) are still read
//! (`HGETALL` after the `GET` answered `WRONGTYPE`) and written field by field, until a
//! whole-state write (`replace`) stores them as strings or they expire.
//!
//! # One round trip per operation
//! | operation | sent |
//! |---|---|
//! | load | `GET`; `GETEX` with `PX` when touching (`GET` pipelined with `PEXPIRE` on a server that refuses `GETEX`: before Redis 6.2, or an ACL without `+getex`) |
//! | create | script: `SET NX` (+ `PX`) |
//! | replace | script: if the session exists, `SET` (+ `PX`) |
//! | apply | script: if the session exists, `APPEND` of the records (+ `PEXPIRE`) |
//! | apply at the version this backend loaded, with a TTL | no script: `APPEND`, `PEXPIRE`, pipelined; records that land after a logout are no session (they lack the header): the `APPEND` answers an even length for them (`layout::is_session_length`), and they are deleted right after (a `GETRANGE` of the header first), by a script that deletes nothing else |
//! | the same without a TTL, or with an index entry to add on one server | script: `APPEND`, undone by `DEL` when it made the key or found records alone |
//! | apply, rewriting | script: loaded under 1 KB, `SET XX GET KEEPTTL` (+ `PEXPIRE`), the replaced value put back when it is not the loaded version, with the request's records on top; otherwise, if the version is still the stored one, `SET` (`PX`, or `KEEPTTL`), else the records `APPEND`ed; from 1 KB on one server, a staging `SET` then a script `RENAME` (or `APPEND`) |
//! | apply without a version, removing keys | `GET` (does any key remain?), then the script |
//! | touch | `PEXPIRE` with `GETRANGE` of the first byte (records alone are no session), or a script `PERSIST` when the TTL is `None` |
//! | delete | `DEL` |
//!
//! A touching load or `touch` that finds a moved marker or records alone (no session) sends
//! one script more (`SHORTEN`): its touch gave them a session's expiry, and they get back
//! at most [`MOVED_MARKER_TTL`](crate::MOVED_MARKER_TTL).
//!
//! Every operation's future is boxed (`async_trait`), once per call, so its size is a cost
//! paid on every request: the paths few requests take (connecting, the health check
//! `PING`, the `NOSCRIPT` fallback, rewrites, merges, the hash layout, the cluster's index
//! add) are boxed where they are awaited, and so is the pool's checkout (with the pool
//! strategy, one allocation of about 800 bytes more per operation, where the operation's own
//! box was twice that). Inline, they made each box about
//! 8 KB, which glibc serves through its large-request path, after consolidating its free
//! lists: 2% of the server's CPU on a small write (measured, `docs/benchmarks.md`). Now
//! every common operation's box is at most 1,000 bytes, within glibc's small bins;
//! `every_common_operations_future_fits_glibcs_small_bins` (`tests/redis_backend.rs`)
//! fails when a change inlines a rare path again.
//!
//! Scripts go by hash (`EVALSHA`); only after a server restart or `SCRIPT FLUSH` does the first
//! call of each script cost one more round trip: `EVAL` with its text, on the key's node (see
//! `scripts.rs` for why not `SCRIPT LOAD`).
//!
//! # Connections
//! Nothing connects at construction. Two strategies ([`Strategy`]):
//!
//! * one multiplexed connection shared by every task, made on first use and remade by the
//!   next call after it broke: with `single_connection_client = true`, and also **the
//!   default** when `max_connections` is not set (it measured about twice the throughput of a
//!   pool at 16 and 64 concurrent tasks and the same at 1; see `docs/benchmarks.md`);
//! * a [deadpool] pool of `max_connections` multiplexed connections, each used by
//!   one operation at a time, when `max_connections` is set (and `single_connection_client`
//!   is not). The pool is deadpool's core with our own manager rather than deadpool-redis:
//!   deadpool-redis' recycle sends a `PING` on every checkout, which doubled the round trips
//!   of every operation when measured; ours pings only a connection idle for longer than
//!   `health_check_interval`.
//!
//! # TLS
//! A `rediss://host:port/db` URL, or `ssl = true` with host/port, connects over TLS (rustls,
//! with the `ring` provider, which is installed as the process default unless the application
//! installed one first; cargo feature `tls`). The server certificate is checked against the
//! **system's** trusted roots (the OS store, read through `rustls-native-certs` when the first
//! connection is made), or only against the CAs of `ssl_ca_certs`/`ssl_ca_path`/`ssl_ca_data`
//! when any is set, and must name `host` unless `ssl_check_hostname` is false.
//! `ssl_certfile`/`ssl_keyfile` (with `ssl_password` for an encrypted PKCS#8 key) add a client
//! certificate. Every file is read when the plan is made. A server whose certificate is not
//! trusted fails every operation with [`StoreError::Unavailable`]
//! (`invalid peer certificate: UnknownIssuer`, ...). `docs/configuration.md` details each
//! option.
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
//! `scripts.rs`). Between the two attempts another request may have run: a logout stays a
//! logout (the retry finds no session and writes nothing), and a write to the same key that
//! completed in between was concurrent with this one, which the retry orders after it (last
//! writer wins, as for any two concurrent writes; a write that starts after this one returned
//! is never overwritten by it). `a_retried_write_whose_answer_was_lost` in
//! `tests/redis_backend.rs` shows both through a proxy that drops the answer. With `health_check_interval`, a connection unused for longer than the
//! interval is `PING`ed before use and replaced if that fails; a busy one never is.
//!
//! A server that is down makes operations fail at once with [`StoreError::Unavailable`]; a hung
//! one after `socket_timeout` (default [`DEFAULT_SOCKET_TIMEOUT`]). The same backend works
//! again as soon as the server is back.
//!
//! [`Strategy`]: crate::plan::Strategy
//! [`DEFAULT_SOCKET_TIMEOUT`]: crate::plan::DEFAULT_SOCKET_TIMEOUT

#[cfg(feature = "cluster")]
mod cluster;
mod connection;
mod errors;
pub(crate) mod held_reply;
mod layout;
mod scripts;
#[cfg(feature = "sentinel")]
mod sentinel;
mod tls;

#[cfg(any(feature = "sentinel", feature = "cluster"))]
use std::sync::Arc;
use std::{
    collections::HashMap,
    sync::atomic::{AtomicBool, Ordering::Relaxed},
    time::Duration,
};

use async_trait::async_trait;
use futures_util::FutureExt;
use redis::{ConnectionAddr, ConnectionInfo, RedisError, Value};

#[cfg(feature = "cluster")]
use self::cluster::Cluster;
#[cfg(feature = "cluster")]
pub use self::cluster::{parse_cluster_nodes, ClusterNode, CLUSTER_RETRIES};
use self::connection::{Connector, Request, Target};
#[cfg(feature = "sentinel")]
use self::sentinel::Sentinel;
use self::tls::TlsPlan;
use crate::{
    backend::{Retired, Seen},
    config::KeepaliveOptions,
    index::{entry_of_changes, entry_of_state},
    plan::{BackendPlan, ConnectionPlan, RedisPlan, Strategy, Topology},
    state::{check_values_are_json, refuse_unless_json},
    ttl::millis,
    BackendHealth, Changes, ConfigError, IndexMember, IndexName, LoadedState, SessionBackend,
    SessionConfig, SessionId, SessionState, StoreError, Version,
};

/// The name this backend reports in errors and health checks.
const NAME: &str = "redis";

/// Sessions in Redis: one server (or one Redis-protocol server such as Valkey), a master
/// followed through Sentinel, or a Redis Cluster.
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
    nodes: Nodes,
    strategy: Strategy,
    prefix: String,
    /// `session_redis_index_key`.
    index_key: Option<String>,
    location: String,
    /// What every session's place starts with ([`SessionBackend::place`]):
    /// `redis:<server>/<db>#`, the server as its location, the sentinels' or the seeds' list
    /// sorted (two orders of one list are one deployment).
    place_prefix: String,
    /// Marks the [`Version`]s this backend hands out (see [`Version::seen_by`]).
    origin: u64,
    /// False once the server refused `GETEX` (see `load_versioned`): touching loads then send
    /// `GET` and `PEXPIRE`, as before Redis 6.2, for the backend's life (a server upgraded or
    /// an ACL granted `+getex` since is used with `GETEX` again after a restart).
    getex: AtomicBool,
}

/// The servers behind the backend and how requests reach them: the plan's
/// [`Topology`], made into clients.
enum Nodes {
    /// One server at a fixed address.
    Standalone(Connector),
    /// The master the sentinels report, and replicas for reads when asked for.
    #[cfg(feature = "sentinel")]
    Sentinel {
        resolver: Arc<Sentinel>,
        master: Connector,
        replicas: Option<Connector>,
    },
    /// Every node of a cluster, through redis-rs' cluster client.
    #[cfg(feature = "cluster")]
    Cluster(Arc<Cluster>),
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
    /// The backend the configuration describes, in redis, sentinel or cluster mode: a
    /// shorthand for [`SessionConfig::plan`] then [`from_plan`](Self::from_plan). Nothing is
    /// connected here.
    ///
    /// `username`, `password` and a non-zero `db` given as separate options override the
    /// URL's parts. Strategy: `single_connection_client = true`, or `max_connections` unset,
    /// gives one shared multiplexed connection (the faster one, see the
    /// [module docs](self)); `max_connections = n` alone gives a pool of `n` connections.
    ///
    /// In sentinel mode the master is resolved on the first operation and cached. A
    /// `READONLY` reply, or a dropped or refused connection, makes the next connection resolve
    /// it again, and the operation is retried once (on the new master when the failover is
    /// done). Sentinel events (`+promoted-slave`, `+switch-master`) switch the master at once,
    /// and drop the connections to the former one before they are used again. With
    /// `session_redis_sentinel_read_from_replicas`, loads that do not touch the expiry go to
    /// a healthy replica: a load right after a write may not see it yet. With none healthy
    /// they go to the master, and back to a replica within about 5 s of one being healthy.
    ///
    /// In cluster mode one multiplexed connection per node carries every request; redis-rs
    /// follows `MOVED`/`ASK`, refreshes the slot map and reconnects by itself, retrying a
    /// request up to `CLUSTER_RETRIES` times within `socket_timeout` in total. A request to
    /// slots whose master is down fails with [`StoreError::Unavailable`] until the master is
    /// back or a replica took over; the backend needs no rebuilding.
    pub fn from_config(config: &SessionConfig) -> Result<Self, ConfigError> {
        match config.plan()?.backend {
            BackendPlan::Redis(plan) => Self::from_plan(&plan),
            _ => Err(ConfigError::invalid(
                "session_redis_mode",
                config.mode.as_str(),
                "redis, sentinel or cluster, without session_redis_pool or session_redis_multi_backends, for one Redis backend",
            )),
        }
    }

    /// Builds the backend of a plan. Nothing is connected here.
    pub fn from_plan(plan: &RedisPlan) -> Result<Self, ConfigError> {
        let tls = tls_of(plan);
        if tls.is_some() {
            install_crypto_provider();
        }
        let connection = &plan.connection;
        let (nodes, location) = match &plan.topology {
            Topology::Standalone(info) => {
                let (target, location) = standalone(info.clone(), connection, tls)?;
                (
                    Nodes::Standalone(Connector::new(target, connection)),
                    location,
                )
            }
            #[cfg(feature = "sentinel")]
            Topology::Sentinel(sentinel) => {
                let resolver = Arc::new(Sentinel::new(
                    sentinel,
                    make_client(connection.keepalive, tls.cloned()),
                    connection.connect_timeout,
                    connection.socket_timeout,
                ));
                let location = resolver.location();
                let connector = |target| Connector::new(target, connection);
                let nodes = Nodes::Sentinel {
                    master: connector(Target::SentinelMaster(Arc::clone(&resolver))),
                    replicas: sentinel
                        .read_from_replicas
                        .then(|| connector(Target::SentinelReplica(Arc::clone(&resolver)))),
                    resolver,
                };
                (nodes, location)
            }
            #[cfg(feature = "cluster")]
            Topology::Cluster(plan) => {
                let cluster = Cluster::new(plan, connection, tls).map_err(|err| {
                    ConfigError::unsupported(
                        "session_redis_host",
                        &cluster::hosts(&plan.seeds),
                        &err.to_string(),
                    )
                })?;
                let location = cluster.location();
                (Nodes::Cluster(Arc::new(cluster)), location)
            }
        };
        Ok(Self {
            nodes,
            strategy: match &plan.topology {
                Topology::Standalone(_) => connection.strategy,
                #[cfg(feature = "sentinel")]
                Topology::Sentinel(_) => connection.strategy,
                // One shared connection per node, whatever was asked.
                #[cfg(feature = "cluster")]
                Topology::Cluster(_) => Strategy::Single,
            },
            prefix: plan.prefix.clone(),
            index_key: plan.index_key.clone(),
            place_prefix: place_prefix(&plan.topology, &location),
            location,
            origin: Version::new_origin(),
            getex: AtomicBool::new(true),
        })
    }
}

/// The plan's TLS settings (always `None` in a build without the `tls` feature).
fn tls_of(plan: &RedisPlan) -> Option<&TlsPlan> {
    #[cfg(feature = "tls")]
    return plan.tls.as_ref();
    #[cfg(not(feature = "tls"))]
    {
        let _ = plan;
        None
    }
}

/// What every session's place starts with (`RedisBackend::place_prefix`): `location` is the
/// standalone server's.
fn place_prefix(topology: &Topology, location: &str) -> String {
    #[allow(unused_variables)] // Used only with Sentinel or Cluster compiled in.
    let sorted = |list: &[(String, u16)]| {
        let mut hosts: Vec<String> = list.iter().map(|(h, p)| format!("{h}:{p}")).collect();
        hosts.sort();
        hosts.join(",")
    };
    let (server, db) = match topology {
        Topology::Standalone(info) => (location.to_owned(), info.redis_settings().db()),
        #[cfg(feature = "sentinel")]
        Topology::Sentinel(plan) => (
            format!("sentinel://{}/{}", sorted(&plan.sentinels), plan.master),
            plan.db,
        ),
        #[cfg(feature = "cluster")]
        Topology::Cluster(plan) => (format!("cluster {}", sorted(&plan.seeds)), 0),
    };
    format!("redis:{server}/{db}#")
}

/// The fixed target and the location (no credentials) of a standalone server: keepalive and
/// TLS applied to its address.
fn standalone(
    info: ConnectionInfo,
    connection: &ConnectionPlan,
    tls: Option<&TlsPlan>,
) -> Result<(Target, String), ConfigError> {
    // `ssl = True` turns a host/port address into a TLS one.
    let shown = match tls {
        Some(tls) => tls.tls_info(info.clone()),
        None => info.clone(),
    };
    let location = match shown.addr() {
        ConnectionAddr::TcpTls { insecure, .. } => {
            let fragment = if *insecure { "/#insecure" } else { "" };
            format!("rediss://{}{fragment}", shown.addr())
        }
        addr => addr.to_string(),
    };
    let client = node_client(info, connection.keepalive, tls).map_err(|err| {
        ConfigError::unsupported("session_redis_url", &location, &err.to_string())
    })?;
    Ok((Target::Fixed(Box::new(client)), location))
}

/// How the Sentinel resolver makes clients: the same TLS and socket settings for the
/// sentinels and the data nodes, as Odoo's `session_redis` passes the Redis options to both.
#[cfg(feature = "sentinel")]
fn make_client(keepalive: Option<KeepaliveOptions>, tls: Option<TlsPlan>) -> sentinel::MakeClient {
    Box::new(move |host, port, redis| {
        use redis::IntoConnectionInfo;
        let info = ConnectionAddr::Tcp(host.to_string(), port)
            .into_connection_info()?
            .set_redis_settings(redis);
        node_client(info, keepalive, tls.as_ref())
    })
}

/// The one place a client for a single server is made, for the standalone server, the
/// sentinels and the masters they name, and [`RedisPlan::node_client`]: so that tools
/// reaching the other servers of a deployment cannot drift from what the backend does.
fn node_client(
    info: ConnectionInfo,
    keepalive: Option<KeepaliveOptions>,
    tls: Option<&TlsPlan>,
) -> redis::RedisResult<redis::Client> {
    let info = match keepalive {
        Some(options) => info.set_tcp_settings(tcp_settings(options)),
        None => info,
    };
    // A `rediss://` address needs the provider even in a plan built without TLS settings
    // (`RedisPlan::standalone`).
    if tls.is_some() || matches!(info.addr(), ConnectionAddr::TcpTls { .. }) {
        install_crypto_provider();
    }
    match tls {
        Some(tls) => tls.build_client(info),
        None => redis::Client::open(info),
    }
}

impl RedisPlan {
    /// A client for one server of this deployment at `info` (address, credentials, db),
    /// made by the code that makes the backend's standalone and Sentinel clients, so with
    /// this plan's TLS settings (trusted roots of `ssl_ca_*`, client certificate,
    /// `ssl_cert_reqs`, `ssl_check_hostname`; a `host:port` address becomes TLS, a
    /// `rediss://` address keeps its `#insecure`) and TCP keepalive: the settings the
    /// cluster client gives every node too. For connections the backend does not make
    /// itself: an operator's tool asking each sentinel, replica or cluster node directly
    /// (`sessionctl` scans and checks them this way). Timeouts are the caller's, per
    /// connection ([`ConnectionPlan::connect_timeout`], [`ConnectionPlan::socket_timeout`]).
    ///
    /// Connects nothing. Fails for a unix socket when the plan has TLS. Neither the error
    /// nor the client's `Debug` shows the password or the client key.
    ///
    /// ```
    /// use redis::{ConnectionAddr, IntoConnectionInfo};
    /// use session_core::{plan::BackendPlan, SessionConfig};
    ///
    /// let config = SessionConfig::from_sources(
    ///     None,
    ///     [
    ///         ("SESSION_REDIS_SSL", "True"),
    ///         ("SESSION_REDIS_SSL_CERT_REQS", "none"),
    ///         ("SESSION_REDIS_PASSWORD", "s3cret"),
    ///     ],
    /// )
    /// .unwrap();
    /// let BackendPlan::Redis(plan) = config.plan().unwrap().backend else { unreachable!() };
    /// // A replica the master reported, say.
    /// let info = ConnectionAddr::Tcp("10.0.0.7".into(), 6380)
    ///     .into_connection_info()
    ///     .unwrap()
    ///     .set_redis_settings(
    ///         redis::RedisConnectionInfo::default().set_password("s3cret"),
    ///     );
    /// let client = plan.node_client(info).unwrap();
    /// assert!(matches!(
    ///     client.get_connection_info().addr(),
    ///     ConnectionAddr::TcpTls { insecure: true, .. }
    /// ));
    /// assert!(!format!("{client:?}").contains("s3cret"));
    /// ```
    pub fn node_client(&self, info: ConnectionInfo) -> redis::RedisResult<redis::Client> {
        node_client(info, self.connection.keepalive, tls_of(self))
    }
}

impl RedisBackend {
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
        // Not `format!`: its formatting machinery was 1% of a small write (two keys per
        // write), where this is one allocation and two copies.
        [self.prefix.as_str(), id.as_str()].concat()
    }

    /// Sends `request` to the master, in every topology.
    async fn run<T: redis::FromRedisValue>(&self, request: Request) -> Result<T, StoreError> {
        self.send(&request, false).await
    }

    async fn send<T: redis::FromRedisValue>(
        &self,
        request: &Request,
        read_only: bool,
    ) -> Result<T, StoreError> {
        self.send_raw(request, read_only)
            .await
            .map_err(|err| self.error(&err))
    }

    /// `send` with the client's error as it is (`read_only`: to a replica when replica reads
    /// are on, for requests that only read and decide nothing, such as a request's load), for the callers that tell `WRONGTYPE` (a
    /// session in the hash layout) from other errors.
    async fn send_raw<T: redis::FromRedisValue>(
        &self,
        request: &Request,
        read_only: bool,
    ) -> redis::RedisResult<T> {
        let result = match &self.nodes {
            Nodes::Standalone(connector) => connector.run(request).await,
            #[cfg(feature = "sentinel")]
            Nodes::Sentinel {
                master, replicas, ..
            } => match replicas.as_ref().filter(|_| read_only) {
                Some(replicas) => replicas.run(request).await,
                None => master.run(request).await,
            },
            #[cfg(feature = "cluster")]
            Nodes::Cluster(cluster) => cluster.run(request, read_only).await,
        };
        // Unused when neither Sentinel nor Cluster is compiled in.
        let _ = read_only;
        result
    }

    /// `send` to the primary, at most once (not retried on a fresh connection after a
    /// dropped one: [`Delivery::Once`]; on a cluster, through a connection whose client
    /// retries nothing). Apart from [`send_raw`](Self::send_raw) so that the common
    /// operations' futures do not grow (`every_common_operations_future_fits_glibcs_small_bins`).
    async fn send_once<T: redis::FromRedisValue>(
        &self,
        request: &Request,
    ) -> Result<T, StoreError> {
        let result = match &self.nodes {
            Nodes::Standalone(connector) => connector.run_once(request).await,
            #[cfg(feature = "sentinel")]
            Nodes::Sentinel { master, .. } => master.run_once(request).await,
            #[cfg(feature = "cluster")]
            Nodes::Cluster(cluster) => cluster.run_once(request).await,
        };
        result.map_err(|err| self.error(&err))
    }

    fn error(&self, err: &RedisError) -> StoreError {
        match errors::store_error(NAME, err) {
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
                } else {
                    match &self.nodes {
                        #[cfg(feature = "cluster")]
                        Nodes::Cluster(_) => cluster::hint(err),
                        _ => "",
                    }
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

    /// True when every session is on one server (standalone or Sentinel), so a batch can
    /// go as one pipeline.
    fn one_server(&self) -> bool {
        match &self.nodes {
            #[cfg(feature = "cluster")]
            Nodes::Cluster(_) => false,
            _ => true,
        }
    }

    /// True when a write's scripts add the id to the index entry `entry` (one server; on a
    /// cluster the entry is added first, by a request of its own): such a write needs a
    /// script, whose prelude adds it before anything is written.
    fn adds_in_script(&self, entry: &Option<IndexName>) -> bool {
        entry.is_some() && self.one_server()
    }

    /// Sends a pipeline of `n` commands answering integers: true for an answer above 0.
    async fn int_answers(&self, pipe: redis::Pipeline, n: usize) -> Vec<Result<bool, StoreError>> {
        self.int_answers_sent(pipe, n, Delivery::Retried).await
    }

    /// [`int_answers`](Self::int_answers), sent as `delivery` says.
    async fn int_answers_sent(
        &self,
        pipe: redis::Pipeline,
        n: usize,
        delivery: Delivery,
    ) -> Vec<Result<bool, StoreError>> {
        self.answers_as(pipe, n, delivery, |answer| match answer {
            Value::Int(answer) => Some(answer > 0),
            _ => None,
        })
        .await
    }

    /// The answers of a pipelined batch of `n` requests, each read by `read` (`None`: not
    /// an answer it can give).
    async fn answers_as<T>(
        &self,
        pipe: redis::Pipeline,
        n: usize,
        delivery: Delivery,
        read: impl Fn(Value) -> Option<T>,
    ) -> Vec<Result<T, StoreError>> {
        let request = Request::Pipe(pipe);
        let sent = match delivery {
            Delivery::Retried => self.send(&request, false).await,
            Delivery::Once => self.send_once(&request).boxed().await,
        };
        let replies: Vec<Value> = match sent {
            Ok(replies) => replies,
            Err(err) => return (0..n).map(|_| Err(err.clone())).collect(),
        };
        let mut replies = replies.into_iter();
        (0..n)
            .map(|_| match replies.next() {
                Some(Value::ServerError(err)) => Err(self.error(&RedisError::from(err))),
                Some(answer) => read(answer)
                    .ok_or_else(|| corrupt("an unexpected answer in a pipelined batch".into())),
                None => Err(corrupt("an unexpected answer in a pipelined batch".into())),
            })
            .collect()
    }

    /// A write by `script`, with the id added to the index entry `entry` first when there
    /// is one: by the script itself on one server (its first command, so a failed add fails
    /// the write; one round trip); on a cluster, where the entry lives in another slot, as a
    /// request of its own before the write (which is not sent when the add failed).
    ///
    /// Not an `async fn`: the call is built before the future is, so the future holds
    /// neither the entry nor the arguments (module docs, future sizes).
    fn conditional_write<'a>(
        &'a self,
        script: &'static scripts::LuaScript,
        id: &'a SessionId,
        ttl: Option<Duration>,
        entry: Option<IndexName>,
        args: impl FnOnce(&mut scripts::ScriptCall),
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send + 'a {
        let call = self.write_call(script, id, ttl, entry.as_ref(), args);
        // Boxed, as every path but the common one.
        let add_first = entry
            .filter(|_| !self.one_server())
            .map(|entry| async move { self.index_add(&entry, id).await }.boxed());
        async move {
            if let Some(add) = add_first {
                add.await?;
            }
            let written: i64 = self.run(Request::Script(call)).await?;
            Ok(written == 1)
        }
    }

    /// The script call of one write: on one server, with the index entry to add the id to
    /// (see [`scripts`]); on a cluster the caller added it already.
    fn write_call(
        &self,
        script: &'static scripts::LuaScript,
        id: &SessionId,
        ttl: Option<Duration>,
        entry: Option<&IndexName>,
        args: impl FnOnce(&mut scripts::ScriptCall),
    ) -> scripts::ScriptCall {
        self.write_call_keys(script, id, Vec::new(), ttl, entry, args)
    }

    /// [`write_call`](Self::write_call) of a script that takes `more_keys` after the
    /// session's.
    fn write_call_keys(
        &self,
        script: &'static scripts::LuaScript,
        id: &SessionId,
        more_keys: Vec<String>,
        ttl: Option<Duration>,
        entry: Option<&IndexName>,
        args: impl FnOnce(&mut scripts::ScriptCall),
    ) -> scripts::ScriptCall {
        let entry = entry.filter(|_| self.one_server());
        let mut keys = vec![self.key(id)];
        keys.extend(more_keys);
        let mut call = script.call_keys(keys, entry.map(|e| self.index_entry_key(e)));
        call.arg(ttl_arg(ttl));
        args(&mut call);
        if entry.is_some() {
            call.arg(crate::backend::now_ms()).arg(id.as_str());
        }
        call
    }

    /// The Redis key of an index entry: under the prefix, so ACL key patterns and `SCAN`s of
    /// the prefix cover it; the value only as a digest.
    fn index_entry_key(&self, entry: &IndexName) -> String {
        format!("{}index:{}:{}", self.prefix, entry.key(), entry.digest())
    }

    /// A load, into a map or in place ([`Decoded`]): `load_versioned`, `load_in_place`.
    /// `primary`: read from the master even when a load without `touch` may go to a replica
    /// (`load_versioned_from_primary`).
    async fn load_as<T: Decoded>(
        &self,
        id: &SessionId,
        touch: Option<Duration>,
        primary: bool,
    ) -> Result<Option<(T, Version)>, StoreError> {
        let key = self.key(id);
        // A touching load is one command, `GETEX`, where `GET` and `PEXPIRE` were two: Redis
        // runs one command less and the client encodes and reads one less, on every load with
        // sliding expiry (ninth round, docs/benchmarks.md).
        let mut getex = touch.is_some() && self.getex.load(Relaxed);
        // `first` on the key, with `PX` when `getex`, or followed by a `PEXPIRE` of `touch`.
        let request = |first: &str, touch: Option<Duration>, getex: bool| {
            let mut pipe = redis::pipe();
            pipe.cmd(first).arg(&key);
            if let Some(ttl) = touch {
                if getex {
                    pipe.arg("PX").arg(millis(ttl));
                } else {
                    pipe.cmd("PEXPIRE").arg(&key).arg(millis(ttl)).ignore();
                }
            }
            Request::Pipe(pipe)
        };
        // A load that touches writes: the master. One that does not may go to a replica.
        let read_only = touch.is_none() && !primary;
        let first = if getex { "GETEX" } else { "GET" };
        let mut got: redis::RedisResult<(Value,)> = self
            .send_raw(&request(first, touch, getex), read_only)
            .await;
        if getex && matches!(&got, Err(err) if errors::refuses_command(err, "getex")) {
            // Redis before 6.2, or an ACL without `+getex`: the two commands from now on.
            // Not an error: the deployment worked with them before, and still does.
            self.getex.store(false, Relaxed);
            getex = false;
            tracing::warn!(
                location = %self.location,
                "redis: the server refuses GETEX (before Redis 6.2, or an ACL without +getex); sliding expiry loads send GET and PEXPIRE instead, until a restart"
            );
            got = self
                .send_raw(&request("GET", touch, false), read_only)
                .boxed()
                .await;
        }
        let value = match got {
            Ok((Value::BulkString(bytes),)) if touch.is_some() && layout::is_orphan(&bytes) => {
                self.shorten_orphan(id).boxed().await;
                return Ok(None);
            }
            Ok((value,)) => value,
            // A session of an earlier version, stored as a hash. With `GET`, its expiry was
            // reset all the same (the `PEXPIRE` ran after the failed `GET`); `GETEX` failed
            // before setting one, so then the `PEXPIRE` comes with the `HGETALL`.
            Err(err) if errors::is_wrong_type(&err) => {
                let expire = touch.filter(|_| getex);
                let (fields,): (Value,) = self
                    .send(&request("HGETALL", expire, false), read_only)
                    .boxed()
                    .await?;
                return Ok(
                    hash_state(fields)?.map(|state| (T::from(state), Version::hash(self.origin)))
                );
            }
            Err(err) => return Err(self.error(&err)),
        };
        match self.stored_or_emptied::<T>(value)? {
            Some((state, tag, len)) if state.is_empty() => {
                self.delete_emptied(id, (tag, len)).boxed().await;
                Ok(None)
            }
            found => {
                Ok(found.map(|(state, tag, len)| (state, Version::tagged(self.origin, tag, len))))
            }
        }
    }

    /// A `GET` reply of a session key: the state, the tag and the length of its value, `None`
    /// when the key is absent.
    fn stored<T: Decoded>(&self, value: Value) -> Result<Option<(T, u64, usize)>, StoreError> {
        // A session whose keys were all removed (by concurrent requests that each removed
        // some): no session.
        Ok(self
            .stored_or_emptied::<T>(value)?
            .filter(|(state, ..)| !state.is_empty()))
    }

    /// [`stored`](Self::stored), with a session whose keys were all removed as it is.
    fn stored_or_emptied<T: Decoded>(
        &self,
        value: Value,
    ) -> Result<Option<(T, u64, usize)>, StoreError> {
        match value {
            Value::Nil => Ok(None),
            // A write's records that landed after a logout, about to be deleted by it.
            Value::BulkString(bytes) if layout::is_orphan(&bytes) => Ok(None),
            Value::BulkString(bytes) => {
                let len = bytes.len();
                let (state, tag) = T::decode(bytes).map_err(corrupt)?;
                Ok(Some((state, tag, len)))
            }
            Value::ServerError(err) => Err(self.error(&RedisError::from(err))),
            _ => Err(corrupt("GET returned something other than a string".into())),
        }
    }

    /// After a load found a session whose keys concurrent requests removed, each some of
    /// them (each write appends its removals, and none could see that together they leave
    /// nothing): deletes it, if it is still that value (`expected`: its tag and length), as
    /// a write that empties a session does. Left there, a write in flight from a request
    /// that loaded it earlier would add to it and bring it back with that write's keys
    /// alone, a `touch` would keep it alive, and it would count as a session in `sessionctl`.
    /// Best effort: it is no session to any read either way.
    async fn delete_emptied(&self, id: &SessionId, expected: (u64, usize)) {
        if let Err(err) = self
            .write_if_unchanged(id, expected, (&[], &[]), None, None)
            .await
        {
            tracing::debug!(error = %errors::shown(&err), "redis: could not delete a session whose keys were all removed");
        }
    }

    /// Whether a session is stored under `id`, from the master; a key that is not a session
    /// (another type, or a string without our header) is corrupt, as for a write. Reads
    /// the header only (`GETRANGE`), never the session.
    async fn exists(&self, id: &SessionId) -> Result<bool, StoreError> {
        let mut pipe = redis::pipe();
        pipe.cmd("GETRANGE")
            .arg(self.key(id))
            .arg(0)
            .arg(layout::HEADER_LEN - 1);
        let got: redis::RedisResult<(Vec<u8>,)> = self.send_raw(&Request::Pipe(pipe), false).await;
        match got {
            Ok((head,)) if head.is_empty() || layout::is_orphan(&head) => Ok(false),
            Ok((head,)) => layout::check_header(&head).map(|()| true).map_err(corrupt),
            // A hash: a session in the layout of earlier versions (Redis keeps no empty one).
            Err(err) if errors::is_wrong_type(&err) => Ok(true),
            Err(err) => Err(self.error(&err)),
        }
    }

    /// The changed keys of one request, written from the step `next`: their records added (one
    /// round trip); a rewrite or delete conditional on the version, whose script adds the
    /// records when another write came in between (a delete, changes that only remove keys,
    /// or records of 1 KB or more: the caller does, one round trip more); the hash layout's
    /// field-level script for a session still stored so. At most [`MERGE_TRIES`] round
    /// trips. Every await but the append's is boxed (module docs, future sizes).
    async fn save(
        &self,
        id: &SessionId,
        mut next: Next,
        changes: &Changes,
        ttl: Option<Duration>,
        versionless: bool,
    ) -> Result<bool, StoreError> {
        if changes.is_empty() {
            // Nothing to write: only the expiry, and the answer whether the session exists
            // (from the master: a replica may not have seen a logout yet).
            return match ttl {
                Some(_) => self.touch(id, ttl).boxed().await,
                None => self.exists(id).boxed().await,
            };
        }
        refuse_unless_json(NAME, &changes.set)?;
        let entry = entry_of_changes(self.index_key(), changes);
        if let Some(entry) = entry.as_ref().filter(|_| !self.one_server()) {
            // On a cluster the entry is in another slot: added first (see `conditional_write`).
            self.index_add(entry, id).boxed().await?;
        }
        let records = layout::records(changes);
        // Only rewrites and deletes are conditional on the version, and only they can meet
        // another write in between; each such meeting means that write succeeded. The bound
        // caps what one request can cost when many write one session at once.
        let mut hash_refused = false;
        for _ in 0..MERGE_TRIES {
            next = match next {
                Next::Amend => {
                    // In a block of its own, so that the request is not kept in this future
                    // across the awaits below (module docs, future sizes).
                    let reply = {
                        let request = match ttl {
                            // The common write: no script (`append_request`).
                            Some(ttl) if !versionless && !self.adds_in_script(&entry) => {
                                self.append_request(id, &records, ttl)
                            }
                            // A write with this backend's version loaded the session as ours:
                            // no header to check again.
                            _ => {
                                let script = if versionless {
                                    &scripts::AMEND_SCRIPT
                                } else {
                                    &scripts::AMEND_LOADED_SCRIPT
                                };
                                Request::Script(self.write_call(
                                    script,
                                    id,
                                    ttl,
                                    entry.as_ref(),
                                    |call| {
                                        call.arg(&records);
                                    },
                                ))
                            }
                        };
                        // One await for both requests: two would each take their room in this
                        // future (module docs, future sizes).
                        self.send_raw::<Amended>(&request, false).await
                    };
                    match reply {
                        Ok(Amended::Written(len)) => {
                            if versionless && crossed(len, records.len()) {
                                self.compact(id).boxed().await;
                            }
                            return Ok(true);
                        }
                        Ok(Amended::Absent) => return Ok(false),
                        Ok(Amended::NotOurs) => return Err(corrupt(layout::NOT_OURS.into())),
                        // An even length: records alone, or a value written before lengths
                        // were kept odd; the header tells.
                        Ok(Amended::Unsure) => return self.appended_to(id).await,
                        // A hash: a session of an earlier version under this id.
                        Err(err) if errors::is_wrong_type(&err) => Next::Hash,
                        Err(err) => return Err(self.error(&err)),
                    }
                }
                Next::Read => match self.current(id).boxed().await {
                    Ok(value) => match self.stored(value)? {
                        None => return Ok(false),
                        Some((state, tag, len)) => on_top_of(state, (tag, len), changes),
                    },
                    // Neither a string nor, as the hash step found, a hash (a list, a set):
                    // not a session of ours; without this the two steps would send each
                    // other back until the bound.
                    Err(err) if errors::is_wrong_type(&err) && hash_refused => {
                        return Err(corrupt(layout::NOT_OURS.into()))
                    }
                    Err(err) if errors::is_wrong_type(&err) => Next::Hash,
                    Err(err) => return Err(self.error(&err)),
                },
                Next::Hash => {
                    let call = self.write_call(
                        &scripts::APPLY_HASH_SCRIPT,
                        id,
                        ttl,
                        entry.as_ref(),
                        |call| {
                            call.arg(changes.remove.len());
                            for field in &changes.remove {
                                call.arg(field);
                            }
                            push_pairs(call, changes.set.iter());
                        },
                    );
                    let request = Request::Script(call);
                    match self.send_raw::<i64>(&request, false).boxed().await {
                        Ok(written) => return Ok(written == 1),
                        // Rewritten in the string layout since the load (a `replace`).
                        Err(err) if errors::is_wrong_type(&err) => {
                            hash_refused = true;
                            Next::Read
                        }
                        Err(err) => return Err(self.error(&err)),
                    }
                }
                Next::Write { expected, value } => {
                    // What goes on top if another write came in between (`scripts::ON_TOP`);
                    // not when the changes only remove keys, which on top of that write
                    // might leave no key (then the session is deleted: `on_top_of`), nor
                    // records large enough that passing them through Lua on every rewrite
                    // costs more than the round trip they save now and then.
                    let on_top: &[u8] = if value.is_empty()
                        || changes.set.is_empty()
                        || records.len() >= STAGE_FROM
                    {
                        &[]
                    } else {
                        &records
                    };
                    let reply = self
                        .write_if_unchanged(id, expected, (&value, on_top), ttl, entry.as_ref())
                        .boxed()
                        .await;
                    match reply {
                        Ok(Value::Int(written)) => return Ok(written == 1),
                        // Deleted, and a write's records landed after (`append_request`).
                        Ok(Value::BulkString(current)) if layout::is_orphan(&current) => {
                            return Ok(false)
                        }
                        // Another write came in between: this request's changes go on top
                        // of its value.
                        Ok(Value::BulkString(current)) => {
                            let len = current.len();
                            let (state, tag) = layout::decode(&current).map_err(corrupt)?;
                            on_top_of(state, (tag, len), changes)
                        }
                        Ok(_) => {
                            return Err(corrupt(
                                "the conditional write returned an unexpected answer".into(),
                            ))
                        }
                        // A hash: a session of an earlier version under this id.
                        Err(err) if errors::is_wrong_type(&err) => Next::Hash,
                        Err(err) => return Err(self.error(&err)),
                    }
                }
            };
        }
        Err(StoreError::Unavailable {
            backend: NAME.into(),
            timed_out: false,
            message: format!(
                "{}: the session was changed by other writes {MERGE_TRIES} times while this write waited to rewrite it or remove its last keys (concurrent requests writing it); nothing was written, try again",
                self.location
            ),
        })
    }

    /// The common write: a request that loaded the session with this backend's version adds
    /// its records, with no script. One round trip of two commands: `APPEND`, `PEXPIRE`;
    /// `save` reads the answers.
    ///
    /// A logout still sticks, without a script's atomicity, because the records alone are no
    /// session: they start with `,` where a session starts with its `v1:` header, and every
    /// read takes such a value for an absent session (`layout::ORPHAN`). So when the session
    /// was deleted (or expired) since the load, the `APPEND` makes a key that no read
    /// returns as a session; `PEXPIRE` gives it an expiry in the same round trip (which is
    /// why this path needs `ttl`), and `delete_orphan`, called when the answers show it,
    /// removes it at once. The answers show it by the length the `APPEND` answers, which
    /// is odd exactly when it appended to a session (`layout::is_session_length`); an even
    /// one costs a second round trip that reads the header (`appended_to`): after a logout,
    /// or on a value written before lengths were kept odd.
    ///
    /// Measured against the `AMEND_LOADED` script it replaces (docs/benchmarks.md): Redis
    /// runs plain commands instead of a script (no Lua call, no argument copies). A
    /// `GETRANGE` of the header, the third command until the eleventh round, cost Redis
    /// about 0.25 µs per write and the client one more reply.
    fn append_request(&self, id: &SessionId, records: &[u8], ttl: Duration) -> Request {
        // Sized up front and no command `ignore`d (which allocates a set, and a second list
        // of the answers): this is every common write's request.
        let key = self.key(id);
        let command = |name: &str, args: usize, data: usize| {
            let mut cmd = redis::Cmd::with_capacity(args, name.len() + key.len() + data);
            cmd.arg(name).arg(&key);
            cmd
        };
        let mut pipe = redis::Pipeline::with_capacity(2);
        let mut append = command("APPEND", 3, records.len());
        append.arg(records);
        let mut expire = command("PEXPIRE", 3, 20);
        expire.arg(millis(ttl));
        // Not a transaction (`MULTI`/`EXEC`): measured, it cost Redis more than the script it
        // replaces (`EXEC` 1.0 µs per call) and, in that run, the server 2-3 µs more per write
        // (docs/benchmarks.md, the fifth round). The price: Redis replicates the two one by
        // one, so a failover that loses the `PEXPIRE` but keeps the `APPEND` can leave
        // records alone without an expiry: no session, a few bytes that stay.
        pipe.add_command(append).add_command(expire);
        Request::Pipe(pipe)
    }

    /// Whether the `APPEND` of `append_request` added to a session, when the length it
    /// answered was even: the header read now (`GETRANGE`). Records alone (this write's, or
    /// another's racing the same logout) are deleted; nothing means they were deleted
    /// already. Boxed, as every rare step of `save` (module docs, future sizes).
    ///
    /// One round trip after the `APPEND`, where the `GETRANGE` it replaces came in the same
    /// pipeline, which Redis runs back to back. The window that opens: a logout, this
    /// `APPEND` onto records alone, then a `create` of the same id (a move between stores,
    /// which undoes its create when it finds the logout) before this read, which then sees a
    /// session and answers "written" for records the `create` replaced. Nothing comes back
    /// that a logout removed; only this answer is wrong, in a race of three. (A hash that
    /// appeared meanwhile fails the read: a store error.)
    fn appended_to<'a>(
        &'a self,
        id: &'a SessionId,
    ) -> futures_util::future::BoxFuture<'a, Result<bool, StoreError>> {
        async move {
            let mut pipe = redis::pipe();
            pipe.cmd("GETRANGE").arg(self.key(id)).arg(0).arg(2);
            let (head,): (Vec<u8>,) = self.run(Request::Pipe(pipe)).await?;
            match head.as_slice() {
                b"v1:" => Ok(true),
                head if layout::is_orphan(head) => {
                    self.delete_orphan(id).await?;
                    Ok(false)
                }
                // Deleted again in between (by another write's `DEL`).
                [] => Ok(false),
                // A string of another program, appended to as the `AMEND_LOADED` script did.
                _ => Err(corrupt(layout::NOT_OURS.into())),
            }
        }
        .boxed()
    }

    /// `create`'s write, under the header tag `tag` when given (a move's copy carries the
    /// move's token: `create_many_tagged`), else a fresh one. Not an `async fn`, like
    /// [`conditional_write`](Self::conditional_write): `create` awaits its future as its
    /// own, with no async layer more in between (future sizes, module docs).
    fn create_tagged<'a>(
        &'a self,
        id: &'a SessionId,
        state: &SessionState,
        ttl: Option<Duration>,
        tag: Option<u64>,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send + 'a {
        use futures_util::future::{ready, Either};
        let value = match checked_value(state, tag) {
            Ok(value) => value,
            Err(refused) => return Either::Left(ready(Err(refused))),
        };
        let entry = entry_of_state(self.index_key(), state);
        Either::Right(
            self.conditional_write(&scripts::CREATE_SCRIPT, id, ttl, entry, |call| {
                call.arg(value);
            }),
        )
    }

    /// `create_many` and `create_many_tagged`: each session under its tag when given, the
    /// pipeline sent as `delivery` says. On a cluster, where a batch's ids live on every
    /// master, one request per session: `create`'s, or, sent at most once, a pipeline of
    /// one (by the script's text, which caches it: a move is rare). A move's create that
    /// the cluster client sent again wrote its copy back after a logout (`redis_cluster.rs`
    /// `a_moves_create_sent_again_by_the_cluster_client_after_a_logout_leaves_nothing`).
    async fn create_batch(
        &self,
        sessions: &[(&SessionId, &SessionState, Option<Duration>, Option<u64>)],
        delivery: Delivery,
    ) -> Vec<Result<bool, StoreError>> {
        if !self.one_server() {
            return crate::backend::in_order(sessions, |session| match delivery {
                Delivery::Retried => {
                    let &(id, state, ttl, tag) = session;
                    self.create_tagged(id, state, ttl, tag).boxed()
                }
                Delivery::Once => async move {
                    // The pipeline below carries no index entry on a cluster (it lives in
                    // another slot): added first, as `conditional_write` does, or a moved
                    // session holding the indexed key is stored where no lookup finds it.
                    // A `ZADD` sent again renews the stamp only, so it may be retried.
                    let &(id, state, ..) = session;
                    if let Some(entry) = entry_of_state(self.index_key(), state) {
                        self.index_add(&entry, id).await?;
                    }
                    let mut answer = self
                        .pipelined_creates(std::slice::from_ref(session), delivery)
                        .await;
                    answer.pop().expect("one answer per session")
                }
                .boxed(),
            })
            .await;
        }
        self.pipelined_creates(sessions, delivery).await
    }

    /// [`create_batch`](Self::create_batch)'s sessions in one pipeline, to one server.
    async fn pipelined_creates(
        &self,
        sessions: &[(&SessionId, &SessionState, Option<Duration>, Option<u64>)],
        delivery: Delivery,
    ) -> Vec<Result<bool, StoreError>> {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        // A session whose values are not all JSON is refused on its own, not sent.
        let mut refused = Vec::new();
        let mut sent = Vec::new();
        for (i, &(id, state, ttl, tag)) in sessions.iter().enumerate() {
            match checked_value(state, tag) {
                Ok(value) => {
                    let entry = entry_of_state(self.index_key(), state);
                    let call =
                        self.write_call(&scripts::CREATE_SCRIPT, id, ttl, entry.as_ref(), |call| {
                            call.arg(value);
                        });
                    pipe.add_command(call.into_batch_cmd(sent.is_empty()));
                    sent.push(i);
                }
                Err(err) => refused.push((i, err)),
            }
        }
        let answers = self.int_answers_sent(pipe, sent.len(), delivery).await;
        let mut out: Vec<Option<Result<bool, StoreError>>> =
            (0..sessions.len()).map(|_| None).collect();
        for (i, answer) in sent.into_iter().zip(answers) {
            out[i] = Some(answer);
        }
        for (i, err) in refused {
            out[i] = Some(Err(err));
        }
        out.into_iter()
            .map(|answer| answer.expect("every session is sent or refused"))
            .collect()
    }

    /// The `RETIRE` script's call for `id` by the move `token` (`retire_many`): its marker
    /// holds the token. A logout's (`LOGGED_OUT_TOKEN`) also takes the place of another
    /// move's marker (`scripts.rs` `RETIRE`).
    fn retire_call(&self, id: &SessionId, token: u64) -> scripts::ScriptCall {
        let mut call = scripts::RETIRE_SCRIPT.call(self.key(id));
        call.arg(millis(crate::MOVED_MARKER_TTL))
            .arg(layout::moved_marker(token))
            .arg(layout::MOVED_PREFIX);
        if token == crate::backend::LOGGED_OUT_TOKEN {
            call.arg("1");
        }
        call
    }

    /// One id of `retire_many`, alone: on a cluster, where a batch's ids live on every
    /// master.
    async fn retire(&self, id: &SessionId, token: u64) -> Result<Retired, StoreError> {
        let answer: Value = self
            .run(Request::Script(self.retire_call(id, token)))
            .await?;
        retired(answer).ok_or_else(|| corrupt(UNEXPECTED_RETIRE.into()))
    }

    /// After a touching load or `touch` found records alone or a moved marker
    /// (`layout::ORPHAN`), which it answers as no session: gives them back the short expiry
    /// its touch replaced (`scripts::SHORTEN`). One round trip more, only then. Best effort:
    /// on failure they keep a session's expiry, which only costs memory.
    async fn shorten_orphan(&self, id: &SessionId) {
        let mut call = scripts::SHORTEN_SCRIPT.call(self.key(id));
        call.arg(millis(crate::MOVED_MARKER_TTL));
        if let Err(err) = self.run::<i64>(Request::Script(call)).await {
            tracing::debug!(error = %err, "redis: could not give a moved marker or a write's leftover records their short expiry back");
        }
    }

    /// Deletes the records that a write left after a logout (`layout::ORPHAN`), if they are
    /// still there: a script, since a `create` may have written a session over them since.
    async fn delete_orphan(&self, id: &SessionId) -> Result<(), StoreError> {
        let call = scripts::DEL_ORPHAN_SCRIPT.call(self.key(id));
        let _deleted: i64 = self.run(Request::Script(call)).await?;
        Ok(())
    }

    /// Writes `value` (empty: deletes) if the stored value is still the one `expected` (its
    /// tag and length), else adds `records` (if any) on top of what another write left
    /// (`scripts::ON_TOP`): the
    /// `SAVE` script, or for a large value on one server the staged write. Answers 1
    /// (written), 0 (absent) or the current value.
    async fn write_if_unchanged(
        &self,
        id: &SessionId,
        expected: (u64, usize),
        (value, records): (&[u8], &[u8]),
        ttl: Option<Duration>,
        entry: Option<&IndexName>,
    ) -> redis::RedisResult<Value> {
        if self.one_server() && value.len() >= STAGE_FROM {
            return self
                .staged_write(id, expected, (value, records), ttl, entry)
                .await;
        }
        let call = self.write_call(&scripts::SAVE_SCRIPT, id, ttl, entry, |call| {
            call.arg(layout::header(expected.0))
                .arg(value)
                .arg(expected.1)
                .arg(records);
        });
        self.send_raw::<Value>(&Request::Script(call), false).await
    }

    /// The stored value of a session (`GET`), from the master: what a write decides on.
    /// The client's error as it is, so a caller can tell a hash (`WRONGTYPE`).
    async fn current(&self, id: &SessionId) -> redis::RedisResult<Value> {
        let mut pipe = redis::pipe();
        pipe.cmd("GET").arg(self.key(id));
        let (value,) = self.send_raw(&Request::Pipe(pipe), false).await?;
        Ok(value)
    }

    /// Rewrites a session whose records have piled up, for the writes without a version
    /// (which cannot tell by themselves): read, and rewritten whole, keeping its expiry, if
    /// the records make it more than 1.25 times its size rewritten (at most 384 bytes more),
    /// plus 64 bytes (`piled_up`).
    /// Best effort: a write in between, or a failure, leaves it for the next time (logged,
    /// never the data).
    async fn compact(&self, id: &SessionId) {
        let found = match self.current(id).await {
            Ok(value) => self.stored::<SessionState>(value),
            Err(err) => Err(self.error(&err)),
        };
        let (state, tag, len) = match found {
            Ok(Some(found)) => found,
            Ok(None) => return,
            Err(err) => {
                tracing::debug!(error = %err, "redis: could not read a session to rewrite it");
                return;
            }
        };
        let entries: Vec<(&str, &str)> = state
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if !piled_up(len, &entries) {
            return;
        }
        let value = layout::encode(entries.iter().copied());
        if let Err(err) = self
            .write_if_unchanged(id, (tag, len), (&value, &[]), None, None)
            .await
        {
            tracing::debug!(error = %errors::shown(&err), "redis: could not rewrite a session");
        }
    }

    /// The conditional write of a large value (see `scripts.rs`, `COMMIT`): the value `SET`
    /// at a staging key and the script that moves it onto the session, in one pipeline
    /// (one round trip). Answers as the `SAVE` script does.
    async fn staged_write(
        &self,
        id: &SessionId,
        expected: (u64, usize),
        (value, records): (&[u8], &[u8]),
        ttl: Option<Duration>,
        entry: Option<&IndexName>,
    ) -> redis::RedisResult<Value> {
        // Under the session's key, so ACL key patterns and `SCAN`s of the prefix cover it;
        // a fresh name per write, so concurrent writers never share one.
        let staging = format!("{}:w:{:016x}", self.key(id), rand::random::<u64>());
        let commit = || {
            self.write_call_keys(
                &scripts::COMMIT_SCRIPT,
                id,
                vec![staging.clone()],
                ttl,
                entry,
                |call| {
                    call.arg(layout::header(expected.0))
                        .arg(expected.1)
                        .arg(records);
                },
            )
        };
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(&staging)
            .arg(value)
            .arg("PX")
            .arg(STAGING_MS)
            .ignore();
        pipe.add_command(commit().into_cmd());
        match self.send_raw::<(Value,)>(&Request::Pipe(pipe), false).await {
            // After a restart or `SCRIPT FLUSH`: the value is staged; the script goes by
            // text (`ScriptCall`'s fallback).
            Err(err) if errors::has_server_code(&err, "NOSCRIPT") => {
                self.send_raw(&Request::Script(commit()), false).await
            }
            reply => reply.map(|(value,)| value),
        }
    }

    /// `ZADD entry <now> <id>`: adds the id, or renews its stamp.
    fn index_add_cmd(&self, entry: &IndexName, id: &SessionId) -> redis::Cmd {
        let mut cmd = redis::cmd("ZADD");
        cmd.arg(self.index_entry_key(entry))
            .arg(crate::backend::now_ms())
            .arg(id.as_str());
        cmd
    }
}

#[async_trait]
impl SessionBackend for RedisBackend {
    async fn load(
        &self,
        id: &SessionId,
        touch: Option<Duration>,
    ) -> Result<Option<SessionState>, StoreError> {
        Ok(self
            .load_versioned(id, touch)
            .await?
            .map(|(state, _)| state))
    }

    async fn load_versioned(
        &self,
        id: &SessionId,
        touch: Option<Duration>,
    ) -> Result<Option<(SessionState, Version)>, StoreError> {
        self.load_as(id, touch, false).await
    }

    async fn load_in_place(
        &self,
        id: &SessionId,
        touch: Option<Duration>,
    ) -> Result<Option<(LoadedState, Version)>, StoreError> {
        self.load_as(id, touch, false).await
    }

    async fn load_versioned_from_primary(
        &self,
        id: &SessionId,
    ) -> Result<Option<(SessionState, Version)>, StoreError> {
        self.load_as(id, None, true).await
    }

    async fn load_with_ttl(
        &self,
        id: &SessionId,
    ) -> Result<Option<(SessionState, Option<Duration>)>, StoreError> {
        let key = self.key(id);
        let pipe = |first: &str| {
            let mut pipe = redis::pipe();
            pipe.cmd(first).arg(&key).cmd("PTTL").arg(&key);
            Request::Pipe(pipe)
        };
        // From the primary: the caller is about to move the session, and a lagging replica
        // could miss a logout.
        let got: redis::RedisResult<(Value, i64)> = self.send_raw(&pipe("GET"), false).await;
        let (state, pttl) = match got {
            Ok((value, pttl)) => (
                self.stored::<SessionState>(value)?.map(|(state, ..)| state),
                pttl,
            ),
            Err(err) if errors::is_wrong_type(&err) => {
                let (fields, pttl): (Value, i64) = self.run(pipe("HGETALL")).await?;
                (hash_state(fields)?, pttl)
            }
            Err(err) => return Err(self.error(&err)),
        };
        // -1: no expiry; -2 (gone in between) cannot come with a value.
        Ok(state.map(|state| (state, u64::try_from(pttl).ok().map(Duration::from_millis))))
    }

    async fn create(
        &self,
        id: &SessionId,
        state: &SessionState,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.create_tagged(id, state, ttl, None).await
    }

    async fn replace(
        &self,
        id: &SessionId,
        state: &SessionState,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        let value = checked_value(state, None)?;
        let entry = entry_of_state(self.index_key(), state);
        self.conditional_write(&scripts::REPLACE_SCRIPT, id, ttl, entry, |call| {
            call.arg(value);
        })
        .await
    }

    async fn apply(
        &self,
        id: &SessionId,
        changes: &Changes,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.save(id, first_without_version(changes), changes, ttl, true)
            .await
    }

    async fn apply_versioned(
        &self,
        id: &SessionId,
        version: Version,
        after: &[(&str, &str)],
        changes: &Changes,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        let first = match version.seen_by(self.origin) {
            // No key left: the session is deleted, if no write came in between.
            Seen::Tagged { tag, len } if after.is_empty() => Next::Write {
                expected: (tag, len),
                value: Vec::new(),
            },
            // Records that later ones override pile up, or a value written before lengths
            // were kept odd (`layout::is_session_length`): rewritten whole.
            Seen::Tagged { tag, len }
                if !layout::is_session_length(len) || needs_rewrite(len, changes, after) =>
            {
                Next::Write {
                    expected: (tag, len),
                    value: layout::encode(after.iter().copied()),
                }
            }
            Seen::Tagged { .. } => Next::Amend,
            Seen::Hash => Next::Hash,
            Seen::Unknown => first_without_version(changes),
        };
        let versionless = matches!(version.seen_by(self.origin), Seen::Unknown);
        self.save(id, first, changes, ttl, versionless).await
    }

    async fn touch(&self, id: &SessionId, ttl: Option<Duration>) -> Result<bool, StoreError> {
        Ok(match ttl {
            Some(ttl) => {
                // With the first byte: records alone (`layout::ORPHAN`) are no session.
                let request = {
                    let key = self.key(id);
                    let mut pipe = redis::pipe();
                    pipe.cmd("PEXPIRE").arg(&key).arg(millis(ttl));
                    pipe.cmd("GETRANGE").arg(&key).arg(0).arg(0);
                    Request::Pipe(pipe)
                };
                let answer = self.send_raw::<(i64, Vec<u8>)>(&request, false).await;
                drop(request);
                let (touched, orphan) = match answer {
                    Ok((set, head)) if layout::is_orphan(&head) => (false, set == 1),
                    Ok((set, _)) => (set == 1, false),
                    // A hash (a session of an earlier version), whose expiry was set.
                    Err(err) if errors::is_wrong_type(&err) => (true, false),
                    Err(err) => return Err(self.error(&err)),
                };
                // The request and the answer are dropped before this rare await: kept
                // across it, they took this future past the small-bin size (module docs).
                if orphan {
                    self.shorten_orphan(id).boxed().await;
                }
                touched
            }
            None => {
                let call = scripts::PERSIST_SCRIPT.call(self.key(id));
                self.run::<i64>(Request::Script(call)).await? == 1
            }
        })
    }

    async fn touch_tagged(
        &self,
        id: &SessionId,
        ttl: Option<Duration>,
        tag: u64,
    ) -> Result<bool, StoreError> {
        let mut call = scripts::CONFIRM_SCRIPT.call(self.key(id));
        call.arg(ttl_arg(ttl)).arg(layout::header(tag));
        Ok(self.run::<i64>(Request::Script(call)).boxed().await? == 1)
    }

    /// True only when a session was there: records alone and moved markers are removed
    /// too, and answer false (`scripts.rs` `DELETE`).
    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        let call = scripts::DELETE_SCRIPT.call(self.key(id));
        Ok(self.run::<i64>(Request::Script(call)).await? > 0)
    }

    // The batch forms: one pipeline per batch (one round trip) on one server. On a cluster
    // the ids of a batch live on every master: the single operations, concurrently.

    async fn load_many_with_ttl(
        &self,
        ids: &[SessionId],
    ) -> Vec<Result<Option<(SessionState, Option<Duration>)>, StoreError>> {
        if !self.one_server() {
            return crate::backend::in_order(ids, |id| self.load_with_ttl(id)).await;
        }
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for id in ids {
            let key = self.key(id);
            pipe.cmd("GET").arg(&key).cmd("PTTL").arg(&key);
        }
        let replies: Vec<Value> = match self.run(Request::Pipe(pipe)).await {
            Ok(replies) => replies,
            Err(err) => return ids.iter().map(|_| Err(err.clone())).collect(),
        };
        let mut replies = replies.into_iter();
        let mut answers = Vec::with_capacity(ids.len());
        // Sessions still in the hash layout: read in a second pipeline (one more round trip
        // for the batch, only when it holds any).
        let mut hashes = Vec::new();
        for id in ids {
            let value = replies.next().unwrap_or(Value::Nil);
            let pttl = replies.next().unwrap_or(Value::Nil);
            let answer = match value {
                Value::ServerError(err) if err.code() == "WRONGTYPE" => {
                    hashes.push((answers.len(), id));
                    Ok(None)
                }
                Value::ServerError(err) => Err(self.error(&RedisError::from(err))),
                value => self
                    .stored(value)
                    .map(|found| found.map(|(state, ..)| (state, left_of(&pttl)))),
            };
            answers.push(answer);
        }
        if hashes.is_empty() {
            return answers;
        }
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for (_, id) in &hashes {
            let key = self.key(id);
            pipe.cmd("HGETALL").arg(&key).cmd("PTTL").arg(&key);
        }
        let mut replies = match self.run::<Vec<Value>>(Request::Pipe(pipe)).await {
            Ok(replies) => replies.into_iter(),
            Err(err) => {
                for (i, _) in hashes {
                    answers[i] = Err(err.clone());
                }
                return answers;
            }
        };
        for (i, _) in hashes {
            let fields = replies.next().unwrap_or(Value::Nil);
            let pttl = replies.next().unwrap_or(Value::Nil);
            answers[i] = match fields {
                Value::ServerError(err) => Err(self.error(&RedisError::from(err))),
                fields => {
                    hash_state(fields).map(|found| found.map(|state| (state, left_of(&pttl))))
                }
            };
        }
        answers
    }

    async fn create_many(
        &self,
        sessions: &[(SessionId, SessionState, Option<Duration>)],
    ) -> Vec<Result<bool, StoreError>> {
        let sessions: Vec<_> = sessions
            .iter()
            .map(|(id, state, ttl)| (id, state, *ttl, None))
            .collect();
        self.create_batch(&sessions, Delivery::Retried).await
    }

    // Sent at most once (on a cluster through a connection that retries nothing:
    // `Cluster::run_once`). Sent again after a lost reply, a move's create wrote its copy
    // back, tag and all, where a logout through a process configured with the new store
    // alone had just removed it, and the move kept it for the copy another move's marker
    // named (a review's test,
    // `a_create_sent_again_after_a_vouching_move_and_a_logout_leaves_nothing`). A lost reply
    // is now an error: the move removes what it may have made and fails, the old store
    // untouched, and the next load moves the session again.
    async fn create_many_tagged(
        &self,
        sessions: &[(SessionId, SessionState, Option<Duration>, u64)],
    ) -> Vec<Result<bool, StoreError>> {
        let sessions: Vec<_> = sessions
            .iter()
            .map(|(id, state, ttl, tag)| (id, state, *ttl, Some(*tag)))
            .collect();
        self.create_batch(&sessions, Delivery::Once).await
    }

    async fn delete_many(&self, ids: &[SessionId]) -> Vec<Result<bool, StoreError>> {
        if !self.one_server() {
            return crate::backend::in_order(ids, |id| {
                let mut pipe = redis::pipe();
                pipe.cmd("DEL").arg(self.key(id));
                Box::pin(async move {
                    let (deleted,): (i64,) = self.run(Request::Pipe(pipe)).await?;
                    Ok(deleted > 0)
                })
            })
            .await;
        }
        // Plain `DEL`s: a count for bulk revokes, where records alone or a moved marker
        // count as removed (the single `delete` tells them apart, for renews).
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for id in ids {
            pipe.cmd("DEL").arg(self.key(id));
        }
        self.int_answers(pipe, ids.len()).await
    }

    async fn retire_many(&self, moves: &[(SessionId, u64)]) -> Vec<Result<Retired, StoreError>> {
        if !self.one_server() {
            return crate::backend::in_order(moves, |(id, token)| {
                Box::pin(self.retire(id, *token))
            })
            .await;
        }
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for (i, (id, token)) in moves.iter().enumerate() {
            pipe.add_command(self.retire_call(id, *token).into_batch_cmd(i == 0));
        }
        self.answers_as(pipe, moves.len(), Delivery::Retried, retired)
            .await
    }

    fn index_key(&self) -> Option<&str> {
        self.index_key.as_deref()
    }

    async fn index_add(&self, index: &IndexName, id: &SessionId) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        pipe.add_command(self.index_add_cmd(index, id)).ignore();
        self.run(Request::Pipe(pipe)).await
    }

    async fn index_members(
        &self,
        index: &IndexName,
        oldest: Option<usize>,
    ) -> Result<Vec<IndexMember>, StoreError> {
        // Scored by the time of the add: the first n are the oldest (`-1`: up to the last).
        let last = match oldest {
            Some(0) => return Ok(Vec::new()),
            Some(n) => i64::try_from(n).unwrap_or(i64::MAX) - 1,
            None => -1,
        };
        let mut pipe = redis::pipe();
        pipe.cmd("ZRANGE")
            .arg(self.index_entry_key(index))
            .arg(0)
            .arg(last)
            .arg("WITHSCORES");
        // From the primary, like every read that decides what to delete.
        let (members,): (Vec<(String, f64)>,) = self.run(Request::Pipe(pipe)).await?;
        Ok(members
            .into_iter()
            .filter_map(|(id, added_ms)| {
                Some(IndexMember {
                    // Anything else in the entry was not written by us: skipped.
                    id: SessionId::parse(&id).ok()?,
                    added_ms: added_ms as u64,
                })
            })
            .collect())
    }

    async fn index_remove(
        &self,
        index: &IndexName,
        members: &[IndexMember],
    ) -> Result<(), StoreError> {
        // Bounded calls: a long entry (years of logins never looked up) is removed in parts.
        for chunk in members.chunks(500) {
            let mut call = scripts::INDEX_REMOVE_SCRIPT.call(self.index_entry_key(index));
            for member in chunk {
                call.arg(member.id.as_str()).arg(member.added_ms);
            }
            let _: i64 = self.run(Request::Script(call)).await?;
        }
        Ok(())
    }

    async fn health(&self) -> Vec<BackendHealth> {
        match &self.nodes {
            Nodes::Standalone(_) => {}
            #[cfg(feature = "sentinel")]
            Nodes::Sentinel { resolver, .. } => return resolver.health(NAME).await,
            #[cfg(feature = "cluster")]
            Nodes::Cluster(cluster) => return cluster.health(NAME).await,
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

    fn place(&self, id: &SessionId) -> Option<String> {
        Some(
            [
                self.place_prefix.as_str(),
                self.prefix.as_str(),
                id.as_str(),
            ]
            .concat(),
        )
    }

    fn name(&self) -> &str {
        NAME
    }
}

/// A write without a version checks whether the session needs a rewrite each time its value
/// grows past a multiple of this many bytes: a read now and then, so that sessions written
/// only by such writes stay bounded too.
const COMPACT_EVERY: usize = 4096;

/// True when appending `added` bytes took the value to `len` bytes across a multiple of
/// [`COMPACT_EVERY`].
fn crossed(len: i64, added: usize) -> bool {
    let len = usize::try_from(len).unwrap_or(0);
    len / COMPACT_EVERY != len.saturating_sub(added) / COMPACT_EVERY
}

/// How many round trips one write may take. Adding records never conflicts; a rewrite or
/// a delete conditional on the version meets another write in between at most once before
/// it turns into adding records (or a delete that sees the newer value), so writes need
/// at most three. The bound caps what one request can cost when many write one session at
/// once (a hostile client can send as many as it likes): past it the write fails as
/// unavailable (503), and writes nothing.
const MERGE_TRIES: u32 = 32;

/// From this size on (bytes of the stored value), a write on one server stages the value
/// with a plain `SET` instead of passing it through Lua (`scripts.rs`, `COMMIT`): Lua costs
/// Redis about 1.2 µs per KB of argument, the staging about 1 µs in all.
const STAGE_FROM: usize = 1024;

/// The expiry of a staged value: the script that moves it runs right after it in the same
/// pipeline, so it only lingers when the connection broke in between.
const STAGING_MS: u64 = 10_000;

/// The next step of [`RedisBackend::save`].
enum Next {
    /// Add the changes' records to the stored value (`scripts.rs`, `AMEND`).
    Amend,
    /// Read the current value first: to tell whether removals leave no key.
    Read,
    /// Write `value` (empty: delete) if the stored value is still the one `expected`: its
    /// tag and its length (a rewrite changes the tag, an append the length).
    Write {
        expected: (u64, usize),
        value: Vec<u8>,
    },
    /// The session is a hash (the layout of earlier versions): the field-level write.
    Hash,
}

/// The first step of a write without a version: sets only are added at once (one round
/// trip); removals might leave no key, which only the current value tells, and a session
/// left with no keys is deleted.
fn first_without_version(changes: &Changes) -> Next {
    if changes.remove.is_empty() {
        Next::Amend
    } else {
        Next::Read
    }
}

/// The step after reading the value `state` (`expected`: its tag and length): the session is deleted when the
/// changes leave no key, and the changes are added otherwise.
fn on_top_of(mut state: SessionState, expected: (u64, usize), changes: &Changes) -> Next {
    changes.apply_to(&mut state);
    if state.is_empty() {
        Next::Write {
            expected,
            value: Vec::new(),
        }
    } else {
        Next::Amend
    }
}

/// True when the stored value of `len` bytes, with the records of `changes` added, would
/// be more than 1.25 times what the whole state `after` takes rewritten, at most
/// [`MAX_PILED`] more (plus 64 bytes, so a small session is not rewritten every write): the
/// write then rewrites it, so a load never parses, and Redis never keeps, much more than the
/// session. A rewrite costs about what a whole-session write of the peers does; with changes
/// of a tenth of the session it comes every third write, with small changes to a large
/// session far less often. (At 1.5 times plus 256 bytes, loads of a small session parsed
/// about 16 overridden records on average, a tenth of the request's CPU time:
/// docs/benchmarks.md.)
fn needs_rewrite(len: usize, changes: &Changes, after: &[(&str, &str)]) -> bool {
    piled_up(len + layout::records_len(changes), after)
}

/// The most bytes of overridden records (plus the 64 of [`piled_up`]) a large session keeps
/// before a write at a version rewrites it; writes without one check only every
/// [`COMPACT_EVERY`] bytes. A load parses every record (about 20 ns each, and the bytes); a
/// quarter of a 20 KB session let a counter's records pile up to 5 KB, about 200 of them per
/// load on average, which cost more than the rewrite they put off (sixth round,
/// docs/benchmarks.md); 1 KB still left a 20 KB session's one-key write parsing about 50
/// records per load, and 384 bytes made it 3-5% cheaper (192 no cheaper still; tenth
/// round).
const MAX_PILED: usize = 384;

/// True when a stored value of `len` bytes holding the state `after` should be rewritten:
/// the rule of [`needs_rewrite`], for a value as it is.
fn piled_up(len: usize, after: &[(&str, &str)]) -> bool {
    let whole = layout::encoded_len(after);
    len > whole + (whole / 4).min(MAX_PILED) + 64
}

/// The stored value of a whole state about to be created or replaced, its values checked:
/// embedded as is in the session's one string, a value that is not JSON would spoil the
/// whole session (where a hash field only spoiled itself), or forge keys (`1,"=b":2`).
fn checked_value(state: &SessionState, tag: Option<u64>) -> Result<Vec<u8>, StoreError> {
    refuse_unless_json(NAME, state)?;
    Ok(layout::encode_state(state, tag))
}

/// What a `PTTL` reply says is left of a session's lifetime (`None`: no expiry).
fn left_of(pttl: &Value) -> Option<Duration> {
    match pttl {
        Value::Int(ms) => u64::try_from(*ms).ok().map(Duration::from_millis),
        _ => None,
    }
}

/// A session in the hash layout (`HGETALL` reply): `None` when absent.
fn hash_state(fields: Value) -> Result<Option<SessionState>, StoreError> {
    let state = parse_hash(fields)?;
    if state.is_empty() {
        return Ok(None);
    }
    check_values_are_json(&state).map_err(corrupt)?;
    Ok(Some(state))
}

/// What a load reads a stored value into: a map ([`SessionState`]), or the value itself,
/// read in place ([`LoadedState`]).
trait Decoded: From<SessionState> + Send {
    /// The state of a stored value (a `GET` reply) and its header's tag.
    fn decode(bytes: Vec<u8>) -> Result<(Self, u64), layout::Invalid>;
    fn is_empty(&self) -> bool;
}

impl Decoded for SessionState {
    fn decode(bytes: Vec<u8>) -> Result<(Self, u64), layout::Invalid> {
        let decoded = layout::decode(&bytes);
        held_reply::release(bytes);
        decoded
    }

    fn is_empty(&self) -> bool {
        SessionState::is_empty(self)
    }
}

impl Decoded for LoadedState {
    /// Keeps the reply (handed on to `held_reply` when the state is dropped).
    fn decode(bytes: Vec<u8>) -> Result<(Self, u64), layout::Invalid> {
        layout::decode_in_place(bytes)
    }

    fn is_empty(&self) -> bool {
        LoadedState::is_empty(self)
    }
}

fn corrupt(detail: String) -> StoreError {
    StoreError::Corrupt {
        backend: NAME.into(),
        detail,
    }
}

/// Reads a session's stored value (a `GET` of its key), for tools that read Redis directly
/// (`sessionctl`): the state, or why the value is not a session (never the data). A key
/// holding a hash is a session in the layout of earlier versions: read it with `HGETALL`.
/// An empty state is no session: every key removed, or records alone, which a write left
/// after a logout and deletes right after (they start with `,`).
///
/// ```
/// use session_core::backends::redis::decode_value;
///
/// let stored = br#"v1:00000000000000ff:{"=user":"alice","=n":3,"=cart":[1],"-cart":0"#;
/// let state = decode_value(stored).unwrap();
/// assert_eq!(state["user"], r#""alice""#);
/// assert_eq!(state.len(), 2);
/// assert!(decode_value(b"some other value").is_err());
/// assert!(decode_value(br#","=user":"alice""#).unwrap().is_empty());
/// ```
pub fn decode_value(bytes: &[u8]) -> Result<SessionState, String> {
    if layout::is_orphan(bytes) {
        return Ok(SessionState::default());
    }
    layout::decode(bytes).map(|(state, _)| state)
}

/// True when a stored value is no session whatever follows: a move's marker (kept under the
/// old key for at most a minute) or records alone (left by a write after a logout), which
/// both start with `,` and which [`decode_value`] reads as an empty state. The first byte is
/// enough (`GETRANGE key 0 0`), for tools that count sessions without reading them
/// (`sessionctl stats`).
///
/// ```
/// use session_core::backends::redis::holds_no_session;
///
/// assert!(holds_no_session(b","));
/// assert!(!holds_no_session(b"v"));
/// assert!(!holds_no_session(b""));
/// ```
pub fn holds_no_session(first_bytes: &[u8]) -> bool {
    layout::is_orphan(first_bytes)
}

/// What a write that adds records was answered.
enum Amended {
    /// Added; the value's new length.
    Written(i64),
    /// `append_request` answered an even length: added to records alone, or to a value
    /// written before lengths were kept odd (`layout::is_session_length`); `appended_to`
    /// tells which.
    Unsure,
    /// The session is absent: deleted, or expired.
    Absent,
    /// The key holds a string that is not a session of ours.
    NotOurs,
}

/// Reads the answer of the `AMEND` scripts (the new length, 0 when absent, -1 when not
/// ours) or of `append_request` (the new length, odd when the `APPEND` added to a session,
/// `layout::is_session_length`; even, [`Amended::Unsure`]). A string of another program
/// that replaced the session since the load is appended to either way; it is reported
/// when the length comes out even (`appended_to` reads its header), and answered as
/// written when odd, as the `AMEND_LOADED` script always did. A `WRONGTYPE`
/// (a hash: the `APPEND` refused it before writing, and the `PEXPIRE` set the expiry that
/// the hash write sets too) is an error, for the caller. Read as the reply arrives rather
/// than kept as a `Value`: the result type is part of every future down to the connection's.
impl redis::FromRedisValue for Amended {
    fn from_redis_value(reply: Value) -> Result<Self, redis::ParsingError> {
        Ok(match reply {
            Value::Int(-1) => Amended::NotOurs,
            Value::Int(len) if len > 0 => Amended::Written(len),
            Value::Int(_) => Amended::Absent,
            // `APPEND`, `PEXPIRE` (`append_request`): the length decides.
            Value::Array(replies) => match replies.first() {
                Some(&Value::Int(len))
                    if usize::try_from(len).is_ok_and(layout::is_session_length) =>
                {
                    Amended::Written(len)
                }
                Some(Value::Int(_)) => Amended::Unsure,
                _ => Amended::NotOurs,
            },
            _ => Amended::NotOurs,
        })
    }
}

/// The `RETIRE` script's answer: 1 retired now, 2 this move's marker found, another move's
/// token (16 hex digits) for its marker, 0 nothing; `None` for anything else.
fn retired(answer: Value) -> Option<Retired> {
    Some(match answer {
        Value::Int(1) => Retired::Now,
        Value::Int(2) => Retired::Before,
        Value::Int(_) => Retired::Absent,
        // A marker whose token is not 16 hex digits is not one of ours: as good as no
        // session, which is what every read takes it for.
        Value::BulkString(token) => std::str::from_utf8(&token)
            .ok()
            .filter(|token| token.len() == 16)
            .and_then(|token| u64::from_str_radix(token, 16).ok())
            .map_or(Retired::Absent, Retired::Other),
        _ => return None,
    })
}

const UNEXPECTED_RETIRE: &str = "an unexpected answer to a moved session's retire";

/// Whether a request may be sent again on a fresh connection after it failed
/// ([`RedisBackend::send_once`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// Once more after a dropped connection (every request but a move's creates: they are
    /// idempotent, `connection.rs`).
    Retried,
    /// At most once: a move's creates.
    Once,
}

/// The scripts' `ARGV[1]`: expiry in milliseconds, 0 for none.
fn ttl_arg(ttl: Option<Duration>) -> u64 {
    ttl.map_or(0, millis)
}

fn push_pairs<'a>(
    call: &mut scripts::ScriptCall,
    pairs: impl Iterator<Item = (&'a String, &'a String)>,
) {
    for (field, value) in pairs {
        call.arg(field).arg(value);
    }
}

/// Reads an `HGETALL` reply (a flat array in RESP2, a map in RESP3) into a session (the hash
/// layout of earlier versions), insisting
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

/// Makes sure rustls has a crypto provider: redis-rs builds its TLS configuration with the
/// process default one, and pulls rustls in without choosing any. An application that
/// installed its own provider keeps it (the `Err` of `install_default` says just that).
fn install_crypto_provider() {
    #[cfg(feature = "tls")]
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The standalone address and credentials the plan makes of `config`.
    fn connection_info(config: &SessionConfig) -> Result<ConnectionInfo, ConfigError> {
        match config.plan()?.backend {
            BackendPlan::Redis(plan) => match plan.topology {
                Topology::Standalone(info) => Ok(info),
                #[allow(unreachable_patterns)]
                _ => panic!("a standalone plan"),
            },
            _ => panic!("a Redis plan"),
        }
    }

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

    /// The Redis plan of `config`.
    fn redis_plan(config: &SessionConfig) -> Box<RedisPlan> {
        match config.plan().unwrap().backend {
            BackendPlan::Redis(plan) => plan,
            _ => panic!("a Redis plan"),
        }
    }

    #[test]
    fn node_client_gives_any_address_the_plans_tls() {
        use redis::IntoConnectionInfo;
        let node = |addr: ConnectionAddr| {
            addr.into_connection_info()
                .unwrap()
                .set_redis_settings(redis::RedisConnectionInfo::default().set_password("hunter2"))
        };
        let plain = redis_plan(&SessionConfig::default());
        let client = plain
            .node_client(node(ConnectionAddr::Tcp("10.0.0.7".into(), 26379)))
            .unwrap();
        assert!(matches!(
            client.get_connection_info().addr(),
            ConnectionAddr::Tcp(_, 26379)
        ));
        #[cfg(feature = "tls")]
        {
            let tls = redis_plan(&SessionConfig {
                ssl: true,
                ssl_cert_reqs: Some("none".into()),
                ..SessionConfig::default()
            });
            let client = tls
                .node_client(node(ConnectionAddr::Tcp("10.0.0.7".into(), 26379)))
                .unwrap();
            assert!(matches!(
                client.get_connection_info().addr(),
                ConnectionAddr::TcpTls {
                    port: 26379,
                    insecure: true,
                    ..
                }
            ));
            assert_eq!(
                client.get_connection_info().redis_settings().password(),
                Some("hunter2")
            );
            assert!(!format!("{client:?}").contains("hunter2"));
            let err = tls
                .node_client(node(ConnectionAddr::Unix("/tmp/redis.sock".into())))
                .unwrap_err();
            assert!(err.to_string().contains("unix socket"), "{err}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
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
