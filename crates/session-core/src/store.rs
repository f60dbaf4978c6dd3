//! The cloneable store handle that both framework crates share.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use futures_util::{
    future::{BoxFuture, Shared},
    FutureExt,
};

#[cfg(feature = "file")]
use crate::migration;
use crate::{
    backend::now_ms,
    backends,
    index::{entry_of_changes, entry_of_state, INDEX_GRACE},
    observe::Observed,
    plan::{FilePlan, Plan},
    BackendHealth, Changes, ConfigError, IndexMember, IndexName, LoadedState, SessionBackend,
    SessionConfig, SessionId, SessionState, StoreError, TtlRule, Version,
};

/// How many fresh ids [`SessionStore::create`] tries before giving up. With 256-bit ids a
/// single collision is already astronomically unlikely; more than one means a broken backend.
const CREATE_TRIES: u32 = 3;

/// One write in this many that sets the indexed key prunes the stale names of its index
/// entry (see [`SessionStore::find_indexed`]), at most [`PRUNE_BATCH`] of its oldest: an
/// entry's stale names stay bounded by the adds of the last [`INDEX_GRACE`] and what the
/// prunes have not reached yet, at the cost of one bounded index read per this many logins.
const PRUNE_ONE_IN: u32 = 16;
/// How many of an entry's oldest names one background prune checks: its cost stays bounded
/// however large the entry (a value many sessions share, such as a `role`, or a burst of
/// logins), while the oldest names, the likeliest stale, go first.
const PRUNE_BATCH: usize = 256;
/// Sessions read per pipelined round trip when an index lookup checks the sessions it names.
const LOOKUP_BATCH: usize = 1000;
/// The most reads of its entry one [`SessionStore::delete_indexed`] makes: it reads again
/// after its deletes, for the new ids of renews that raced it, until a read finds nothing
/// new. A renew needs its request's round trip; a read and its deletes take two of Redis',
/// so a second read nearly always ends it, and a client that renews in a loop cannot keep
/// it running.
pub const DELETE_INDEXED_PASSES: usize = 8;

/// The session store: a backend plus the [TTL rule](TtlRule), behind an `Arc`, cheap to
/// clone.
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
    ttl: TtlRule,
    /// `session_redis_max_session_size`; `None`: unlimited.
    max_size: Option<usize>,
    /// The last health check and when it started: shared by every caller that asks while it
    /// runs or within [`HEALTH_REUSE`] of its start.
    health_check: Arc<Mutex<Option<(HealthCheck, Instant)>>>,
}

/// One health check, awaited by every caller that asked while it ran.
type HealthCheck = Shared<BoxFuture<'static, Vec<BackendHealth>>>;

/// How long a health check's answer is given to later callers. Long enough that an endpoint
/// polled in a loop costs at most one check per second (a Sentinel check opens a connection
/// to every sentinel), short against any probe period (Kubernetes' default is 10 s).
pub const HEALTH_REUSE: Duration = Duration::from_secs(1);

impl std::fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStore")
            .field("backend", &self.backend.name())
            .field("ttl", &self.ttl)
            .field("max_size", &self.max_size)
            .finish()
    }
}

impl SessionStore {
    /// Wraps any backend. `key_expire` is unset (the framework's TTL applies) and sessions
    /// have no size limit; [`from_config`](Self::from_config) applies both options.
    pub fn new(backend: impl SessionBackend) -> Self {
        Self {
            backend: Arc::new(backend),
            ttl: TtlRule::default(),
            max_size: None,
            health_check: Arc::default(),
        }
    }

    /// An in-memory store, for tests and quick starts. Sessions vanish with the process.
    pub fn memory() -> Self {
        Self::new(backends::memory::MemoryBackend::new())
    }

    /// Sets the `session_redis_key_expire` rule: `Some` TTL overrides the framework's.
    pub fn with_key_expire(mut self, key_expire: Option<Duration>) -> Self {
        self.ttl = TtlRule::new(key_expire);
        self
    }

    /// Sets `session_redis_max_session_size`: a write that would leave a session holding more
    /// bytes (keys plus JSON values) fails with [`StoreError::TooLarge`] and writes nothing.
    /// `None` (or 0): unlimited.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use session_core::{SessionState, SessionStore};
    ///
    /// let store = SessionStore::memory().with_max_session_size(Some(16));
    /// let big = SessionState::from([("user".to_owned(), "\"a long user name\"".to_owned())]);
    /// assert!(store.create(&big, None).await.unwrap_err().is_too_large());
    /// # });
    /// ```
    pub fn with_max_session_size(mut self, limit: Option<usize>) -> Self {
        self.max_size = limit.filter(|l| *l > 0);
        self
    }

    /// Checks a session's whole state against `session_redis_max_session_size`. `create` and
    /// `replace` check by themselves; a caller of [`apply`](Self::apply), which only sees
    /// the changes, checks the state they lead to first (both framework adapters do).
    pub fn check_size(&self, state: &SessionState) -> Result<(), StoreError> {
        self.check(state.iter())
    }

