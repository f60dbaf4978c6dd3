//! In-memory backend, for tests and quick starts. Sessions vanish with the process.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use async_trait::async_trait;

use crate::{
    backend::{keep_oldest, now_ms},
    index::{entry_of_changes, entry_of_state, INDEX_GRACE},
    state::refuse_unless_json,
    BackendHealth, Changes, IndexMember, IndexName, SessionBackend, SessionId, SessionState,
    StoreError,
};

/// The backend's name, in errors and health reports.
const NAME: &str = "memory";

/// Sessions in a map behind a mutex, with expiry checked on access. Values must be JSON text,
/// as every backend requires (a write of one that is not is refused).
///
/// ```
/// use session_core::{backends::memory::MemoryBackend, SessionStore};
///
/// let store = SessionStore::new(MemoryBackend::new());
/// ```
#[derive(Default)]
pub struct MemoryBackend {
    sessions: Mutex<Sessions>,
    /// `session_redis_index_key`, when set ([`MemoryBackend::with_index_key`]).
    index_key: Option<String>,
    /// The index: entry, then id to the stamp of its add.
    index: Mutex<Index>,
}

/// The index entries, and the size at which their stale names are next dropped.
#[derive(Default)]
struct Index {
    entries: HashMap<IndexName, HashMap<SessionId, u64>>,
    /// How many names `entries` holds.
    names: usize,
    /// When the names of sessions gone or holding another value now, older than
    /// [`INDEX_GRACE`], are dropped. Lookups drop a value's stale names, but a value written
    /// once (a user name a client typed) is never looked up again, and no `sessionctl
    /// prune-index` reaches a process's memory.
    prune: PruneBound,
}

struct Entry {
    state: SessionState,
    expires_at: Option<Instant>,
}

/// The sessions, and the size at which expired ones are next dropped.
#[derive(Default)]
struct Sessions {
    map: HashMap<SessionId, Entry>,
    /// When the expired entries are dropped. It was "whenever the size is a power of two",
    /// which scanned the whole map on every operation while the size stayed at one (2,048
    /// live sessions, say).
    prune: PruneBound,
    /// How many times expired entries were dropped (for tests).
    prunes: usize,
}

/// The size below which expired sessions and stale index names are left to the accesses
/// that find them.
const PRUNE_FROM: usize = 1024;

/// When a map that keeps what is dead until an access finds it (the sessions, the index's
/// names) is pruned: past a bound (at least [`PRUNE_FROM`]) set to twice what the last prune
/// left, so each element is scanned O(1) times on average.
#[derive(Default)]
struct PruneBound {
    past: usize,
}

impl PruneBound {
    /// Whether a map of `len` elements is due for a prune.
    fn due(&self, len: usize) -> bool {
        len > self.past.max(PRUNE_FROM)
    }

    /// A prune left `left` elements.
    fn pruned(&mut self, left: usize) {
        self.past = left.saturating_mul(2);
    }
}

