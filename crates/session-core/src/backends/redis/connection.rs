//! The two connection strategies: a deadpool pool of multiplexed connections, or one shared
//! multiplexed connection made on first use and remade after it broke.
//!
//! Neither connects at construction. Both turn every failure into a [`RedisError`] so the
//! backend maps errors in one place.
//!
//! # One way to connect
//! Every connection, pooled or single, first or after a reconnect, is made by
//! [`Connect::connect`]: it asks the [`Target`] for the client of the server to use, connects
//! with the timeouts, then sends `CLIENT SETNAME` when a client name is configured (redis-rs
//! has no client-name setting, and its `ConnectionManager` would lose the name on reconnect).
//!
//! # The `Target` hook (for Sentinel)
//! [`Target::client`] is asked for a client on every new connection; [`Target::invalidate`] is
//! called whenever a request failed in a way that means "this may be the wrong server now": a
//! dropped or refused connection, or a `READONLY` reply (a master demoted to replica by a
//! failover). A fixed address ignores it; a Sentinel target will forget the master it resolved
//! so the next connection asks the sentinels again. After such a failure the connection is
//! dropped and the request retried once (see [`Connector::run`]).

use std::{
    io,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, PoisonError,
    },
    time::{Duration, Instant},
};

use super::scripts::ScriptCall;
#[cfg(feature = "sentinel")]
use super::sentinel::Sentinel;
use crate::plan::{ConnectionPlan, Strategy};
use deadpool::managed::{self, Metrics, Object, PoolError, RecycleError, RecycleResult};
use futures_util::{
    future::{BoxFuture, Shared},
    FutureExt,
};
use redis::{
    aio::{ConnectionLike, MultiplexedConnection},
    AsyncConnectionConfig, Client, FromRedisValue, Pipeline, RedisError, RedisResult,
};

/// One request of one store operation: always a single round trip (a pipeline of commands, or
/// one `EVALSHA`).
pub(super) enum Request {
    /// Commands sent together.
    Pipe(Pipeline),
    /// A script, by hash (`EVALSHA`); sent by text (`EVAL`) on `NOSCRIPT`, which happens
    /// once per script and node after a server restart or `SCRIPT FLUSH`.
    Script(ScriptCall),
}

impl Request {
    pub(super) async fn send<T: FromRedisValue>(
        &self,
        conn: &mut (impl ConnectionLike + Send),
    ) -> RedisResult<T> {
        match self {
            Request::Pipe(pipe) => pipe.query_async(conn).await,
            Request::Script(call) => call.send(conn).await,
        }
    }
}

/// Which server new connections go to.
pub(super) enum Target {
    /// Always the same address (standalone mode).
    Fixed(Box<Client>),
    /// The master the sentinels report (sentinel mode).
    #[cfg(feature = "sentinel")]
    SentinelMaster(Arc<Sentinel>),
    /// A replica the sentinels report, for reads (`sentinel_read_from_replicas`).
    #[cfg(feature = "sentinel")]
    SentinelReplica(Arc<Sentinel>),
}

impl Target {
    /// The client to open the next connection with. Async so that a Sentinel target can ask
    /// the sentinels here.
    async fn client(&self) -> RedisResult<Client> {
        match self {
            Target::Fixed(client) => Ok((**client).clone()),
            // Boxed: the resolution's future is deep, and inlining it into every request's
            // future overflows the compiler's layout depth.
            #[cfg(feature = "sentinel")]
            Target::SentinelMaster(sentinel) => sentinel.master_client().boxed().await,
            #[cfg(feature = "sentinel")]
            Target::SentinelReplica(sentinel) => sentinel.replica_client().boxed().await,
        }
    }

    /// A request failed in a way that suggests the server behind this target changed (dropped
    /// or refused connection, `READONLY`). Nothing to forget for a fixed address.
    fn invalidate(&self) {
        match self {
            Target::Fixed(_) => {}
            #[cfg(feature = "sentinel")]
            Target::SentinelMaster(sentinel) => sentinel.invalidate_master(),
            #[cfg(feature = "sentinel")]
            Target::SentinelReplica(sentinel) => sentinel.invalidate_replica(),
        }
    }