    /// [`check_size`](Self::check_size) of a state given as its entries, for a caller that
    /// holds it in more than one map (the axum layer: the keys, plus an expiry entry added at
    /// write time), so that checking needs no copy of the session.
    ///
    /// ```
    /// use session_core::{SessionState, SessionStore};
    ///
    /// let store = SessionStore::memory().with_max_session_size(Some(16));
    /// let keys = SessionState::from([("user".to_owned(), "\"alice\"".to_owned())]);
    /// let expiry = ("_expiry".to_owned(), "\"a long expiry entry\"".to_owned());
    /// assert!(store.check_size_of(keys.iter()).is_ok());
    /// let with_expiry = keys.iter().chain(std::iter::once((&expiry.0, &expiry.1)));
    /// assert!(store.check_size_of(with_expiry).unwrap_err().is_too_large());
    /// ```
    pub fn check_size_of<K: AsRef<str>, V: AsRef<str>>(
        &self,
        entries: impl Iterator<Item = (K, V)>,
    ) -> Result<(), StoreError> {
        self.check(entries)
    }

    fn check<K: AsRef<str>, V: AsRef<str>>(
        &self,
        entries: impl Iterator<Item = (K, V)>,
    ) -> Result<(), StoreError> {
        let Some(limit) = self.max_size else {
            return Ok(());
        };
        let size = entries
            .map(|(k, v)| k.as_ref().len() + v.as_ref().len())
            .sum();
        if size > limit {
            return Err(StoreError::TooLarge { size, limit });
        }
        Ok(())
    }

    /// Builds the store the configuration describes (see [`SessionConfig::plan`] and
    /// [`from_plan`](Self::from_plan)): Redis in `redis` mode, Redis behind Sentinel in
    /// `sentinel` mode, a Redis Cluster in `cluster` mode, the file store when Redis is
    /// disabled, a partitioned pool with `session_redis_pool` and backends with
    /// read / write / delete modes with `session_redis_multi_backends`.
    ///
    /// Nothing is connected yet: a Redis server that is down at start-up gives errors on use
    /// (and health checks that say so) and the store recovers by itself once it is back.
    pub async fn from_config(config: &SessionConfig) -> Result<Self, ConfigError> {
        Self::from_plan(config.plan()?).await
    }

    /// Builds the store of a plan. With `migrate_from` (`session_redis_migrate_from_filestore`),
    /// the file store's sessions are moved into the backend before this returns (see
    /// [`migration`]); when the backend is down the migration is retried in the background
    /// and the store is returned at once.
    pub async fn from_plan(plan: Plan) -> Result<Self, ConfigError> {
        // Every store built from a configuration is observed (spans, and metrics with the
        // `metrics` feature); one built with `new` is observed when its backend is wrapped.
        let backend: Arc<dyn SessionBackend> =
            Arc::new(Observed::new(backends::build(&plan.backend)?));
        let backend = match &plan.migrate_from {
            None => backend,
            Some(files) => migrate_first(files, backend, plan.ttl).await?,
        };
        Ok(Self {
            backend,
            ttl: plan.ttl,
            max_size: plan.max_session_size,
            health_check: Arc::default(),
        })
    }

