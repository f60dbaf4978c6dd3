//! [`TowerStore`]: tower-sessions' `SessionStore` trait over ours (cargo feature
//! `tower-sessions`). The whole story (mapping, contract, costs) is on the type, the one public
//! item, so that it is what the crate's documentation shows.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use session_core::{SessionId, SessionState, SessionStore, StoreError, EXPIRY_KEY, MAX_TTL};

use crate::Expiry;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tower_sessions_core::{
    session::{Id, Record},
    session_store::{self, Error},
};

/// How many ids `create` tries before failing. Each collision of a fresh 128-bit id is already
/// astronomically unlikely; more than one means a broken backend.
const CREATE_TRIES: u32 = 3;

/// How long the adapter remembers the id of a record created without data (stored as nothing),
/// so that a save of it in the same request creates it, and the id of a session it deleted,
/// so that a `create` in the same request never uses it again: far longer than a request lasts.
pub const PENDING_FOR: Duration = Duration::from_secs(300);

/// At most this many ids of each kind are remembered; beyond it the oldest are forgotten (a
/// late save of a forgotten pending id then writes nothing, as for a session that is gone).
/// Bounds the memory an anonymous client can make the adapter hold, when a handler saves
/// every empty session.
const PENDING_MAX: usize = 10_000;

/// Domain separation for the id derivation: no other use of SHA-256 over 16 bytes can collide
/// with ours, and a future format can change it.
const ID_DERIVATION_TAG: &[u8] = b"tower-sessions id v1";

