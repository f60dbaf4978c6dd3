//! The cloneable store handle that both framework crates share.

use std::{sync::Arc, time::Duration};

use crate::{
    backend::{BackendHealth, SessionBackend},
    backends,
    config::{ConfigError, SessionConfig},
    migration, Changes, SessionId, SessionState, StoreError,
};

/// How many fresh ids [`SessionStore::create`] tries before giving up. With 256-bit ids a
/// single collision is already astronomically unlikely; more than one means a broken backend.
const CREATE_TRIES: u32 = 3;

/// The session store: a backend plus the TTL rule, behind an `Arc`, cheap to clone.
///
/// # The TTL rule
/// Every write and every touch resolves the expiry to set on the stored session as follows:
///
/// 1. `session_redis_key_expire` above 0 wins: every write sets that TTL.
/// 2. Otherwise the TTL the framework supplies (actix-session's `max_age`/TTL, the axum
///    layer's expiry) applies.
/// 3. Otherwise the session is stored without expiry.
///
/// ```
/// use std::time::Duration;
/// use session_core::{SessionConfig, SessionStore};
///
/// let store = SessionStore::memory().with_key_expire(Some(Duration::from_secs(60)));
/// assert_eq!(store.effective_ttl(Some(Duration::from_secs(3600))), Some(Duration::from_secs(60)));
/// let store = SessionStore::memory();
/// assert_eq!(store.effective_ttl(Some(Duration::from_secs(3600))), Some(Duration::from_secs(3600)));
/// assert_eq!(store.effective_ttl(None), None);
/// ```
#[derive(Clone)]
pub struct SessionStore {
    backend: Arc<dyn SessionBackend>,
    key_expire: Option<Duration>,
}

impl std::fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStore")
            .field("backend", &self.backend.name())
            .field("key_expire", &self.key_expire)
            .finish()
    }
}

impl SessionStore {
    /// Wraps any backend. `key_expire` is unset: the framework's TTL applies.
    pub fn new(backend: impl SessionBackend) -> Self {
        Self {
            backend: Arc::new(backend),
            key_expire: None,
        }
    }

    /// An in-memory store, for tests and quick starts. Sessions vanish with the process.
    pub fn memory() -> Self {
        Self::new(backends::memory::MemoryBackend::new())
    }

    /// Sets the `session_redis_key_expire` rule: `Some` TTL overrides the framework's.
    pub fn with_key_expire(mut self, key_expire: Option<Duration>) -> Self {
        self.key_expire = key_expire.filter(|ttl| !ttl.is_zero());
        self
    }

    /// Builds the store the configuration describes: Redis in `redis` mode, Redis behind
    /// Sentinel in `sentinel` mode (see
    /// [`RedisBackend::sentinel_from_config`](backends::redis::RedisBackend::sentinel_from_config)),
    /// the file store when Redis is disabled, a partitioned pool with `session_redis_pool`
    /// ([`PoolBackend`](backends::pool::PoolBackend)) and backends with read / write / delete
    /// modes with `session_redis_multi_backends`
    /// ([`MultiBackend`](backends::multi::MultiBackend)); see [`backends::build`].
    ///
    /// Nothing is connected yet: a Redis server that is down at start-up gives errors on use
    /// (and health checks that say so) and the store recovers by itself once it is back.
    ///
    /// With `session_redis_migrate_from_filestore`, the file store's sessions are moved into
    /// Redis before this returns (see [`migration`]); when Redis is down the
    /// migration is retried in the background and the store is returned at once.
    pub async fn from_config(config: &SessionConfig) -> Result<Self, ConfigError> {
        let store = Self {
            backend: backends::build(config)?,
            key_expire: None,
        };
        let mut store = store.with_key_expire(config.key_expire_duration());
        if config.migrate_from_filestore {
            // Redis is the target here: `validate` refuses the migration in disabled mode.
            let from = backends::file::FileBackend::new(config.filestore_path())?
                .with_cleanup_interval(None);
            store.backend = migration::start(from, store.backend, store.key_expire).await;
        }
        Ok(store)
    }

    /// The expiry a write sets, given the framework's TTL (see [the TTL rule](Self#the-ttl-rule)).
    pub fn effective_ttl(&self, framework_ttl: Option<Duration>) -> Option<Duration> {
        self.key_expire
            .or(framework_ttl.filter(|ttl| !ttl.is_zero()))
    }

    /// The name of the backend in use, for logs.
    pub fn backend_name(&self) -> &str {
        self.backend.name()
    }

    /// Loads a session. `Ok(None)` when it does not exist or has expired.
    pub async fn load(&self, id: &SessionId) -> Result<Option<SessionState>, StoreError> {
        self.backend.load(id, None).await
    }

    /// Loads a session and resets its expiry in the same round trip (sliding expiry).
    pub async fn load_and_touch(
        &self,
        id: &SessionId,
        framework_ttl: Option<Duration>,
    ) -> Result<Option<SessionState>, StoreError> {
        self.backend
            .load(id, self.effective_ttl(framework_ttl))
            .await
    }

    /// Stores a new session under a fresh id and returns the id.
    ///
    /// An empty state is never written: the fresh id is returned and loads as no session,
    /// which is exactly what an empty session means.
    pub async fn create(
        &self,
        state: &SessionState,
        framework_ttl: Option<Duration>,
    ) -> Result<SessionId, StoreError> {
        if state.is_empty() {
            return Ok(SessionId::generate());
        }
        let ttl = self.effective_ttl(framework_ttl);
        for _ in 0..CREATE_TRIES {
            let id = SessionId::generate();
            if self.backend.create(&id, state, ttl).await? {
                return Ok(id);
            }
            tracing::warn!(
                backend = self.backend.name(),
                "fresh session id was taken; retrying with another"
            );
        }
        Err(StoreError::IdCollision {
            tries: CREATE_TRIES,
        })
    }

    /// Replaces the whole state of an existing session. Returns false, writing nothing, when
    /// it no longer exists (deleted by a logout, or expired). An empty state deletes it.
    pub async fn replace(
        &self,
        id: &SessionId,
        state: &SessionState,
        framework_ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        if state.is_empty() {
            return self.backend.delete(id).await;
        }
        self.backend
            .replace(id, state, self.effective_ttl(framework_ttl))
            .await
    }

    /// Applies field-level changes to an existing session. Returns false, writing nothing,
    /// when it no longer exists. Empty changes only touch the expiry.
    pub async fn apply(
        &self,
        id: &SessionId,
        changes: &Changes,
        framework_ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        let ttl = self.effective_ttl(framework_ttl);
        if changes.is_empty() && ttl.is_some() {
            return self.backend.touch(id, ttl).await;
        }
        // Empty changes without a TTL still go through `apply`: it answers whether the session
        // exists from the primary (a load might be served by a lagging replica).
        self.backend.apply(id, changes, ttl).await
    }

    /// Resets the expiry of an existing session. Returns false when it no longer exists.
    pub async fn touch(
        &self,
        id: &SessionId,
        framework_ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.backend
            .touch(id, self.effective_ttl(framework_ttl))
            .await
    }

    /// Deletes a session everywhere. Returns whether it existed.
    pub async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        self.backend.delete(id).await
    }

    /// Checks every backend, for health endpoints.
    pub async fn health(&self) -> Vec<BackendHealth> {
        self.backend.health().await
    }
}
