//! The two connection strategies: a deadpool pool of multiplexed connections, or one
//! auto-reconnecting [`ConnectionManager`].
//!
//! Neither connects at construction. Both turn every failure into a [`RedisError`] so the
//! backend maps errors in one place.

use std::{
    io,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use deadpool::managed::{self, Metrics, Object, PoolError, RecycleResult};
use redis::{
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection},
    AsyncConnectionConfig, Client, ErrorKind, FromRedisValue, Pipeline, RedisError, RedisResult,
    ScriptInvocation,
};

/// One request of one store operation: always a single round trip (a pipeline of commands, or
/// one `EVALSHA`).
pub(super) enum Request<'a> {
    /// Commands sent together.
    Pipe(Pipeline),
    /// A script, by hash (`EVALSHA`); loaded with `SCRIPT LOAD` on `NOSCRIPT`, which happens
    /// once per script after a server restart or `SCRIPT FLUSH`.
    Script(ScriptInvocation<'a>),
}

impl Request<'_> {
    async fn send<T: FromRedisValue>(&self, conn: &mut impl ConnectionLike) -> RedisResult<T> {
        match self {
            Request::Pipe(pipe) => pipe.query_async(conn).await,
            Request::Script(invocation) => invocation.invoke_async(conn).await,
        }
    }
}

/// Creates pooled connections. Unlike `deadpool_redis::Manager`, recycling sends nothing: a
/// `PING` on every checkout would double the round trips of every operation. Dead connections
/// are dropped when they fail instead (see [`Connector::run`]).
pub(super) struct PoolManager {
    client: Client,
    config: AsyncConnectionConfig,
}

impl managed::Manager for PoolManager {
    type Type = MultiplexedConnection;
    type Error = RedisError;

    async fn create(&self) -> Result<MultiplexedConnection, RedisError> {
        self.client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await
    }

    async fn recycle(
        &self,
        _: &mut MultiplexedConnection,
        _: &Metrics,
    ) -> RecycleResult<RedisError> {
        Ok(())
    }
}

type Pool = managed::Pool<PoolManager>;

/// One [`ConnectionManager`], made on first use. It reconnects by itself after I/O errors; it
/// is replaced after an authentication failure, which it would otherwise keep returning forever
/// (its reconnect logic only covers I/O errors).
pub(super) struct Single {
    client: Client,
    config: ConnectionManagerConfig,
    current: Mutex<Option<ConnectionManager>>,
}

impl Single {
    fn get(&self) -> RedisResult<ConnectionManager> {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(manager) = current.as_ref() {
            return Ok(manager.clone());
        }
        // Lazy: nothing is connected until the first command awaits the connection.
        let manager = self
            .client
            .get_connection_manager_lazy(self.config.clone())?;
        *current = Some(manager.clone());
        Ok(manager)
    }

    fn reset(&self) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// Timeouts applied to every connection.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timeouts {
    pub(super) connect: Duration,
    pub(super) response: Duration,
}

/// The connection strategy in use.
pub(super) enum Connector {
    Pool(Pool),
    Single(Box<Single>),
}

impl Connector {
    pub(super) fn pool(client: Client, timeouts: Timeouts, max_size: usize) -> Self {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeouts.connect))
            .set_response_timeout(Some(timeouts.response));
        let pool = Pool::builder(PoolManager { client, config })
            .max_size(max_size)
            // A caller waits for a free connection at most as long as it would wait for an
            // answer: a pool stuck on a hung server fails instead of queueing forever.
            .wait_timeout(Some(timeouts.response))
            .create_timeout(Some(timeouts.connect))
            .recycle_timeout(Some(timeouts.response))
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .expect("a pool with a runtime and timeouts always builds");
        Connector::Pool(pool)
    }

    pub(super) fn single(client: Client, timeouts: Timeouts) -> Self {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeouts.connect))
            .set_response_timeout(Some(timeouts.response))
            // No retry loop inside a command: a dead server must fail the call at once.
            // Reconnecting is re-armed by every failed call, and `run` retries a refused
            // or dropped connection once, so recovery needs no extra failed call.
            .set_number_of_retries(0);
        Connector::Single(Box::new(Single {
            client,
            config,
            current: Mutex::new(None),
        }))
    }

    /// Sends one request, retrying once when the connection was found dropped or refused:
    /// after a server restart the first use of an old connection fails that way, and the
    /// retry runs on a fresh one. Timeouts are not retried (a hung server would double the
    /// wait).
    pub(super) async fn run<T: FromRedisValue>(&self, request: &Request<'_>) -> RedisResult<T> {
        match self.try_once(request).await {
            Err(err) if err.is_connection_dropped() => self.try_once(request).await,
            result => result,
        }
    }

    async fn try_once<T: FromRedisValue>(&self, request: &Request<'_>) -> RedisResult<T> {
        match self {
            Connector::Pool(pool) => {
                let mut conn = pool.get().await.map_err(pool_error)?;
                let result = request.send(&mut *conn).await;
                if let Err(err) = &result {
                    if is_broken(err) {
                        // Out of the pool: its slot is refilled with a fresh connection.
                        drop(Object::take(conn));
                        if err.is_connection_dropped() {
                            // The server most likely restarted: every idle connection is
                            // dead too, and each would fail one caller.
                            pool.retain(|_, _| false);
                        }
                    }
                }
                result
            }
            Connector::Single(single) => {
                let mut manager = single.get()?;
                let result = request.send(&mut manager).await;
                if let Err(err) = &result {
                    if err.kind() == ErrorKind::AuthenticationFailed {
                        single.reset();
                    }
                }
                result
            }
        }
    }
}

/// True when a connection that returned this error cannot be trusted again. Server replies
/// such as `WRONGTYPE` leave the connection in a clean state.
fn is_broken(err: &RedisError) -> bool {
    err.is_io_error() || err.is_unrecoverable_error()
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