impl Entry {
    fn is_live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

/// `None` for no expiry, and for a TTL too long for an `Instant` (which panicked on the
/// addition, a review found): one that outlasts the process.
fn deadline(ttl: Option<Duration>) -> Option<Instant> {
    ttl.and_then(|ttl| Instant::now().checked_add(ttl))
}

impl MemoryBackend {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps an index of sessions by the value of the session key `key` (see
    /// [`crate::index`] and [`SessionStore::find_indexed`](crate::SessionStore::find_indexed)).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use session_core::{backends::memory::MemoryBackend, SessionState, SessionStore};
    ///
    /// let store = SessionStore::new(MemoryBackend::new().with_index_key("user"));
    /// let alice = SessionState::from([("user".to_owned(), "\"alice\"".to_owned())]);
    /// let id = store.create(&alice, None).await.unwrap();
    /// assert_eq!(store.find_indexed("\"alice\"").await.unwrap(), vec![id]);
    /// # });
    /// ```
    pub fn with_index_key(mut self, key: impl Into<String>) -> Self {
        self.index_key = Some(key.into());
        self
    }

    /// Adds `id` to the entry, when there is one: before the write, as every backend does.
    fn add_to(&self, entry: Option<IndexName>, id: &SessionId) {
        let Some(entry) = entry else { return };
        let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        let index = &mut *index;
        let added = index
            .entries
            .entry(entry)
            .or_default()
            .insert(id.clone(), now_ms());
        if added.is_none() {
            index.names += 1;
        }
        if index.prune.due(index.names) {
            self.drop_stale_names(index);
        }
    }

    /// Drops the names of sessions that are gone or hold another value now, added more than
    /// [`INDEX_GRACE`] ago, as a lookup of each value would ([`SessionStore::find_indexed`]),
    /// and the entries left without names. A younger name may belong to a write in flight
    /// (its add comes before the write), so it stays whatever its session looks like.
    ///
    /// Called with the index locked; takes the sessions' lock inside it (nothing takes them
    /// the other way round).
    ///
    /// [`SessionStore::find_indexed`]: crate::SessionStore::find_indexed
    fn drop_stale_names(&self, index: &mut Index) {
        let stale_before = now_ms().saturating_sub(INDEX_GRACE.as_millis() as u64);
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let holds = |entry: &IndexName, id: &SessionId| {
            sessions.map.get(id).is_some_and(|session| {
                session.is_live(now)
                    && session
                        .state
                        .get(entry.key())
                        .is_some_and(|value| IndexName::new(entry.key(), value) == *entry)
            })
        };
        index.entries.retain(|entry, ids| {
            ids.retain(|id, added_ms| *added_ms >= stale_before || holds(entry, id));
            !ids.is_empty()
        });
        index.names = index.entries.values().map(HashMap::len).sum();
        index.prune.pruned(index.names);
    }

    /// Runs `f` on the live entry of `id` (dropping it first if it has expired).
    fn with_live<T>(
        &self,
        id: &SessionId,
        f: impl FnOnce(&mut HashMap<SessionId, Entry>) -> T,
    ) -> T {
        let mut guard = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let sessions = &mut *guard;
        let now = Instant::now();
        if sessions
            .map
            .get(id)
            .is_some_and(|entry| !entry.is_live(now))
        {
            sessions.map.remove(id);
        }
        // Expired entries of other ids are dropped now and then so the map cannot grow
        // without bound in a long-running quick-start server.
        if sessions.prune.due(sessions.map.len()) {
            sessions.map.retain(|_, entry| entry.is_live(now));
            sessions.prune.pruned(sessions.map.len());
            sessions.prunes += 1;
        }
        f(&mut sessions.map)
    }
}

#[async_trait]
impl SessionBackend for MemoryBackend {
    async fn load_with_ttl(
        &self,
        id: &SessionId,
    ) -> Result<Option<(SessionState, Option<Duration>)>, StoreError> {
        let now = Instant::now();
        Ok(self.with_live(id, |sessions| {
            sessions.get(id).map(|entry| {
                let left = entry.expires_at.map(|at| at.saturating_duration_since(now));
                (entry.state.clone(), left)
            })
        }))
    }

    async fn load(
        &self,
        id: &SessionId,
        touch: Option<Duration>,
    ) -> Result<Option<SessionState>, StoreError> {
        Ok(self.with_live(id, |sessions| {
            sessions.get_mut(id).map(|entry| {
                if touch.is_some() {
                    entry.expires_at = deadline(touch);
                }
                entry.state.clone()
            })
        }))
    }

    async fn create(
        &self,
        id: &SessionId,
        state: &SessionState,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        refuse_unless_json(NAME, state)?;
        self.add_to(entry_of_state(self.index_key(), state), id);
        Ok(self.with_live(id, |sessions| {
            if sessions.contains_key(id) {
                return false;
            }
            sessions.insert(
                id.clone(),
                Entry {
                    state: state.clone(),
                    expires_at: deadline(ttl),
                },
            );
            true
        }))
    }

    async fn replace(
        &self,
        id: &SessionId,
        state: &SessionState,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        refuse_unless_json(NAME, state)?;
        self.add_to(entry_of_state(self.index_key(), state), id);
        Ok(self.with_live(id, |sessions| match sessions.get_mut(id) {
            Some(entry) => {
                entry.state = state.clone();
                entry.expires_at = deadline(ttl);
                true
            }
            None => false,
        }))
    }

