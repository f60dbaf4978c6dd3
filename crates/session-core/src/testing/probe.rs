//! [`ProbeBackend`]: the one instrumented, failing backend double of the test suites.
//!
//! It is a decorator, the way tower-sessions composes stores: it wraps a real backend (usually
//! the in-memory one) and forwards the calls of the trait to it, the versioned ones as such
//! (so a Redis backend behind it takes the path the framework layers take), so the data
//! behaviour under test is the real one. `load_with_ttl` is forwarded too (recorded as a
//! `Load` without a touch), so a move out of a backend behind it keeps each session's expiry.
//! The batch forms take the trait's defaults, over the recorded single calls, so a test can
//! fail or pause one session of a batch: a Redis backend behind the probe then runs a batch
//! as single operations, not as its one pipeline (whose tests talk to Redis directly).
//! Around each call it can record what the caller asked for, fail the way an unreachable or
//! corrupt store fails, or hold the call until the test lets it go. It never imitates Redis:
//! tests of the Redis backend use real `redis-server` processes.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::Duration,
};

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::{
    backends::memory::MemoryBackend, BackendHealth, Changes, IndexMember, IndexName, LoadedState,
    Retired, SessionBackend, SessionId, SessionState, StoreError, Version,
};

/// One [`SessionBackend`] method, to count calls of it or to make it fail or pause.
///
/// A load that also touches (sliding expiry) is still [`Op::Load`]: it is one call of the
/// trait. [`Call::Load`] carries its touch TTL for tests that tell the two apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// [`SessionBackend::load`], `load_versioned` or `load_in_place`.
    Load,
    /// [`SessionBackend::create`].
    Create,
    /// [`SessionBackend::replace`].
    Replace,
    /// [`SessionBackend::apply`] or `apply_versioned`.
    Apply,
    /// [`SessionBackend::touch`].
    Touch,
    /// [`SessionBackend::delete`].
    Delete,
}

/// One recorded call, with the TTL argument it carried: what "one round trip per operation"
/// and "the TTL rule" tests compare against.
///
/// Ids and session data are left out on purpose: ids are random, and tests that look at the
/// data read it back from the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// A load; `Some` is the expiry it also set (load-and-touch).
    Load(Option<Duration>),
    /// A create with its TTL.
    Create(Option<Duration>),
    /// A replace with its TTL.
    Replace(Option<Duration>),
    /// An apply with its TTL (its changes: [`ProbeBackend::last_changes`]).
    Apply(Option<Duration>),
    /// A touch with its TTL.
    Touch(Option<Duration>),
    /// A delete.
    Delete,
}

impl Call {
    /// Which method was called.
    pub fn op(&self) -> Op {
        match self {
            Call::Load(_) => Op::Load,
            Call::Create(_) => Op::Create,
            Call::Replace(_) => Op::Replace,
            Call::Apply(_) => Op::Apply,
            Call::Touch(_) => Op::Touch,
            Call::Delete => Op::Delete,
        }
    }

    /// The expiry this call set on the stored session, if it sets one: every write and a
    /// touching load do; a plain load and a delete do not.
    pub fn ttl(&self) -> Option<Option<Duration>> {
        match *self {
            Call::Load(None) | Call::Delete => None,
            Call::Load(ttl)
            | Call::Create(ttl)
            | Call::Replace(ttl)
            | Call::Apply(ttl)
            | Call::Touch(ttl) => Some(ttl),
        }
    }

    /// Whether the call writes to the store (data or expiry): everything but a plain load.
    /// A touching load counts, as it resets the expiry in the store.
    pub fn is_write(&self) -> bool {
        !matches!(self, Call::Load(None))
    }
}

/// How a failing operation fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// [`StoreError::Unavailable`], as a stopped or unreachable server answers.
    Unavailable,
    /// [`StoreError::Corrupt`], as a session whose stored data cannot be read.
    Corrupt,
}