/// tower-sessions' `SessionStore` trait over [`session_core::SessionStore`], so
/// tower-sessions' `SessionManagerLayer`, and what is built on it (axum-login,
/// axum-messages, ...), keep sessions in every backend of ours: Redis standalone, Sentinel and
/// Cluster, the weighted pool, the multi-backends, the file store and memory, with
/// `session_redis_key_expire` applied as everywhere else.
///
/// Give it to `tower_sessions::SessionManagerLayer::new`; cheap to clone (clones share the
/// store). Built with the `tower-sessions` cargo feature, against tower-sessions-core 0.14
/// (the version axum-login 0.18 uses).
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::Arc;
///
/// use session_axum::TowerStore;
/// use tower_sessions::Session;
///
/// // Any store of ours: `SessionStore::from_config(&SessionConfig::from_env()?)` in an app.
/// let store = session_core::SessionStore::memory();
/// // What tower-sessions' layer does for a request that inserts a key:
/// let session = Session::new(None, Arc::new(TowerStore::new(store.clone())), None);
/// session.insert("user", "alice").await.unwrap();
/// session.save().await.unwrap();
/// // The same session through our store API: our layout, under the derived id.
/// let ours = store.load(&TowerStore::session_id(&session.id().unwrap())).await.unwrap();
/// assert_eq!(ours.unwrap()["user"], "\"alice\"");
/// # });
/// ```
///
/// A whole application (`SessionManagerLayer::new(store)`), as in the README:
///
/// ```no_run
/// // Cargo.toml: session-axum = { ..., features = ["tower-sessions"] }, tower-sessions = "0.14"
/// use axum::{routing::get, Router};
/// use session_axum::TowerStore;
/// use session_core::{SessionConfig, SessionStore};
/// use tower_sessions::{Session, SessionManagerLayer};
///
/// async fn counter(session: Session) -> String {
///     let n: u64 = session.get("n").await.unwrap().unwrap_or(0) + 1;
///     session.insert("n", n).await.unwrap();
///     n.to_string()
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let store = SessionStore::from_config(&SessionConfig::from_env()?).await?;
///     let app = Router::new()
///         .route("/counter", get(counter))
///         .layer(SessionManagerLayer::new(TowerStore::new(store)));
///     let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
///     axum::serve(listener, app).await?;
///     Ok(())
/// }
/// ```
///
/// # How their record maps onto our layout
///
/// A tower-sessions [`Record`] is `{ id, data, expiry_date }`:
///
/// * **data** (`HashMap<String, serde_json::Value>`) becomes our session state key for key:
///   each value is stored as its JSON text, exactly as our `Session` and actix-session store
///   theirs. On Redis each key is a record (`=key`) of the JSON object in the session's one
///   string (`v1:<tag>:{"=user":"alice"`, the object kept open for appends), so `redis-cli GET` shows it, and
///   [`session_core::SessionStore::load`] of [`TowerStore::session_id`] reads it.
/// * **expiry_date** becomes the stored session's TTL (what is left until then), passed
///   through our [TTL rule](session_core::TtlRule): `session_redis_key_expire`, when set,
///   wins, as for every other write. When that would keep the session past its expiry date,
///   the date is stored with it, under [`EXPIRY_KEY`] (`{"at_unix":N}`, as the axum layer
///   stores a deadline; so a record holding that key is refused), and a load past it answers
///   `None` and deletes the session: it ends at its date, as in tower-sessions' own stores. A
///   record whose expiry date has passed is never stored (`save` deletes it) and so never
///   loads. A load answers with the expiry date the store really holds (Redis `PTTL`, in the
///   same round trip as `GET`; a multi-backend asks the backend that has the session; the
///   stored date when earlier); when the session has no expiry, it answers 100 years
///   ([`session_core::MAX_TTL`]) from now. tower-sessions' own `Session` does not read the
///   loaded date (it computes a fresh one on every save); a cache in front of this store
///   (`CachingSessionStore`) does.
/// * **id**: theirs is an `i128` from `rand::thread_rng()` (128 bits, 22 characters of
///   base64url in their cookie); ours is a validated 256-bit id (43 characters). The key is
///   derived: `base64url(SHA-256("tower-sessions id v1" ‖ id as 16 little-endian bytes))`
///   ([`TowerStore::session_id`]). Why a hash, and not their 16 bytes padded to 32:
///   - the key is a one-way function of the cookie value, so whoever reads Redis (a replica, a
///     backup, `KEYS`, an operator tool) learns no cookie that logs anyone in. tower-sessions'
///     cookie is plain unless the app asks for a signed or private one, and the bare id is
///     then the bearer secret; our own layers' keys are safe because their cookies are
///     encrypted, and this keeps that property for tower-sessions apps.
///   - derived keys are uniform over 256 bits, so the pool's rendezvous hashing and the
///     cluster's slots spread tower-sessions sessions exactly as ours; a padded id would
///     have a fixed half, which reads as a weak id to anyone looking at keys.
///   - the derivation needs no state and no secret, so every process of an app (and any tool
///     holding a cookie value) finds the same key.
///
///   The session's secret is still their 128 bits: hashing does not add entropy. 128 bits from
///   a CSPRNG are far beyond guessing, but the number to quote for a tower-sessions app is 128,
///   not our 256.
///
/// # The trait's contract, operation by operation
///
/// | tower-sessions | here | Redis |
/// |---|---|---|
/// | `create(&mut record)` | create only if the derived key is absent; when taken, or deleted through this adapter in the last [`PENDING_FOR`] (after a `flush`, tower-sessions hands `create` the logged-out id), a fresh `Id::default()` and again (3 tries, then `Error::Backend`), as their trait lets a store do | script: `SET` `NX` `PX` |
/// | `save(&record)` | replace the whole state of an existing session (an empty one is deleted); nothing when it is gone | script: `SET` `PX` if present |
/// | `load(&id)` | the record, or `None` when absent, expired or corrupt (logged) | `GET` + `PTTL`, pipelined |
/// | `delete(&id)` | delete | `DEL` |
///
/// A session still stored as a hash by an earlier version of this library loads with one more
/// round trip (`HGETALL`), and its next `save` rewrites it as a string.
///
/// `save` never brings back a session that is gone: one that a logout deleted (in another
/// request, process or service) or that expired after this request loaded it. Their
/// in-memory store would write it again (an upsert); ours keeps our "logout sticks" promise, as
/// our own layers do. The one case where "gone" is only "never written" is handled too: our
/// stores never hold an empty session, so a record created without data (a handler calling
/// `session.save()` before inserting anything, to learn its id) stores nothing; the adapter
/// remembers such ids for [`PENDING_FOR`], and a later save of one creates it.
///
/// An emptied session (its last key removed) is deleted, and loads as no session: tower-sessions
/// then forgets it and removes the cookie, where their memory store would keep an empty record.
///
/// # What the whole-record save costs
///
/// tower-sessions hands the store the whole record on every save, and the store cannot know
/// which keys the request changed. So a save sends the whole session and replaces the stored
/// one, whatever it holds by then. Our own layers send only the keys their request changed:
/// their records, added to the session's stored string in one script. The same round trips
/// (one load, one write for a request that changes its session); our layers send far fewer
/// bytes when a request changes a small key of a large session (asserted by
/// `whole_record_save_costs_against_changed_key_records` in `tests/tower_sessions.rs`; the
/// commands inside our script count one each: 7 against 6 per request there). The other difference is **lost updates**: two concurrent requests that
/// change different keys of one session do not both win here: the later save replaces the
/// whole record, dropping the other request's key. Our own layers (changed keys only) keep
/// both. Apps for which this matters (concurrent requests writing to one session) should use
/// [`SessionLayer`](crate::SessionLayer). With tower-sessions' `with_always_save(true)` every
/// request is such a writer: one that only read puts back the record it loaded, undoing a
/// change (a removed key) that another request made meanwhile
/// (`always_save_makes_a_concurrent_reader_undo_a_change`).
///
/// # Errors
///
/// A store error becomes `session_store::Error::Backend` with our error's text (which never
/// holds ids or session data); tower-sessions' middleware answers a failed save with 500, and
/// a handler sees a failed load as an error from `Session::get`/`insert`. A session over
/// `session_redis_max_session_size` is refused and nothing is stored (500 through their
/// middleware, not our layers' 413). A corrupt stored session loads as no session, with a
/// warning.
///
/// Cookies are tower-sessions' own (their name, format and signing or encryption): a session
/// made through this adapter is shared with our store API, not with the cookies of our layers or
/// of actix-session.
#[derive(Clone)]
pub struct TowerStore {
    store: SessionStore,
    /// Ids created without data (nothing stored), with when: see [`PENDING_FOR`].
    pending: Arc<Recent>,
    /// Ids this adapter deleted, with when, for as long: `create` never hands one out again
    /// (see `create`).
    deleted: Arc<Recent>,
    /// When a call of this adapter (or a clone) last failed as unavailable: see
    /// [`TowerStore::failed_unavailable_within`].
    last_outage: Arc<Mutex<Option<Instant>>>,
}