    /// The expiry a write sets, given the framework's TTL (see [`TtlRule`]).
    pub fn effective_ttl(&self, framework_ttl: Option<Duration>) -> Option<Duration> {
        self.ttl.resolve(framework_ttl)
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

    /// [`load`](Self::load), with the [`Version`] of what was loaded: a request that will
    /// write the session loads it so, and hands the version back with its write
    /// ([`apply_versioned`](Self::apply_versioned)). Both framework layers do. On Redis the
    /// version is the random tag in the stored value's header (new with every rewrite) and the
    /// value's length (which every write of records grows).
    pub async fn load_versioned(
        &self,
        id: &SessionId,
    ) -> Result<Option<(SessionState, Version)>, StoreError> {
        self.backend.load_versioned(id, None).await
    }

    /// [`load_and_touch`](Self::load_and_touch), with the [`Version`] of what was loaded (see
    /// [`load_versioned`](Self::load_versioned)).
    pub async fn load_versioned_and_touch(
        &self,
        id: &SessionId,
        framework_ttl: Option<Duration>,
    ) -> Result<Option<(SessionState, Version)>, StoreError> {
        self.backend
            .load_versioned(id, self.effective_ttl(framework_ttl))
            .await
    }

    /// [`load_versioned`](Self::load_versioned), the state read in place: a
    /// [`LoadedState`] keeps what the backend read (on Redis, the reply) and finds keys and
    /// values in it, with no allocation per key (but for keys stored escaped). What the axum
    /// layer loads.
    ///
    /// ```
    /// use session_core::{SessionState, SessionStore};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let store = SessionStore::memory();
    /// let state = SessionState::from([("user".to_owned(), r#""ada""#.to_owned())]);
    /// let id = store.create(&state, None).await.unwrap();
    /// let (loaded, _version) = store.load_in_place(&id).await.unwrap().unwrap();
    /// assert_eq!(loaded.get("user"), Some(r#""ada""#));
    /// # })
    /// ```
    pub async fn load_in_place(
        &self,
        id: &SessionId,
    ) -> Result<Option<(LoadedState, Version)>, StoreError> {
        self.backend.load_in_place(id, None).await
    }

    /// [`load_versioned_and_touch`](Self::load_versioned_and_touch), the state read in place
    /// (see [`load_in_place`](Self::load_in_place)).
    pub async fn load_in_place_and_touch(
        &self,
        id: &SessionId,
        framework_ttl: Option<Duration>,
    ) -> Result<Option<(LoadedState, Version)>, StoreError> {
        self.backend
            .load_in_place(id, self.effective_ttl(framework_ttl))
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
        self.check_size(state)?;
        let ttl = self.effective_ttl(framework_ttl);
        for _ in 0..CREATE_TRIES {
            let id = SessionId::generate();
            if self.backend.create(&id, state, ttl).await? {
                self.now_and_then_prune(|| entry_of_state(self.backend.index_key(), state));
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

    /// Stores a new session under an id the caller chose, only if nothing is stored there yet:
    /// for adapters whose framework picks the id (tower-sessions' `create` hands the store a
    /// record with its id). Returns false, writing nothing, when the id is taken; the caller
    /// picks another.
    ///
    /// An empty state is never written (it would load as no session anyway): `Ok(true)`,
    /// nothing stored.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use session_core::{SessionId, SessionState, SessionStore};
    ///
    /// let store = SessionStore::memory();
    /// let id = SessionId::generate();
    /// let state = SessionState::from([("n".to_owned(), "1".to_owned())]);
    /// assert!(store.create_with_id(&id, &state, None).await.unwrap());
    /// assert!(!store.create_with_id(&id, &state, None).await.unwrap());
    /// # });
    /// ```
    pub async fn create_with_id(
        &self,
        id: &SessionId,
        state: &SessionState,
        framework_ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        if state.is_empty() {
            return Ok(true);
        }
        self.check_size(state)?;
        let created = self
            .backend
            .create(id, state, self.effective_ttl(framework_ttl))
            .await?;
        if created {
            self.now_and_then_prune(|| entry_of_state(self.backend.index_key(), state));
        }
        Ok(created)
    }

    /// Loads a session with what is left of its lifetime, without touching it: `Ok(None)` when
    /// it does not exist or has expired; a lifetime of `None` when it has no expiry. A
    /// multi-backend asks its backends as a load does, and answers a session its load moved
    /// with the lifetime its first write backend now holds. Read from the primary, never a
    /// replica.
    /// One round trip on Redis (`GET` and `PTTL` pipelined; one more, `HGETALL`, for a session
    /// still stored as a hash by an earlier version).
    pub async fn load_with_ttl(
        &self,
        id: &SessionId,
    ) -> Result<Option<(SessionState, Option<Duration>)>, StoreError> {
        self.backend.load_with_ttl(id).await
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
        self.check_size(state)?;
        let replaced = self
            .backend
            .replace(id, state, self.effective_ttl(framework_ttl))
            .await?;
        if replaced {
            self.now_and_then_prune(|| entry_of_state(self.backend.index_key(), state));
        }
        Ok(replaced)
    }

    /// Applies field-level changes to an existing session. Returns false, writing nothing,
    /// when it no longer exists. Empty changes only touch the expiry.
    ///
    /// On Redis this adds the records of the changed keys to the session's stored value (one
    /// round trip, no version check: a concurrent write of other keys keeps its change). With
    /// removals, it reads the session first (`GET`, then the write: two round trips), to tell
    /// whether any key is left: a session left with none is deleted. The stored value grows by
    /// the records, and a load parses them, until a write rewrites it whole: without a version
    /// this one cannot tell when, so each time the value grows past a multiple of 4 KB it
    /// reads it and rewrites it if the records make it more than 1.25 times the session (at
    /// most 384 bytes more) + 64 bytes. A request that loaded the session uses
    /// [`apply_versioned`](Self::apply_versioned) instead (one round trip, removals too). Only
    /// the changed keys change either way. As in `create` and `replace`, a value that is not
    /// JSON text is refused there ([`StoreError::Corrupt`]) before anything is written:
    /// embedded as is in the session's one string, it would spoil the whole session.
    ///
    /// The size limit is checked on what the changes write (a single value over the limit is
    /// refused); the size of the whole session they lead to is the caller's to check with
    /// [`check_size`](Self::check_size), since only the caller knows it.
    pub async fn apply(
        &self,
        id: &SessionId,
        changes: &Changes,
        framework_ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        let ttl = self.effective_ttl(framework_ttl);
        self.apply_with(id, None, changes, ttl).await
    }

    /// [`apply`](Self::apply) by a request that loaded the session at `version`
    /// ([`load_versioned`](Self::load_versioned)) and ends with the whole state `after`
    /// (what it loaded, with `changes` applied; every key of it). On Redis this is one round
    /// trip: the records of `changes` are added to the stored value, with no version check.
    /// The version serves the writes that replace the value: when the records would make it
    /// more than 1.25 times what `after` takes written whole (at most 384 bytes more, plus
    /// 64 bytes), `after` rewrites it, and an empty `after` deletes the session, each only if no
    /// other write came in between; if one did, `changes` go on top of what it left (one more round trip). Only
    /// this request's changed keys change either way; [`apply`](Self::apply) itself, without
    /// the version, reads the current value first when it removes keys. At most 32 round
    /// trips: past them (many concurrent writers of one session) the write fails as
    /// [`StoreError::Unavailable`], writing nothing. Returns false, writing nothing, when the
    /// session no longer exists.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use session_core::{Changes, SessionState, SessionStore};
    ///
    /// let store = SessionStore::memory();
    /// let state = SessionState::from([("n".to_owned(), "1".to_owned())]);
    /// let id = store.create(&state, None).await.unwrap();
    ///
    /// let (mut state, version) = store.load_versioned(&id).await.unwrap().unwrap();
    /// let before = state.clone();
    /// state.insert("n".to_owned(), "2".to_owned());
    /// let changes = Changes::between(&before, &state);
    /// let after: Vec<(&str, &str)> = state.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    /// assert!(store.apply_versioned(&id, version, &after, &changes, None).await.unwrap());
    /// assert_eq!(store.load(&id).await.unwrap(), Some(state));
    /// # });
    /// ```
    pub async fn apply_versioned(
        &self,
        id: &SessionId,
        version: Version,
        after: &[(&str, &str)],
        changes: &Changes,
        framework_ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        let ttl = self.effective_ttl(framework_ttl);
        self.apply_with(id, Some((version, after)), changes, ttl)
            .await
    }

    /// [`apply_versioned`](Self::apply_versioned), leaving the session's expiry as it is
    /// (see [`apply_keeping_expiry`](Self::apply_keeping_expiry)).
    pub async fn apply_versioned_keeping_expiry(
        &self,
        id: &SessionId,
        version: Version,
        after: &[(&str, &str)],
        changes: &Changes,
    ) -> Result<bool, StoreError> {
        self.apply_with(id, Some((version, after)), changes, None)
            .await
    }

    /// Every write of changes: the size check of the values set, then, for changes that set
    /// and remove nothing, only the TTL reset when there is one to set (`ttl`, already
    /// resolved by the TTL rule; `None` keeps the expiry). Empty changes without a TTL still
    /// go through the backend's `apply`: it answers whether the session exists from the
    /// primary (a load might be served by a lagging replica).
    async fn apply_with(
        &self,
        id: &SessionId,
        versioned: Option<(Version, &[(&str, &str)])>,
        changes: &Changes,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.check(changes.set.iter())?;
        if changes.is_empty() && ttl.is_some() {
            return self.backend.touch(id, ttl).await;
        }
        let applied = match versioned {
            Some((version, after)) => {
                self.backend
                    .apply_versioned(id, version, after, changes, ttl)
                    .await?
            }
            None => self.backend.apply(id, changes, ttl).await?,
        };
        if applied {
            self.now_and_then_prune(|| entry_of_changes(self.backend.index_key(), changes));
        }
        Ok(applied)
    }

    /// Like [`apply`](Self::apply), leaving the session's expiry as it is: for a request whose
    /// load already reset it ([`load_and_touch`](Self::load_and_touch)) to the TTL this write
    /// would set, or that must not change it. On Redis, records are added with `APPEND`,
    /// which keeps the expiry, and a rewrite's `SET` keeps it with `KEEPTTL`. Returns false,
    /// writing nothing, when the session no longer exists.
    ///
    /// The framework layers set the TTL again instead (`apply_versioned`): a write at the
    /// loaded version that keeps the expiry takes a script on Redis, where one that sets it
    /// is three plain commands, cheaper by far (docs/benchmarks.md, the fifth round).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::time::Duration;
    /// use session_core::{Changes, SessionState, SessionStore};
    ///
    /// let store = SessionStore::memory();
    /// let state = SessionState::from([("n".to_owned(), "1".to_owned())]);
    /// let id = store.create(&state, Some(Duration::from_secs(60))).await.unwrap();
    /// // Sliding expiry: the load resets the TTL...
    /// let ttl = Some(Duration::from_secs(60));
    /// assert!(store.load_and_touch(&id, ttl).await.unwrap().is_some());
    /// // ...so the write after it leaves the expiry alone.
    /// let mut changes = Changes::default();
    /// changes.set("n", "2");
    /// assert!(store.apply_keeping_expiry(&id, &changes).await.unwrap());
    /// // A session deleted meanwhile (a logout) is not brought back.
    /// assert!(store.delete(&id).await.unwrap());
    /// assert!(!store.apply_keeping_expiry(&id, &changes).await.unwrap());
    /// # });
    /// ```
    pub async fn apply_keeping_expiry(
        &self,
        id: &SessionId,
        changes: &Changes,
    ) -> Result<bool, StoreError> {
        self.apply_with(id, None, changes, None).await
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

    /// [`touch`](Self::touch), in a task of its own: it runs to its end even when the caller
    /// is dropped (a client gone, a timeout layer), and the caller, while it lives, gets its
    /// answer. For the `touch` that gives a session its own TTL back after a sliding load
    /// set the framework's (both framework crates): that load has already stretched the
    /// session's expiry, so a request dropped between the two round trips left a 60-second
    /// idle timeout good for the framework's day. The touch never creates a session, so one
    /// that lands after a logout changes nothing.
    pub async fn touch_to_the_end(
        &self,
        id: &SessionId,
        framework_ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        let (store, id) = (self.clone(), id.clone());
        let touching = async move { store.touch(&id, framework_ttl).await };
        self.run_to_the_end("touch", touching).await
    }

    /// Deletes a session everywhere. Returns whether it existed.
    pub async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        self.backend.delete(id).await
    }

    /// The second step of a renew (a login: the session under a new id), once the caller has
    /// created the state under `new`: deletes `old`, and answers whether that found the
    /// session. When it found none (a logout, a revoke or expiry since the caller's load, or
    /// another renew of the session that got there first: a login sent twice), or failed,
    /// `new` is deleted again (best effort: its id was never sent, and it ends with its TTL),
    /// so a renew never keeps a session a logout ended, and of two renews at once at most one
    /// keeps its new id. The new id first and the old one after: deleting first left a window
    /// in which a logout found nothing and the create brought the session back. The axum
    /// layer's renew, `ActixStore`'s inside `request_scope` and `TowerScopeLayer`'s
    /// `cycle_id` end so.
    ///
    /// ```
    /// use session_core::{SessionState, SessionStore};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let store = SessionStore::memory();
    /// let state = SessionState::from([("user".to_owned(), r#""ada""#.to_owned())]);
    /// let old = store.create(&state, None).await.unwrap();
    /// let new = store.create(&state, None).await.unwrap();
    /// assert!(store.finish_renew(&old, &new).await.unwrap());
    /// // A second renew of the same old id finds it gone: its new id goes too.
    /// let late = store.create(&state, None).await.unwrap();
    /// assert!(!store.finish_renew(&old, &late).await.unwrap());
    /// assert!(store.load(&late).await.unwrap().is_none());
    /// assert!(store.load(&new).await.unwrap().is_some());
    /// # })
    /// ```
    pub async fn finish_renew(&self, old: &SessionId, new: &SessionId) -> Result<bool, StoreError> {
        let deleted = self.delete(old).await;
        if !matches!(deleted, Ok(true)) {
            if let Err(err) = self.delete(new).await {
                tracing::warn!(error = %err, "could not delete the new id of a renew that did not complete");
            }
        }
        deleted
    }

    /// [`delete`](Self::delete), in a task of its own, as
    /// [`touch_to_the_end`](Self::touch_to_the_end): for a logout. A client that asks to log
    /// out and at once closes the tab or the connection drops its request, and with it a
    /// delete not sent yet: the session, and a stolen copy of its cookie, stayed good for its
    /// TTL after the user had logged out. The framework crates send every logout's delete so.
    ///
    /// ```
    /// use session_core::{SessionState, SessionStore};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let store = SessionStore::memory();
    /// let state = SessionState::from([("user".to_owned(), r#""ada""#.to_owned())]);
    /// let id = store.create(&state, None).await.unwrap();
    /// assert!(store.delete_to_the_end(&id).await.unwrap());
    /// assert!(store.load(&id).await.unwrap().is_none());
    /// # })
    /// ```
    pub async fn delete_to_the_end(&self, id: &SessionId) -> Result<bool, StoreError> {
        let (store, id) = (self.clone(), id.clone());
        let deleting = async move { store.delete(&id).await };
        self.run_to_the_end("delete", deleting).await
    }

    /// [`delete`](Self::delete) of `id` in a task of its own that nobody waits for: for a
    /// logout a framework layer still held when its request was dropped (its scope's `Drop`,
    /// which cannot wait). A failure is logged, without the id; with no tokio runtime left
    /// to run it on (the process shutting down) it is not sent, and that is logged too.
    pub fn delete_detached(&self, id: SessionId) {
        let store = self.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(err) = store.delete(&id).await {
                        tracing::warn!(error = %err, "the delete of a dropped request's logout failed");
                    }
                });
            }
            Err(_) => tracing::warn!(
                "a dropped request's logout could not be sent: no runtime to send it on"
            ),
        }
    }