/// A held operation, made by [`ProbeBackend::pause`]: the first matching call waits on it
/// until [`release`](Pause::release), which lets race tests place a concurrent request
/// exactly between two backend calls.
#[derive(Debug, Default)]
pub struct Pause {
    reached: Notify,
    go: Notify,
}

impl Pause {
    /// Waits until a call has reached the pause (it is then held). Returns at once if one
    /// already has.
    pub async fn reached(&self) {
        self.reached.notified().await;
    }

    /// Lets the held call (or the next one to arrive) go on to the wrapped backend.
    pub fn release(&self) {
        self.go.notify_one();
    }
}

/// What the clones of one probe share.
#[derive(Default)]
struct Shared {
    calls: Mutex<Vec<Call>>,
    last_changes: Mutex<Option<Changes>>,
    down: AtomicBool,
    faults: Mutex<HashMap<Op, Fault>>,
    pauses: Mutex<HashMap<Op, Arc<Pause>>>,
}

/// Locks a mutex even if a failed assertion in another task poisoned it: the recorded calls
/// stay meaningful, and one failure should not hide behind a second "poisoned" panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A backend double that wraps a real backend, records every call, and fails or pauses
/// chosen operations on demand.
///
/// Clones share the record and the switches: hand one clone to
/// [`SessionStore::new`](crate::SessionStore::new) and keep another to steer and inspect it.
/// By default it is transparent (its [`name`](SessionBackend::name) and health are the wrapped
/// backend's), so it can also stand for a shared `Arc<dyn SessionBackend>` wherever a
/// `SessionBackend` value is needed.
///
/// Every call is recorded first, then checked against the switches, in this order:
/// [`set_down`](Self::set_down) (every operation fails as unavailable, health reports down),
/// then a [`fail`](Self::fail) fault of that operation, then a [`pause`](Self::pause).
/// Recording failed calls too is deliberate: a test can tell "the layer gave up before calling"
/// from "the call was made and failed".
///
/// ```
/// use std::time::Duration;
/// use session_core::{
///     testing::probe::{Call, Fault, Op, ProbeBackend},
///     SessionState, SessionStore,
/// };
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let probe = ProbeBackend::memory();
/// let store = SessionStore::new(probe.clone());
///
/// let state = SessionState::from([("user".into(), "\"alice\"".into())]);
/// let id = store.create(&state, Some(Duration::from_secs(60))).await.unwrap();
/// store.load(&id).await.unwrap();
/// assert_eq!(
///     probe.take_calls(),
///     vec![Call::Create(Some(Duration::from_secs(60))), Call::Load(None)]
/// );
///
/// // A corrupt read, then an outage, then recovery: the data was never lost.
/// probe.fail(Op::Load, Some(Fault::Corrupt));
/// assert!(store.load(&id).await.unwrap_err().is_corrupt());
/// probe.fail(Op::Load, None);
/// probe.set_down(true);
/// assert!(store.load(&id).await.unwrap_err().is_unavailable());
/// assert!(!store.health().await[0].up);
/// probe.set_down(false);
/// assert_eq!(store.load(&id).await.unwrap(), Some(state));
/// assert_eq!(probe.count(Op::Load), 3);
///
/// // Hold the next delete until the test says so.
/// let pause = probe.pause(Op::Delete);
/// let deleting = tokio::spawn({
///     let store = store.clone();
///     let id = id.clone();
///     async move { store.delete(&id).await.unwrap() }
/// });
/// pause.reached().await;
/// assert!(store.load(&id).await.unwrap().is_some(), "not deleted yet");
/// pause.release();
/// assert!(deleting.await.unwrap());
/// # });
/// ```
#[derive(Clone)]
pub struct ProbeBackend {
    inner: Arc<dyn SessionBackend>,
    name: Option<Arc<str>>,
    shared: Arc<Shared>,
}

impl Default for ProbeBackend {
    /// The same as [`ProbeBackend::memory`].
    fn default() -> Self {
        Self::memory()
    }
}