    /// When the server behind this target last changed: connections made before are stale
    /// and are dropped instead of used. After a planned failover the old master keeps
    /// accepting writes (which the failover then throws away) until the sentinels demote
    /// it, seconds later; this is what keeps those writes from going there. For a replica
    /// target, asking also starts, when due, the background lookup that moves reads that
    /// went to the master for want of a replica back to one (see
    /// `Sentinel::replica_changed_at`): otherwise they stayed there for good.
    fn changed_at(&self) -> Option<Instant> {
        match self {
            Target::Fixed(_) => None,
            #[cfg(feature = "sentinel")]
            Target::SentinelMaster(sentinel) => sentinel.master_changed_at(),
            #[cfg(feature = "sentinel")]
            Target::SentinelReplica(sentinel) => sentinel.replica_changed_at(),
        }
    }

    fn is_stale(&self, created: Instant) -> bool {
        self.changed_at().is_some_and(|changed| created < changed)
    }
}

/// Makes connections: the one place where they are opened (see the module docs).
pub(super) struct Connect {
    target: Target,
    config: AsyncConnectionConfig,
    client_name: Option<String>,
}

impl Connect {
    async fn connect(&self) -> RedisResult<MultiplexedConnection> {
        let client = self.target.client().await?;
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await?;
        if let Some(name) = &self.client_name {
            redis::cmd("CLIENT")
                .arg("SETNAME")
                .arg(name)
                .query_async::<()>(&mut conn)
                .await?;
        }
        Ok(conn)
    }
}

/// Creates pooled connections. Unlike `deadpool_redis::Manager`, recycling sends nothing on a
/// connection used recently: a `PING` on every checkout would double the round trips of every
/// operation. Dead connections are dropped when they fail instead (see [`Connector::run`]);
/// with a health-check interval, a connection idle for longer is `PING`ed at checkout.
pub(super) struct PoolManager {
    connect: Arc<Connect>,
    health_check_interval: Option<Duration>,
}

impl managed::Manager for PoolManager {
    type Type = MultiplexedConnection;
    type Error = RedisError;

    async fn create(&self) -> Result<MultiplexedConnection, RedisError> {
        // Boxed: deadpool's checkout future holds this one, and every request's holds that
        // (see `RedisBackend`'s module docs on future sizes).
        self.connect.connect().boxed().await
    }

    async fn recycle(
        &self,
        conn: &mut MultiplexedConnection,
        metrics: &Metrics,
    ) -> RecycleResult<RedisError> {
        if self.connect.target.is_stale(metrics.created) {
            return Err(RecycleError::message(
                "connected to a server this target no longer uses",
            ));
        }
        // `last_used` counts from the previous checkout: a connection busy with one request
        // after another is never checked.
        if let Some(interval) = self.health_check_interval {
            if metrics.last_used() > interval {
                // A failure makes deadpool drop this connection and try the next idle one,
                // or create a new one: the caller never gets the dead connection.
                redis::cmd("PING")
                    .query_async::<()>(conn)
                    .await
                    .map_err(RecycleError::Backend)?;
            }
        }
        Ok(())
    }
}

type Pool = managed::Pool<PoolManager>;

type Connecting = Shared<BoxFuture<'static, RedisResult<MultiplexedConnection>>>;

/// The shared connection of the single strategy, or its connection attempt in flight.
struct Slot {
    connection: Connecting,
    /// When the attempt started: a slot older than the target's last change is stale.
    created: Instant,
    /// Milliseconds since [`Single::epoch`] at the last use.
    last_used: Arc<AtomicU64>,
}

/// One multiplexed connection shared by every caller, made on first use. Concurrent callers
/// wait for the same connection attempt (and share its error). It is dropped after an I/O or
/// unrecoverable error, or a failed health check, so the next call connects again.
pub(super) struct Single {
    connect: Arc<Connect>,
    health_check_interval: Option<Duration>,
    epoch: Instant,
    current: Mutex<Option<Slot>>,
}

impl Single {
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The current slot, starting a connection attempt when there is none.
    fn slot(&self) -> (Connecting, Arc<AtomicU64>) {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if current
            .as_ref()
            .is_some_and(|slot| self.connect.target.is_stale(slot.created))
        {
            *current = None;
        }
        let slot = current.get_or_insert_with(|| {
            let connect = Arc::clone(&self.connect);
            Slot {
                created: Instant::now(),
                connection: async move { connect.connect().await }.boxed().shared(),
                last_used: Arc::new(AtomicU64::new(self.now())),
            }
        });
        (slot.connection.clone(), Arc::clone(&slot.last_used))
    }

    /// Forgets `used` if it is still the current connection (a concurrent caller may have
    /// replaced it already).
    fn drop_connection(&self, used: &Connecting) {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if current
            .as_ref()
            .is_some_and(|slot| Shared::ptr_eq(&slot.connection, used))
        {
            *current = None;
        }
    }