    /// Store work (calls on clones of this store) in a task of its own, so that it runs to
    /// its end even when the caller is dropped (a client gone, a timeout layer), and the
    /// caller, while it lives, gets its answer; a panic in `work` is the caller's. For steps
    /// whose half-done state is worse than either end: a logout's delete
    /// ([`delete_to_the_end`](Self::delete_to_the_end)), a login's create-then-delete in a
    /// framework layer. When the runtime shuts down before it ends, an unavailable error
    /// naming `what` ("a {what} was cancelled"). Call it on a tokio runtime, as every other
    /// store call (it spawns onto the current one).
    ///
    /// ```
    /// use session_core::{SessionState, SessionStore};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let store = SessionStore::memory();
    /// let state = SessionState::from([("user".to_owned(), r#""ada""#.to_owned())]);
    /// let old = store.create(&state, None).await.unwrap();
    /// let core = store.clone();
    /// let renewed = store
    ///     .run_to_the_end("renew", async move {
    ///         let new = core.create(&state, None).await?;
    ///         core.delete(&old).await?;
    ///         Ok(new)
    ///     })
    ///     .await
    ///     .unwrap();
    /// assert!(store.load(&renewed).await.unwrap().is_some());
    /// # })
    /// ```
    pub async fn run_to_the_end<T: Send + 'static>(
        &self,
        what: &str,
        work: impl std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        crate::backend::to_the_end(work).await.unwrap_or_else(|| {
            Err(StoreError::Unavailable {
                backend: self.backend_name().to_owned(),
                timed_out: false,
                message: format!("a {what} was cancelled: the runtime is shutting down"),
            })
        })
    }

    /// Ends a session a load found past its own deadline ([`past_deadline`](crate::past_deadline)
    /// of its [`EXPIRY_KEY`](crate::EXPIRY_KEY) value): deletes it, best effort, since the load
    /// answers "no session" either way (a failure is logged, without the id). The one rule
    /// both framework crates apply to a session they share: `session_redis_key_expire` decides
    /// the TTL of every write, so the store may keep the key past the deadline.
    pub async fn end_past_deadline(&self, id: &SessionId) {
        if let Err(err) = self.delete(id).await {
            tracing::warn!(error = %err, "could not delete a session past its deadline; it is not served");
        }
    }

    /// The session key the store indexes (`session_redis_index_key`), if any.
    pub fn index_key(&self) -> Option<&str> {
        self.backend.index_key()
    }

    /// The sessions whose indexed key (`session_redis_index_key`, for example `user`) holds
    /// `value`, the JSON text of the value as the application stored it (`"\"alice\""` for the
    /// string `alice`; compared as JSON). Costs one read of the index entry and one pipelined
    /// read per thousand of the sessions it names (per pool member or backend), whatever the
    /// size of the store: O(that user's sessions), not a scan.
    ///
    /// Each session named by the index is checked against its current value, so the answer
    /// holds only live sessions that hold `value` now; the stale names are dropped from the
    /// index on the way (those older than [`INDEX_GRACE`](crate::index::INDEX_GRACE)).
    /// Without an index configured, or for a `value` that is not JSON text (which no stored
    /// value is: `alice` for the string `"alice"`), [`StoreError::Unsupported`]: "none found"
    /// would read as a user logged out everywhere.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use session_core::{backends::memory::MemoryBackend, Changes, SessionState, SessionStore};
    ///
    /// let store = SessionStore::new(MemoryBackend::new().with_index_key("user"));
    /// let state = |user: &str| SessionState::from([("user".to_owned(), format!("{user:?}"))]);
    /// let laptop = store.create(&state("alice"), None).await.unwrap();
    /// let phone = store.create(&state("alice"), None).await.unwrap();
    /// let other = store.create(&state("bob"), None).await.unwrap();
    ///
    /// let mut found = store.find_indexed("\"alice\"").await.unwrap();
    /// found.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    /// let mut expected = vec![laptop.clone(), phone.clone()];
    /// expected.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    /// assert_eq!(found, expected);
    ///
    /// // The phone's session is now bob's: it is no longer one of alice's.
    /// let mut changes = Changes::default();
    /// changes.set("user", "\"bob\"");
    /// store.apply(&phone, &changes, None).await.unwrap();
    /// assert_eq!(store.find_indexed("\"alice\"").await.unwrap(), vec![laptop]);
    /// assert_eq!(store.find_indexed("\"bob\"").await.unwrap().len(), 2);
    /// # let _ = other;
    /// # });
    /// ```
    pub async fn find_indexed(&self, value: &str) -> Result<Vec<SessionId>, StoreError> {
        let entry = self.index_entry(value)?;
        let members = self.live_members(&entry, None).await?;
        Ok(members.into_iter().map(|m| m.id).collect())
    }

    /// Logs out everywhere the sessions whose indexed key holds `value` (found as by
    /// [`find_indexed`](Self::find_indexed)): deletes each of them, as
    /// [`delete`](Self::delete) would (a pool on the member that owns the id, a multi-backend
    /// the backends sessions move from first). Returns how many were deleted.
    ///
    /// A write racing the deletion does not bring a session back (writes never create an
    /// absent session), nor does a renew (a new id) of one of the sessions: the entry is
    /// read again after the deletes, until a read finds nothing new (at most
    /// [`DELETE_INDEXED_PASSES`] reads). A session created from nothing while this runs may
    /// survive it: it started after.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use session_core::{backends::memory::MemoryBackend, SessionState, SessionStore};
    ///
    /// let store = SessionStore::new(MemoryBackend::new().with_index_key("user"));
    /// let alice = SessionState::from([("user".to_owned(), "\"alice\"".to_owned())]);
    /// let laptop = store.create(&alice, None).await.unwrap();
    /// let phone = store.create(&alice, None).await.unwrap();
    /// assert_eq!(store.delete_indexed("\"alice\"").await.unwrap(), 2);
    /// assert_eq!(store.load(&laptop).await.unwrap(), None);
    /// assert_eq!(store.load(&phone).await.unwrap(), None);
    /// # });
    /// ```
    pub async fn delete_indexed(&self, value: &str) -> Result<usize, StoreError> {
        let entry = self.index_entry(value)?;
        let mut deleted = 0;
        let mut done = HashSet::new();
        // Read, delete, and read again until a read finds no session not deleted yet. A
        // renew (a login, a new id) of a listed session that races this creates its new id,
        // then deletes the old one and keeps the new id when it found the old: if its delete
        // comes before this one's, the new id (born of a session this listed) was never
        // read, and a session of the user outlived the logout everywhere. Its create came
        // before its delete, so the next read finds it. Usually one more read of the entry,
        // which finds nothing new; the passes are bounded, so sessions made faster than
        // they go cannot keep this running.
        for _ in 0..DELETE_INDEXED_PASSES {
            let members: Vec<IndexMember> = self
                .live_members(&entry, None)
                .await?
                .into_iter()
                .filter(|m| !done.contains(&m.id))
                .collect();
            if members.is_empty() {
                break;
            }
            let ids: Vec<SessionId> = members.iter().map(|m| m.id.clone()).collect();
            let mut failed = None;
            for answer in self.backend.delete_many(&ids).await {
                match answer {
                    Ok(true) => deleted += 1,
                    Ok(false) => {}
                    Err(err) => failed = Some(err),
                }
            }
            if let Some(err) = failed {
                // Some sessions may be left: the caller must know, and running it again
                // finishes.
                return Err(err);
            }
            // Their names are stale now; one renewed meanwhile (a write that set the value
            // again) keeps its newer stamp and stays.
            if let Err(err) = self.backend.index_remove(&entry, &members).await {
                tracing::warn!(error = %err, "could not drop deleted sessions from the session index");
            }
            done.extend(ids);
        }
        Ok(deleted)
    }

    /// Drops the stale names of one index entry (sessions gone, expired, or holding another
    /// value now, named more than [`INDEX_GRACE`] ago), as a lookup of its value would; an
    /// entry left without names is removed, on every backend (the file store's directory
    /// too, with its lock file), and so is one found without names (a directory an earlier
    /// version of the file store kept). Returns how many names it still holds (the live
    /// sessions, and names too young to judge). For a periodic sweep of every entry
    /// (`sessionctl prune-index`): the entries of values that are never written or looked up
    /// again are otherwise never pruned.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use session_core::{backends::memory::MemoryBackend, IndexName, SessionState, SessionStore};
    ///
    /// let store = SessionStore::new(MemoryBackend::new().with_index_key("user"));
    /// let alice = SessionState::from([("user".to_owned(), "\"alice\"".to_owned())]);
    /// let id = store.create(&alice, None).await.unwrap();
    /// let entry = IndexName::new("user", "\"alice\"");
    /// assert_eq!(store.prune_index_entry(&entry).await.unwrap(), 1);
    /// # let _ = id;
    /// # });
    /// ```
    pub async fn prune_index_entry(&self, entry: &IndexName) -> Result<usize, StoreError> {
        self.indexed_key()?;
        self.live_members(entry, None).await?;
        let left = self.backend.index_members(entry, None).await?.len();
        if left == 0 {
            // Removing no name removes an entry that holds none: the file store kept such
            // directories before it removed emptied entries, and nothing else looks at them.
            // A no-op where an emptied entry is gone already (Redis, memory).
            self.backend.index_remove(entry, &[]).await?;
        }
        Ok(left)
    }

    /// The index entry of `value` under the configured key.
    fn index_entry(&self, value: &str) -> Result<IndexName, StoreError> {
        let key = self.indexed_key()?;
        // Every stored value is JSON text, so text that is not can match no session: "none
        // found" read as "logged out everywhere" (`alice` for the string `"alice"`) while every
        // session of that user stayed. Not quoted: the value is user data.
        if !crate::state::is_json_text(value) {
            return Err(StoreError::Unsupported {
                backend: self.backend.name().to_owned(),
                operation: "look sessions up by a value that is not JSON text (give the value \
                            as the application stores it: a string with its quotes)"
                    .into(),
            });
        }
        Ok(IndexName::new(key, value))
    }

    /// The configured index key; [`StoreError::Unsupported`] without one.
    fn indexed_key(&self) -> Result<&str, StoreError> {
        self.backend
            .index_key()
            .ok_or_else(|| StoreError::Unsupported {
                backend: self.backend.name().to_owned(),
                operation: "find sessions by value: no index is configured \
                            (set session_redis_index_key)"
                    .into(),
            })
    }

    /// The members of `entry` whose session holds its value now; the stale ones older than
    /// [`INDEX_GRACE`] are removed from the index. With `oldest`, only that many of the
    /// oldest members are looked at (a bounded prune).
    async fn live_members(
        &self,
        entry: &IndexName,
        oldest: Option<usize>,
    ) -> Result<Vec<IndexMember>, StoreError> {
        let members = self.backend.index_members(entry, oldest).await?;
        if members.is_empty() {
            return Ok(members);
        }
        // One read per session, though a multi-backend may name one in several backends;
        // pipelined reads of a bounded batch each (an entry can be large: a shared value).
        let mut ids: Vec<SessionId> = members.iter().map(|m| m.id.clone()).collect();
        ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        ids.dedup();
        let mut holds = HashMap::with_capacity(ids.len());
        for batch in ids.chunks(LOOKUP_BATCH) {
            let found = self.backend.load_many_with_ttl(batch).await;
            for (id, found) in batch.iter().zip(found) {
                let verdict = match found {
                    Ok(Some((state, _))) => state
                        .get(entry.key())
                        .is_some_and(|v| IndexName::new(entry.key(), v) == *entry),
                    Ok(None) => false,
                    // A corrupt session loads as no session for everyone; its name stays for
                    // an operator to find.
                    Err(err) if err.is_corrupt() => continue,
                    Err(err) => return Err(err),
                };
                holds.insert(id.clone(), verdict);
            }
        }
        let stale_before = now_ms().saturating_sub(INDEX_GRACE.as_millis() as u64);
        let (mut live, mut stale) = (Vec::new(), Vec::new());
        let mut seen = HashSet::new();
        for member in members {
            match holds.get(&member.id) {
                Some(true) if seen.insert(member.id.clone()) => live.push(member),
                Some(false) if member.added_ms < stale_before => stale.push(member),
                _ => {}
            }
        }
        if !stale.is_empty() {
            if let Err(err) = self.backend.index_remove(entry, &stale).await {
                tracing::warn!(error = %err, "could not drop stale names from the session index");
            }
        }
        Ok(live)
    }

    /// After a write that added to the index entry `entry`: once in [`PRUNE_ONE_IN`] such
    /// writes, drops the entry's stale names in the background, so that the entry of a user
    /// who logs in often but is never looked up does not grow without bound (each login adds
    /// a name; the logouts and expiries leave theirs).
    ///
    /// `entry` is computed only for the drawn writes: it parses and hashes the value, and
    /// every write of a session holding the indexed key would otherwise pay for it.
    fn now_and_then_prune(&self, entry: impl FnOnce() -> Option<IndexName>) {
        if self.backend.index_key().is_none() || !rand::random::<u32>().is_multiple_of(PRUNE_ONE_IN)
        {
            return;
        }
        let Some(entry) = entry() else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let store = self.clone();
        runtime.spawn(async move {
            if let Err(err) = store.live_members(&entry, Some(PRUNE_BATCH)).await {
                tracing::debug!(error = %err, "pruning the session index failed; the next try will");
            }
        });
    }

    /// Checks every backend, for health endpoints.
    ///
    /// Callers that ask while a check runs, or within [`HEALTH_REUSE`] of its start, share its
    /// answer instead of starting their own: a health endpoint is usually unauthenticated, and
    /// a check may open several connections (every sentinel) or wait on every cluster master,
    /// so neither a burst of requests nor a loop may multiply that work. The answer is at
    /// most a second older than the call.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let store = session_core::SessionStore::memory();
    /// let health = store.health().await;
    /// assert!(health.iter().all(|h| h.up));
    /// # }
    /// ```
    pub async fn health(&self) -> Vec<BackendHealth> {
        let check = {
            let mut slot = self
                .health_check
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match slot.as_ref() {
                Some((check, started))
                    if check.peek().is_none() || started.elapsed() < HEALTH_REUSE =>
                {
                    check.clone()
                }
                _ => {
                    let backend = Arc::clone(&self.backend);
                    let check = async move { backend.health().await }.boxed().shared();
                    *slot = Some((check.clone(), Instant::now()));
                    check
                }
            }
        };
        check.await
    }
}

/// The backend with the file store's sessions moved into it (see [`migration`]).
#[cfg(feature = "file")]
async fn migrate_first(
    files: &FilePlan,
    backend: Arc<dyn SessionBackend>,
    ttl: TtlRule,
) -> Result<Arc<dyn SessionBackend>, ConfigError> {
    let mut from = backends::file::FileBackend::new(files.root.clone())?
        .with_cleanup_interval(None)
        .with_max_session_size(files.max_session_size);
    if let Some(key) = &files.index_key {
        from = from.with_index_key(key);
    }
    Ok(migration::start(from, backend, ttl).await)
}

/// The migration reads the file store, which this build left out.
#[cfg(not(feature = "file"))]
async fn migrate_first(
    _: &FilePlan,
    _: Arc<dyn SessionBackend>,
    _: TtlRule,
) -> Result<Arc<dyn SessionBackend>, ConfigError> {
    Err(ConfigError::feature_disabled(
        "session_redis_migrate_from_filestore",
        "True",
        "file",
    ))
}