/// Ids remembered for [`PENDING_FOR`], at most [`PENDING_MAX`] of them (the oldest forgotten
/// first), so that a client cannot make the adapter hold more. Every operation is O(1)
/// (amortized): a logout adds an id, and scanning all of them under the lock on each add once
/// full, as this did, cost every request 10,000 steps under a flood of logouts.
#[derive(Default)]
struct Recent(Mutex<RecentIds>);

#[derive(Default)]
struct RecentIds {
    since: HashMap<SessionId, Instant>,
    /// The ids in the order remembered. An entry whose id was taken since, or remembered
    /// again, is stale (the map no longer holds its instant): skipped when it comes first,
    /// and dropped all at once when the queue is twice the bound.
    order: VecDeque<(SessionId, Instant)>,
}

impl Recent {
    fn remember(&self, id: SessionId) {
        let mut guard = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let ids = &mut *guard;
        if ids.order.len() >= 2 * PENDING_MAX {
            let RecentIds { since, order } = ids;
            order.retain(|(id, at)| since.get(id) == Some(at));
        }
        // Forgotten from the oldest: what is stale, what has expired, and one more when full.
        while let Some((oldest, at)) = ids.order.front() {
            let live = ids.since.get(oldest) == Some(at);
            if live && at.elapsed() < PENDING_FOR && ids.since.len() < PENDING_MAX {
                break;
            }
            let (oldest, _) = ids.order.pop_front().expect("the front just seen");
            if live {
                ids.since.remove(&oldest);
            }
        }
        let now = Instant::now();
        ids.since.insert(id.clone(), now);
        ids.order.push_back((id, now));
    }

    fn contains(&self, id: &SessionId) -> bool {
        let ids = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        ids.since
            .get(id)
            .is_some_and(|since| since.elapsed() < PENDING_FOR)
    }

    /// Forgets `id`; true when it was remembered, recently enough.
    fn take(&self, id: &SessionId) -> bool {
        let mut ids = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        ids.since
            .remove(id)
            .is_some_and(|since| since.elapsed() < PENDING_FOR)
    }