    /// A connection ready for one request, with the attempt it came from (to drop it if the
    /// request breaks it).
    async fn get(&self) -> RedisResult<(MultiplexedConnection, Connecting)> {
        let (connecting, last_used) = self.slot();
        let conn = match connecting.clone().await {
            Ok(conn) => conn,
            Err(err) => {
                self.drop_connection(&connecting);
                return Err(err);
            }
        };
        let previous = last_used.swap(self.now(), Ordering::Relaxed);
        let Some(interval) = self.health_check_interval else {
            return Ok((conn, connecting));
        };
        // Only the caller that swapped out the stale time checks; the others go on.
        if Duration::from_millis(self.now().saturating_sub(previous)) <= interval {
            return Ok((conn, connecting));
        }
        // Boxed: rare, and inline it would grow every request's future (see
        // `RedisBackend`'s module docs on future sizes).
        self.checked(conn, connecting).boxed().await
    }

    /// `conn` after a `PING`, or a new connection when the `PING` fails.
    async fn checked(
        &self,
        conn: MultiplexedConnection,
        connecting: Connecting,
    ) -> RedisResult<(MultiplexedConnection, Connecting)> {
        let mut checked = conn.clone();
        match redis::cmd("PING").query_async::<()>(&mut checked).await {
            Ok(()) => Ok((conn, connecting)),
            Err(err) => {
                tracing::debug!(error = %super::errors::shown(&err), "redis health check failed; reconnecting");
                self.drop_connection(&connecting);
                let (connecting, _) = self.slot();
                let conn = connecting.clone().await.inspect_err(|_| {
                    self.drop_connection(&connecting);
                })?;
                Ok((conn, connecting))
            }
        }
    }
}

/// The connection strategy in use.
pub(super) enum Connector {
    Pool {
        pool: Pool,
        connect: Arc<Connect>,
        retry_on_timeout: bool,
    },
    Single {
        single: Box<Single>,
        retry_on_timeout: bool,
    },
}

fn connect(target: Target, options: &ConnectionPlan) -> Arc<Connect> {
    Arc::new(Connect {
        target,
        config: AsyncConnectionConfig::new()
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(Some(options.socket_timeout)),
        client_name: options.client_name.clone(),
    })
}

impl Connector {
    /// The plan's strategy: a pool, or the single shared connection.
    pub(super) fn new(target: Target, options: &ConnectionPlan) -> Self {
        match options.strategy {
            Strategy::Pool { max_size } => Self::pool(target, options, max_size.max(1)),
            Strategy::Single => Self::single(target, options),
        }
    }

    fn pool(target: Target, options: &ConnectionPlan, max_size: usize) -> Self {
        let connect = connect(target, options);
        let manager = PoolManager {
            connect: Arc::clone(&connect),
            health_check_interval: options.health_check_interval,
        };
        let pool = Pool::builder(manager)
            .max_size(max_size)
            // A caller waits for a free connection at most as long as it would wait for an
            // answer: a pool stuck on a hung server fails instead of queueing forever.
            .wait_timeout(Some(options.socket_timeout))
            // Connecting includes CLIENT SETNAME: one connect plus one answer.
            .create_timeout(Some(options.connect_timeout + options.socket_timeout))
            .recycle_timeout(Some(options.socket_timeout))
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .expect("a pool with a runtime and timeouts always builds");
        Connector::Pool {
            pool,
            connect,
            retry_on_timeout: options.retry_on_timeout,
        }
    }

    fn single(target: Target, options: &ConnectionPlan) -> Self {
        Connector::Single {
            single: Box::new(Single {
                connect: connect(target, options),
                health_check_interval: options.health_check_interval,
                epoch: Instant::now(),
                current: Mutex::new(None),
            }),
            retry_on_timeout: options.retry_on_timeout,
        }
    }

    /// Sends one request, retrying it once on a fresh connection when the connection was
    /// found dropped or refused (after a server restart the first use of an old connection
    /// fails that way), when the server answered `READONLY` (a failover demoted it), and,
    /// with `retry_on_timeout`, after a timeout. Without that option timeouts are not
    /// retried: a hung server would double the wait.
    ///
    /// Retrying is safe because every store request is idempotent: sent twice with the same
    /// arguments, it leaves the same state and gives the same answer (`create` included, see
    /// `scripts.rs`).
    pub(super) async fn run<T: FromRedisValue>(&self, request: &Request) -> RedisResult<T> {
        match self.try_once(request).await {
            Err(err) if self.should_retry(&err) => {
                tracing::debug!(error = %super::errors::shown(&err), "redis request failed; retrying once");
                self.try_once(request).await
            }
            result => result,
        }
    }