impl std::fmt::Debug for ProbeBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeBackend")
            .field("inner", &self.inner.name())
            .field("name", &self.label())
            .field("down", &self.shared.down.load(Ordering::SeqCst))
            .finish_non_exhaustive()
    }
}

impl ProbeBackend {
    /// Wraps `inner`.
    pub fn new(inner: impl SessionBackend) -> Self {
        Self::wrap(Arc::new(inner))
    }

    /// Wraps a backend the test also keeps a handle on (to call it directly, or to make
    /// several stores over one backend).
    pub fn wrap(inner: Arc<dyn SessionBackend>) -> Self {
        Self {
            inner,
            name: None,
            shared: Arc::default(),
        }
    }

    /// Wraps a new, empty [`MemoryBackend`]: the usual double for framework-layer tests.
    pub fn memory() -> Self {
        Self::new(MemoryBackend::new())
    }

    /// Reports `name` instead of the wrapped backend's name, in [`SessionBackend::name`], in
    /// health entries and in the errors it makes up, so a test can tell the double's answers
    /// from a real backend's (for example on a health endpoint).
    pub fn named(mut self, name: &str) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Switches the whole backend down (`true`) or up again: while down, every operation fails
    /// with [`StoreError::Unavailable`] and health reports it down, as a stopped server would.
    /// Stored sessions are kept, so a test can check that nothing is lost by an outage.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
    }

    /// Makes every call of `op` fail with `fault` from now on (`None`: succeed again). The
    /// other operations keep working, for example a corrupt load next to working writes.
    pub fn fail(&self, op: Op, fault: Option<Fault>) {
        let mut faults = lock(&self.shared.faults);
        match fault {
            Some(fault) => faults.insert(op, fault),
            None => faults.remove(&op),
        };
    }

    /// Holds the next call of `op` (after recording it) until the returned [`Pause`] is
    /// released. Only that one call waits; later calls pass. For race tests: the test learns
    /// when the call is held ([`Pause::reached`]), acts, then releases it.
    pub fn pause(&self, op: Op) -> Arc<Pause> {
        let pause = Arc::new(Pause::default());
        lock(&self.shared.pauses).insert(op, pause.clone());
        pause
    }

    /// Every call recorded since the probe was made or last cleared, oldest first.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.shared.calls).clone()
    }

    /// Returns the recorded calls and clears the record, so the next assertion sees only
    /// what the next request does.
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut *lock(&self.shared.calls))
    }

    /// Clears the record of calls (and of the last changes).
    pub fn reset(&self) {
        lock(&self.shared.calls).clear();
        *lock(&self.shared.last_changes) = None;
    }

    /// How many recorded calls were of `op`.
    pub fn count(&self, op: Op) -> usize {
        self.count_where(|call| call.op() == op)
    }

    /// How many recorded calls match `pred`, for counts the other helpers do not name (for
    /// example `|c| matches!(c, Call::Load(Some(_)))`: the loads that touched).
    pub fn count_where(&self, pred: impl Fn(&Call) -> bool) -> usize {
        lock(&self.shared.calls)
            .iter()
            .filter(|call| pred(call))
            .count()
    }

    /// How many calls were recorded in all.
    pub fn total(&self) -> usize {
        lock(&self.shared.calls).len()
    }

    /// How many recorded calls wrote to the store (see [`Call::is_write`]): what "a read
    /// writes nothing" tests count.
    pub fn writes(&self) -> usize {
        self.count_where(Call::is_write)
    }

    /// The expiry argument of the last recorded call that sets one (see [`Call::ttl`]); `None`
    /// when no such call was recorded, `Some(None)` when it asked for no expiry.
    pub fn last_ttl(&self) -> Option<Option<Duration>> {
        lock(&self.shared.calls).iter().rev().find_map(Call::ttl)
    }

    /// The changes of the last [`apply`](SessionBackend::apply) call: which keys a framework
    /// layer wrote and removed.
    pub fn last_changes(&self) -> Option<Changes> {
        lock(&self.shared.last_changes).clone()
    }

    fn label(&self) -> &str {
        self.name.as_deref().unwrap_or_else(|| self.inner.name())
    }

    fn unavailable(&self) -> StoreError {
        StoreError::Unavailable {
            backend: self.label().to_owned(),
            timed_out: false,
            message: "switched off by the test".into(),
        }
    }

    /// Records `call`, then applies the switches: down, a fault of its operation, a pause.
    async fn enter(&self, call: Call) -> Result<(), StoreError> {
        lock(&self.shared.calls).push(call);
        let op = call.op();
        if self.shared.down.load(Ordering::SeqCst) {
            return Err(self.unavailable());
        }
        let fault = lock(&self.shared.faults).get(&op).copied();
        match fault {
            Some(Fault::Unavailable) => return Err(self.unavailable()),
            Some(Fault::Corrupt) => {
                return Err(StoreError::Corrupt {
                    backend: self.label().to_owned(),
                    detail: "switched to corrupt by the test".into(),
                })
            }
            None => {}
        }
        let pause = lock(&self.shared.pauses).remove(&op);
        if let Some(pause) = pause {
            pause.reached.notify_one();
            pause.go.notified().await;
        }
        Ok(())
    }

    /// A batch operation taken one item at a time, so that race tests can hold or fail a
    /// single session of it: each item is entered as the single operation `call` names
    /// (recorded, failed and paused as it), then passed on alone by `pass`; `missing` is the
    /// answer when the wrapped backend gives none.
    async fn one_at_a_time<'a, T: Sync, R: Send>(
        &'a self,
        items: &'a [T],
        call: impl Fn(&T) -> Call + Sync,
        pass: impl Fn(&'a [T]) -> futures_util::future::BoxFuture<'a, Vec<Result<R, StoreError>>> + Sync,
        missing: impl Fn() -> Result<R, StoreError> + Sync,
    ) -> Vec<Result<R, StoreError>> {
        let mut answers = Vec::with_capacity(items.len());
        for one in items {
            answers.push(match self.enter(call(one)).await {
                Ok(()) => pass(std::slice::from_ref(one))
                    .await
                    .pop()
                    .unwrap_or_else(&missing),
                Err(e) => Err(e),
            });
        }
        answers
    }
}