    /// How many ids are remembered, and how many entries the order queue holds.
    #[cfg(test)]
    fn sizes(&self) -> (usize, usize) {
        let ids = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        (ids.since.len(), ids.order.len())
    }
}

impl std::fmt::Debug for TowerStore {
    /// The backend's name only: ids and data never reach `Debug` output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TowerStore")
            .field("backend", &self.store.backend_name())
            .finish_non_exhaustive()
    }
}

impl TowerStore {
    /// Whether a call of this adapter (or of a clone) failed as unavailable (the store down,
    /// a timeout) within the last `within`. tower-sessions answers every store error with an
    /// empty 500, whatever its cause: a layer in front of it can ask this to answer an outage
    /// with 503 (the axum-login demo's `outage_is_503`), where the store's health check,
    /// reused for a second, still said "up" right after an outage began.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let tower = session_axum::TowerStore::new(session_core::SessionStore::memory());
    /// assert!(!tower.failed_unavailable_within(Duration::from_secs(1)));
    /// ```
    pub fn failed_unavailable_within(&self, within: Duration) -> bool {
        self.last_outage
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|at| at.elapsed() <= within)
    }

    /// A store error as tower-sessions' error, noting an outage.
    fn backend_error(&self, err: StoreError) -> Error {
        if err.is_unavailable() {
            *self
                .last_outage
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        }
        Error::Backend(err.to_string())
    }

    /// The adapter over `store`; its TTL rule (`session_redis_key_expire`) and size limit
    /// apply to every write.
    pub fn new(store: SessionStore) -> Self {
        Self {
            store,
            pending: Arc::default(),
            deleted: Arc::default(),
            last_outage: Arc::default(),
        }
    }

    /// The store underneath, to read or delete through our API what tower-sessions wrote.
    pub fn store(&self) -> &SessionStore {
        &self.store
    }

    /// Our id (the store key's suffix) of a tower-sessions id: see the
    /// [type documentation](TowerStore#how-their-record-maps-onto-our-layout) for why it is a hash.
    ///
    /// ```
    /// use session_axum::TowerStore;
    /// use tower_sessions::session::Id;
    ///
    /// let id = Id::default();
    /// let ours = TowerStore::session_id(&id);
    /// assert_eq!(ours.as_str().len(), 43);
    /// assert_eq!(TowerStore::session_id(&id), ours); // the same in every process
    /// assert_ne!(TowerStore::session_id(&Id(id.0 ^ 1)), ours);
    /// ```
    pub fn session_id(id: &Id) -> SessionId {
        let digest = Sha256::new()
            .chain_update(ID_DERIVATION_TAG)
            .chain_update(id.0.to_le_bytes())
            .finalize();
        SessionId::parse(&URL_SAFE_NO_PAD.encode(digest))
            .expect("32 bytes in base64url are a well-formed session id")
    }
}

/// What is left until `expiry_date`, as the framework TTL of a write; `None` when it has passed.
fn time_left(expiry_date: OffsetDateTime) -> Option<Duration> {
    let left = expiry_date - OffsetDateTime::now_utc();
    if left <= time::Duration::ZERO {
        return None;
    }
    Some(Duration::try_from(left).unwrap_or(MAX_TTL).min(MAX_TTL))
}

/// The record's data as our state: each value as its JSON text.
///
/// Plus the record's expiry date under [`EXPIRY_KEY`], as the axum layer stores an
/// `AtDateTime` deadline, when the store would keep the session longer than that date:
/// `session_redis_key_expire` decides the TTL of every write, so a session due in a minute was
/// kept, and served, for the whole `key_expire`. tower-sessions' own stores never load a record
/// past its date; `load` ends it there. Never for an empty record, which must stay nothing.
fn to_state(store: &SessionStore, record: &Record, ttl: Duration) -> Result<SessionState, Error> {
    if record.data.contains_key(EXPIRY_KEY) {
        return Err(Error::Encode(format!(
            "session key `{EXPIRY_KEY}` is reserved for the session's expiry date"
        )));
    }
    let mut state = record
        .data
        .iter()
        .map(|(key, value)| {
            // Serialising a `serde_json::Value` cannot fail (its map keys are strings); the
            // message names the key only, never the data.
            serde_json::to_string(value)
                .map(|json| (key.clone(), json))
                .map_err(|_| Error::Encode(format!("session key `{key}` could not be encoded")))
        })
        .collect::<Result<SessionState, Error>>()?;
    if !state.is_empty()
        && store
            .effective_ttl(Some(ttl))
            .is_some_and(|kept| kept > ttl)
    {
        let deadline = Expiry::AtDateTime(record.expiry_date).to_json();
        state.insert(EXPIRY_KEY.to_owned(), deadline);
    }
    Ok(state)
}