    /// [`run`](Self::run) without the retry: for a request that must not run twice (a
    /// move's create, whose resend could write its copy back after a logout removed it: see
    /// `RedisBackend::create_many_tagged`). A dropped connection is then an error, even when
    /// the request never left.
    pub(super) async fn run_once<T: FromRedisValue>(&self, request: &Request) -> RedisResult<T> {
        self.try_once(request).await
    }

    fn should_retry(&self, err: &RedisError) -> bool {
        let retry_on_timeout = match self {
            Connector::Pool {
                retry_on_timeout, ..
            }
            | Connector::Single {
                retry_on_timeout, ..
            } => *retry_on_timeout,
        };
        err.is_connection_dropped()
            || is_readonly(err)
            || (self.follows_sentinel() && err.is_connection_refusal())
            || (retry_on_timeout && err.is_timeout())
    }

    /// A refused connection is worth one retry only when the retry may go elsewhere: after
    /// the invalidation, a Sentinel target asks the sentinels again.
    fn follows_sentinel(&self) -> bool {
        let connect = match self {
            Connector::Pool { connect, .. } => connect,
            Connector::Single { single, .. } => &single.connect,
        };
        !matches!(connect.target, Target::Fixed(_))
    }

    async fn try_once<T: FromRedisValue>(&self, request: &Request) -> RedisResult<T> {
        match self {
            Connector::Pool { pool, connect, .. } => {
                // Boxed: the checkout's future (timeouts, recycle) would double the size of
                // every operation's. With the pool strategy that is one allocation more per
                // operation, of about 800 bytes, where the operation's own was twice that.
                let mut conn = match pool.get().boxed().await {
                    Ok(conn) => conn,
                    Err(err) => {
                        let err = pool_error(err);
                        if wrong_server(&err) {
                            connect.target.invalidate();
                        }
                        return Err(err);
                    }
                };
                let result = request.send(&mut *conn).await;
                if let Err(err) = &result {
                    if is_broken(err) {
                        // Out of the pool: its slot is refilled with a fresh connection.
                        drop(Object::take(conn));
                        if wrong_server(err) {
                            connect.target.invalidate();
                            // The server most likely restarted or changed: every idle
                            // connection is dead or wrong too, and each would fail one caller.
                            pool.retain(|_, _| false);
                        }
                    }
                }
                result
            }
            Connector::Single { single, .. } => {
                let (mut conn, connecting) = match single.get().await {
                    Ok(got) => got,
                    Err(err) => {
                        if wrong_server(&err) {
                            single.connect.target.invalidate();
                        }
                        return Err(err);
                    }
                };
                let result = request.send(&mut conn).await;
                if let Err(err) = &result {
                    if is_broken(err) {
                        single.drop_connection(&connecting);
                        if wrong_server(err) {
                            single.connect.target.invalidate();
                        }
                    }
                }
                result
            }
        }
    }
}

/// True when a connection that returned this error cannot be trusted again. Server replies
/// such as `WRONGTYPE` leave the connection in a clean state; `READONLY` means it is connected
/// to a replica. A response timeout is an I/O error to redis-rs, so it counts: a connection
/// gone silent without a FIN or RST (a NAT entry dropped) would otherwise keep failing every
/// request until the kernel gives up on it, about 15 minutes later (`redis_backend.rs`
/// `a_connection_gone_silent_is_replaced_after_a_timeout`). The cost on a server that is only
/// slow: one new connection per timeout.
fn is_broken(err: &RedisError) -> bool {
    err.is_io_error() || err.is_unrecoverable_error() || is_readonly(err)
}

/// True when the error suggests the target's server changed (see [`Target::invalidate`]).
fn wrong_server(err: &RedisError) -> bool {
    err.is_connection_dropped() || err.is_connection_refusal() || is_readonly(err)
}

/// `READONLY`, directly or as one entry of a pipeline.
fn is_readonly(err: &RedisError) -> bool {
    super::errors::has_server_code(err, "READONLY")
}

fn pool_error(err: PoolError<RedisError>) -> RedisError {
    match err {
        PoolError::Backend(err) => err,
        PoolError::Timeout(what) => io::Error::new(
            io::ErrorKind::TimedOut,
            format!("timed out waiting for a pooled connection ({what:?})"),
        )
        .into(),
        other => io::Error::other(other.to_string()).into(),
    }
}