    async fn apply(
        &self,
        id: &SessionId,
        changes: &Changes,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        refuse_unless_json(NAME, &changes.set)?;
        self.add_to(entry_of_changes(self.index_key(), changes), id);
        Ok(self.with_live(id, |sessions| {
            let Some(entry) = sessions.get_mut(id) else {
                return false;
            };
            changes.apply_to(&mut entry.state);
            if ttl.is_some() {
                entry.expires_at = deadline(ttl);
            }
            if entry.state.is_empty() {
                sessions.remove(id);
            }
            true
        }))
    }

    async fn touch(&self, id: &SessionId, ttl: Option<Duration>) -> Result<bool, StoreError> {
        Ok(self.with_live(id, |sessions| match sessions.get_mut(id) {
            Some(entry) => {
                entry.expires_at = deadline(ttl);
                true
            }
            None => false,
        }))
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        Ok(self.with_live(id, |sessions| sessions.remove(id).is_some()))
    }

    fn index_key(&self) -> Option<&str> {
        self.index_key.as_deref()
    }

    async fn index_add(&self, index: &IndexName, id: &SessionId) -> Result<(), StoreError> {
        self.add_to(Some(index.clone()), id);
        Ok(())
    }

    async fn index_members(
        &self,
        index: &IndexName,
        oldest: Option<usize>,
    ) -> Result<Vec<IndexMember>, StoreError> {
        let entries = self.index.lock().unwrap_or_else(|e| e.into_inner());
        let mut members: Vec<IndexMember> = entries
            .entries
            .get(index)
            .into_iter()
            .flatten()
            .map(|(id, added_ms)| IndexMember {
                id: id.clone(),
                added_ms: *added_ms,
            })
            .collect();
        keep_oldest(&mut members, oldest);
        Ok(members)
    }

    async fn index_remove(
        &self,
        index: &IndexName,
        members: &[IndexMember],
    ) -> Result<(), StoreError> {
        let mut entries = self.index.lock().unwrap_or_else(|e| e.into_inner());
        let entries = &mut *entries;
        if let Some(ids) = entries.entries.get_mut(index) {
            for member in members {
                if ids.get(&member.id) == Some(&member.added_ms) {
                    ids.remove(&member.id);
                    entries.names -= 1;
                }
            }
            if ids.is_empty() {
                entries.entries.remove(index);
            }
        }
        Ok(())
    }

    async fn health(&self) -> Vec<BackendHealth> {
        vec![BackendHealth {
            name: NAME.into(),
            location: "process memory".into(),
            up: true,
            error: None,
        }]
    }

    fn place(&self, id: &SessionId) -> Option<String> {
        // This backend's own map: handles share it through an `Arc` of the backend.
        let map = std::ptr::from_ref(&self.sessions);
        Some(format!("memory:{map:p}#{}", id.as_str()))
    }