#[async_trait]
impl SessionBackend for ProbeBackend {
    async fn load(
        &self,
        id: &SessionId,
        touch: Option<Duration>,
    ) -> Result<Option<SessionState>, StoreError> {
        self.enter(Call::Load(touch)).await?;
        self.inner.load(id, touch).await
    }

    // Forwarded, not left to the default (a plain `load`, which knows no lifetime): a move
    // out of a backend behind the probe keeps each session's expiry, as it does without it.
    async fn load_with_ttl(
        &self,
        id: &SessionId,
    ) -> Result<Option<(SessionState, Option<Duration>)>, StoreError> {
        self.enter(Call::Load(None)).await?;
        self.inner.load_with_ttl(id).await
    }

    // The versioned forms are forwarded as such (recorded as the plain ones), so that a
    // backend behind the probe takes the path the framework layers use in production: on
    // Redis, writes at a version (the scriptless append, conditional rewrites).

    async fn load_versioned(
        &self,
        id: &SessionId,
        touch: Option<Duration>,
    ) -> Result<Option<(SessionState, Version)>, StoreError> {
        self.enter(Call::Load(touch)).await?;
        self.inner.load_versioned(id, touch).await
    }

    async fn load_versioned_from_primary(
        &self,
        id: &SessionId,
    ) -> Result<Option<(SessionState, Version)>, StoreError> {
        self.enter(Call::Load(None)).await?;
        self.inner.load_versioned_from_primary(id).await
    }

    async fn load_in_place(
        &self,
        id: &SessionId,
        touch: Option<Duration>,
    ) -> Result<Option<(LoadedState, Version)>, StoreError> {
        self.enter(Call::Load(touch)).await?;
        self.inner.load_in_place(id, touch).await
    }