/// The deadline [`to_state`] stored, as a date; `None` for anything else.
fn stored_deadline(json: &str) -> Option<OffsetDateTime> {
    match Expiry::from_json(json)? {
        Expiry::AtDateTime(at) => Some(at),
        _ => None,
    }
}

#[async_trait]
impl session_store::SessionStore for TowerStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // Never an id this adapter deleted: after `Session::flush` tower-sessions hands
        // `create` the record under the id it has just deleted (in the same request, so in
        // this process), the one in every copy of the logged-out cookie. Created again under
        // it, the new session answered to those cookies, and a request that had loaded the
        // session before the logout saved its whole logged-in record over the new one: the
        // logout was undone. Any other id is kept: their `CachingSessionStore` creates in its
        // cache under the id its store chose, and a new id there orphaned the stored session.
        if self.deleted.contains(&Self::session_id(&record.id)) {
            record.id = Id::default();
        }
        let Some(ttl) = time_left(record.expiry_date) else {
            // Expired before it was stored: it could never load, so storing it is pointless.
            return Ok(());
        };
        let state = to_state(&self.store, record, ttl)?;
        for _ in 0..CREATE_TRIES {
            let id = Self::session_id(&record.id);
            // An id created without data is taken too, though nothing is stored under it yet.
            if !self.pending.contains(&id)
                && self
                    .store
                    .create_with_id(&id, &state, Some(ttl))
                    .await
                    .map_err(|e| self.backend_error(e))?
            {
                if state.is_empty() {
                    // Nothing was written, so nothing checked that the id is free in the
                    // store: a 128-bit random id colliding with a live session is beyond
                    // reach, and checking would cost the round trip an empty create saves.
                    self.pending.remember(id);
                }
                return Ok(());
            }
            tracing::warn!(
                backend = self.store.backend_name(),
                "tower-sessions id was taken; retrying with another"
            );
            record.id = Id::default();
        }
        Err(self.backend_error(StoreError::IdCollision {
            tries: CREATE_TRIES,
        }))
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let id = Self::session_id(&record.id);
        let Some(ttl) = time_left(record.expiry_date) else {
            // Saved with an expiry date in the past: the session is over.
            self.pending.take(&id);
            self.store
                .delete(&id)
                .await
                .map_err(|e| self.backend_error(e))?;
            return Ok(());
        };
        let state = to_state(&self.store, record, ttl)?;
        if self
            .store
            .replace(&id, &state, Some(ttl))
            .await
            .map_err(|e| self.backend_error(e))?
        {
            return Ok(());
        }
        if self.pending.take(&id) {
            // Created without data earlier in this request, so never written: write it now,
            // still only if absent.
            if !self
                .store
                .create_with_id(&id, &state, Some(ttl))
                .await
                .map_err(|e| self.backend_error(e))?
            {
                tracing::warn!("a tower-sessions id created without data was taken meanwhile; the save is dropped");
            } else if state.is_empty() {
                self.pending.remember(id);
            }
            return Ok(());
        }
        // Deleted meanwhile (a logout elsewhere) or expired: bringing it back would undo that
        // logout, so the save is dropped, as our own layers drop such changes.
        tracing::debug!(
            "session vanished before tower-sessions saved it (logged out or expired); save dropped"
        );
        Ok(())
    }

    async fn load(&self, session_id: &Id) -> session_store::Result<Option<Record>> {
        let id = Self::session_id(session_id);
        let (mut state, left) = match self.store.load_with_ttl(&id).await {
            Ok(Some(found)) => found,
            Ok(None) => return Ok(None),
            Err(err) if err.is_corrupt() => {
                tracing::warn!(error = %err, "corrupt stored session treated as no session");
                return Ok(None);
            }
            Err(err) => return Err(self.backend_error(err)),
        };
        let deadline = match state.remove(EXPIRY_KEY) {
            Some(json) if session_core::past_deadline(&json) => {
                // Past the record's expiry date, though `key_expire` kept the key: over.
                self.store.end_past_deadline(&id).await;
                return Ok(None);
            }
            Some(json) => stored_deadline(&json),
            None => None,
        };
        let mut data = HashMap::with_capacity(state.len());
        for (key, json) in state.drain() {
            // Backends check that every value is JSON text on load; a value that is not
            // would be corruption, treated as above.
            let Ok(value) = serde_json::from_str(&json) else {
                tracing::warn!(
                    "corrupt stored session (a value is not JSON) treated as no session"
                );
                return Ok(None);
            };
            data.insert(key, value);
        }
        // Its table goes back for the next load on this thread (`recycle_state`).
        session_core::recycle_state(state);
        let left = left.unwrap_or(MAX_TTL);
        let kept = OffsetDateTime::now_utc()
            .saturating_add(time::Duration::try_from(left).unwrap_or(time::Duration::MAX));
        let expiry_date = deadline.map_or(kept, |deadline| deadline.min(kept));
        Ok(Some(Record {
            id: *session_id,
            data,
            expiry_date,
        }))
    }

    async fn delete(&self, session_id: &Id) -> session_store::Result<()> {
        let id = Self::session_id(session_id);
        self.pending.take(&id);
        self.deleted.remember(id.clone());
        self.store
            .delete(&id)
            .await
            .map_err(|e| self.backend_error(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_valid_distinct_and_stable() {
        let ids: std::collections::HashSet<_> = (0..1000i128)
            .map(|n| TowerStore::session_id(&Id(n)))
            .collect();
        assert_eq!(ids.len(), 1000);
        // Pinned (computed independently, with Python's hashlib): a change of derivation
        // would orphan every stored tower-sessions session.
        let pinned = |n: i128| TowerStore::session_id(&Id(n)).as_str().to_owned();
        assert_eq!(pinned(0), "iaoSOeEWavZfZDElKhv4FgK1AZoENITXrHpxYpKFbks");
        assert_eq!(pinned(1), "qgtXVmNAqpC9Lf2X_l2OxHv54pF95hQ000enEOjjAI0");
        assert!(SessionId::parse(TowerStore::session_id(&Id(i128::MIN)).as_str()).is_ok());
    }

    #[test]
    fn time_left_of_past_and_far_dates() {
        assert_eq!(time_left(OffsetDateTime::now_utc()), None);
        assert_eq!(
            time_left(OffsetDateTime::now_utc() - time::Duration::hours(1)),
            None
        );
        let hour = time_left(OffsetDateTime::now_utc() + time::Duration::hours(1)).unwrap();
        assert!(hour <= Duration::from_secs(3600) && hour > Duration::from_secs(3500));
        let far = OffsetDateTime::now_utc() + time::Duration::days(365 * 500);
        assert_eq!(time_left(far), Some(MAX_TTL));
    }

    #[test]
    fn pending_ids_are_bounded() {
        let store = TowerStore::new(SessionStore::memory());
        let first = SessionId::generate();
        store.pending.remember(first.clone());
        for _ in 0..PENDING_MAX {
            store.pending.remember(SessionId::generate());
        }
        assert_eq!(store.pending.sizes().0, PENDING_MAX);
        // The oldest went first.
        assert!(!store.pending.take(&first));
    }

    /// Ids taken soon after they were remembered (an id created without data, then saved,
    /// in every request) leave stale entries in the order queue: they are dropped, the queue
    /// stays bounded, and an id still remembered among them is kept.
    #[test]
    fn remembered_ids_taken_again_leave_the_queue_bounded() {
        let recent = Recent::default();
        let kept = SessionId::generate();
        recent.remember(kept.clone());
        for _ in 0..3 * PENDING_MAX {
            let id = SessionId::generate();
            recent.remember(id.clone());
            assert!(recent.take(&id));
        }
        let (remembered, queued) = recent.sizes();
        assert!(queued <= 2 * PENDING_MAX, "{queued}");
        assert_eq!(remembered, 1);
        assert!(recent.contains(&kept));
    }

    #[test]
    fn debug_shows_the_backend_only() {
        let store = TowerStore::new(SessionStore::memory());
        assert_eq!(
            format!("{store:?}"),
            "TowerStore { backend: \"memory\", .. }"
        );
    }
}