    fn name(&self) -> &str {
        NAME
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prunes(backend: &MemoryBackend) -> usize {
        backend.sessions.lock().unwrap().prunes
    }

    /// A value that is not JSON text is refused before anything is written, as Redis and the
    /// file store refuse it: the in-memory store took it, so an application's tests on it
    /// passed where production failed.
    #[tokio::test]
    async fn values_that_are_not_json_are_refused_as_every_backend_refuses_them() {
        let backend = MemoryBackend::new();
        let bad = SessionState::from([("user".to_owned(), "alice".to_owned())]);
        let good = SessionState::from([("user".to_owned(), "\"alice\"".to_owned())]);
        let id = SessionId::generate();
        assert!(backend
            .create(&id, &bad, None)
            .await
            .unwrap_err()
            .is_corrupt());
        assert_eq!(backend.load(&id, None).await.unwrap(), None);
        assert!(backend.create(&id, &good, None).await.unwrap());
        assert!(backend
            .replace(&id, &bad, None)
            .await
            .unwrap_err()
            .is_corrupt());
        let changes = Changes {
            set: bad.clone(),
            ..Changes::default()
        };
        assert!(backend
            .apply(&id, &changes, None)
            .await
            .unwrap_err()
            .is_corrupt());
        assert_eq!(backend.load(&id, None).await.unwrap(), Some(good));
    }

    /// The names in the index of `backend`, and in how many entries.
    fn index_size(backend: &MemoryBackend) -> (usize, usize) {
        let index = backend.index.lock().unwrap();
        let entries = &index.entries;
        (entries.values().map(HashMap::len).sum(), entries.len())
    }

    /// Makes every name of the index look added long ago (past the grace period).
    fn age_index(backend: &MemoryBackend) {
        let mut index = backend.index.lock().unwrap();
        for ids in index.entries.values_mut() {
            for stamp in ids.values_mut() {
                *stamp = 1000;
            }
        }
    }

    /// Index names whose session went away or holds another value now are dropped once the
    /// index passes a bound that doubles with what is left: they stayed until a lookup of
    /// their value, and nothing (no `sessionctl prune-index` reaches a process's memory)
    /// looks up a value written once, so every user name ever logged in (a value a client
    /// typed) kept an entry for the life of the process. Live names stay, and so do young
    /// ones (a write may be in flight).
    #[tokio::test]
    async fn the_index_does_not_keep_every_value_ever_written() {
        let backend = MemoryBackend::new().with_index_key("user");
        let state = |n: usize| SessionState::from([("user".to_owned(), format!("\"u{n}\""))]);
        let kept = SessionId::generate();
        assert!(backend.create(&kept, &state(0), None).await.unwrap());
        let switching = SessionId::generate();
        assert!(backend.create(&switching, &state(1), None).await.unwrap());
        for round in 0..20 {
            for n in 0..500 {
                let n = 2 + round * 500 + n;
                if n % 2 == 0 {
                    // A login, then its logout.
                    let id = SessionId::generate();
                    assert!(backend.create(&id, &state(n), None).await.unwrap());
                    assert!(backend.delete(&id).await.unwrap());
                } else {
                    // A live session whose value changes.
                    let changes = Changes {
                        set: state(n),
                        ..Changes::default()
                    };
                    assert!(backend.apply(&switching, &changes, None).await.unwrap());
                }
            }
            age_index(&backend);
        }
        let (names, entries) = index_size(&backend);
        assert!(
            names <= 2 * PRUNE_FROM,
            "{names} names in {entries} entries"
        );
        for (id, n) in [(&kept, 0), (&switching, 2 + 19 * 500 + 499)] {
            let entry = IndexName::new("user", &format!("\"u{n}\""));
            let members = backend.index_members(&entry, None).await.unwrap();
            assert!(members.iter().any(|m| m.id == *id), "u{n} lost its session");
        }
        // A name younger than the grace period stays, whatever its session.
        let gone = SessionId::generate();
        assert!(backend.create(&gone, &state(1), None).await.unwrap());
        assert!(backend.delete(&gone).await.unwrap());
        for n in 0..3 * PRUNE_FROM {
            backend.add_to(Some(IndexName::new("user", &format!("{n}"))), &gone);
        }
        let entry = IndexName::new("user", "\"u1\"");
        let members = backend.index_members(&entry, None).await.unwrap();
        assert!(
            members.iter().any(|m| m.id == gone),
            "a young name was dropped"
        );
    }

    /// Expired sessions are dropped once the map passes a bound that doubles with what is
    /// left, so a map that stays at one size is not scanned again on every operation (it was,
    /// at every power of two: 2,048 live sessions cost each request a scan of all of them).
    #[tokio::test]
    async fn expired_sessions_are_dropped_without_scanning_on_every_operation() {
        let backend = MemoryBackend::new();
        let state = SessionState::from([("n".to_owned(), "1".to_owned())]);
        let mut ids = Vec::new();
        for _ in 0..2048 {
            let id = SessionId::generate();
            assert!(backend.create(&id, &state, None).await.unwrap());
            ids.push(id);
        }
        let before = prunes(&backend);
        for id in ids.iter().take(500) {
            assert!(backend.load(id, None).await.unwrap().is_some());
        }
        assert_eq!(
            prunes(&backend),
            before,
            "scanned at a size that did not change"
        );

        // Expired entries of ids nobody loads again still go once the map grows past the bound.
        for _ in 0..3000 {
            let short = Some(Duration::from_nanos(1));
            assert!(backend
                .create(&SessionId::generate(), &state, short)
                .await
                .unwrap());
        }
        std::thread::sleep(Duration::from_millis(2));
        for _ in 0..5000 {
            assert!(backend
                .create(&SessionId::generate(), &state, None)
                .await
                .unwrap());
        }
        let left = backend.sessions.lock().unwrap().map.len();
        assert!(left <= 2048 + 5000, "expired sessions kept: {left}");
    }
}