    async fn apply_versioned(
        &self,
        id: &SessionId,
        version: Version,
        after: &[(&str, &str)],
        changes: &Changes,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        *lock(&self.shared.last_changes) = Some(changes.clone());
        self.enter(Call::Apply(ttl)).await?;
        self.inner
            .apply_versioned(id, version, after, changes, ttl)
            .await
    }

    async fn create(
        &self,
        id: &SessionId,
        state: &SessionState,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.enter(Call::Create(ttl)).await?;
        self.inner.create(id, state, ttl).await
    }

    async fn replace(
        &self,
        id: &SessionId,
        state: &SessionState,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.enter(Call::Replace(ttl)).await?;
        self.inner.replace(id, state, ttl).await
    }

    async fn apply(
        &self,
        id: &SessionId,
        changes: &Changes,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        *lock(&self.shared.last_changes) = Some(changes.clone());
        self.enter(Call::Apply(ttl)).await?;
        self.inner.apply(id, changes, ttl).await
    }

    async fn touch(&self, id: &SessionId, ttl: Option<Duration>) -> Result<bool, StoreError> {
        self.enter(Call::Touch(ttl)).await?;
        self.inner.touch(id, ttl).await
    }

    // Counted (and paused, and failed) as a touch, the tag passed on.
    async fn touch_tagged(
        &self,
        id: &SessionId,
        ttl: Option<Duration>,
        tag: u64,
    ) -> Result<bool, StoreError> {
        self.enter(Call::Touch(ttl)).await?;
        self.inner.touch_tagged(id, ttl, tag).await
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        self.enter(Call::Delete).await?;
        self.inner.delete(id).await
    }

    // One call per session, counted (and paused, and failed) as a create, the tag passed on.
    async fn create_many_tagged(
        &self,
        sessions: &[(SessionId, SessionState, Option<Duration>, u64)],
    ) -> Vec<Result<bool, StoreError>> {
        self.one_at_a_time(
            sessions,
            |one| Call::Create(one.2),
            |one| self.inner.create_many_tagged(one),
            || Ok(false),
        )
        .await
    }

    // One call per id, counted (and paused, and failed) as a delete: it is the delete a
    // move makes of its source, and race tests hold a move there.
    async fn retire_many(&self, moves: &[(SessionId, u64)]) -> Vec<Result<Retired, StoreError>> {
        self.one_at_a_time(
            moves,
            |_| Call::Delete,
            |one| self.inner.retire_many(one),
            || Ok(Retired::Absent),
        )
        .await
    }

    // The index, forwarded as it is (not counted, not failed by `set_down`).

    fn index_key(&self) -> Option<&str> {
        self.inner.index_key()
    }

    async fn index_add(&self, index: &IndexName, id: &SessionId) -> Result<(), StoreError> {
        self.inner.index_add(index, id).await
    }

    async fn index_members(
        &self,
        index: &IndexName,
        oldest: Option<usize>,
    ) -> Result<Vec<IndexMember>, StoreError> {
        self.inner.index_members(index, oldest).await
    }

    async fn index_remove(
        &self,
        index: &IndexName,
        members: &[IndexMember],
    ) -> Result<(), StoreError> {
        self.inner.index_remove(index, members).await
    }

    /// The wrapped backend's health (renamed when [`named`](ProbeBackend::named) was used);
    /// while [`set_down`](ProbeBackend::set_down) is on, every entry is down with the same
    /// error the operations give.
    async fn health(&self) -> Vec<BackendHealth> {
        let mut health = self.inner.health().await;
        let down = self.shared.down.load(Ordering::SeqCst);
        for entry in &mut health {
            if let Some(name) = &self.name {
                entry.name = name.to_string();
            }
            if down {
                entry.up = false;
                entry.error = Some(self.unavailable().to_string());
            }
        }
        health
    }

    fn place(&self, id: &SessionId) -> Option<String> {
        self.inner.place(id)
    }

    fn name(&self) -> &str {
        self.label()
    }
}
