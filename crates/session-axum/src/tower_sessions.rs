//! [`TowerStore`]: tower-sessions' `SessionStore` trait over ours (cargo feature
//! `tower-sessions`), and [`TowerScopeLayer`], the per-request scope it uses to make a
//! `cycle_id` (a login) and a logout stick. The whole story (mapping, contract, costs) is on
//! the two types, so that it is what the crate's documentation shows.

use std::{
    cell::RefCell,
    collections::{HashMap, VecDeque},
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, PoisonError,
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use axum::http::{Request, Response, StatusCode};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use session_core::{SessionId, SessionState, SessionStore, StoreError, EXPIRY_KEY, MAX_TTL};

use crate::{Expiry, SessionError};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tower_layer::Layer;
use tower_service::Service;
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
/// A whole application (`SessionManagerLayer::new(store)`, with [`TowerScopeLayer`] around
/// it), as in the README:
///
/// ```no_run
/// // Cargo.toml: session-axum = { ..., features = ["tower-sessions"] }, tower-sessions = "0.14"
/// use axum::{routing::get, Router};
/// use session_axum::{TowerScopeLayer, TowerStore};
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
///         .layer(SessionManagerLayer::new(TowerStore::new(store)))
///         // Outside tower-sessions' layer (and axum-login's): logins and logouts stick.
///         .layer(TowerScopeLayer::new());
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
/// holds ids or session data); tower-sessions' middleware answers a failed save with an empty
/// 500 and sets no cookie, and a handler sees a failed load as an error from
/// `Session::get`/`insert`. A session over `session_redis_max_session_size` is refused and
/// nothing is stored. Inside [`TowerScopeLayer`] those 500s answer 503 (unavailable) and 413
/// (too large), as our own layers do. A corrupt stored session loads as no session, with a
/// warning.
///
/// # Logins and logouts: use [`TowerScopeLayer`]
///
/// tower-sessions' `cycle_id` (axum-login's login) deletes the old id in the handler and
/// `create`s the record under a new one after it. Alone, the adapter cannot tie the two
/// calls to one request: a logout landing between them is undone, and two `cycle_id`s of one
/// session at once both keep a live session. [`TowerScopeLayer`] around tower-sessions' layer
/// closes both (the new id first, the old one deleted after, nothing kept when that delete
/// finds the session gone); without it each call goes to the store as it comes, as before.
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
    /// Set once a delete outside [`TowerScopeLayer`] has been reported (once per
    /// [`TowerStore::new`]; clones share it).
    unscoped_reported: Arc<AtomicBool>,
    /// Set once this adapter (or a clone) has held a delete in a scope: a `create` outside
    /// one after that means the layer is inside tower-sessions' (see `create`).
    held_once: Arc<AtomicBool>,
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

    /// A store error as tower-sessions' error, noting an outage (and, inside
    /// [`TowerScopeLayer`], what the request's answer should say).
    fn backend_error(&self, err: StoreError) -> Error {
        self.note_failure(&err);
        Error::Backend(err.to_string())
    }

    /// Notes a failed store call: when it was unavailable, for
    /// [`failed_unavailable_within`](Self::failed_unavailable_within); inside
    /// [`TowerScopeLayer`], an outage (503) or a session too large (413) for its answer.
    fn note_failure(&self, err: &StoreError) {
        if err.is_unavailable() {
            *self
                .last_outage
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        }
        if err.is_unavailable() || err.is_too_large() {
            scope::mark(SessionError::from_store(err.clone()));
        }
    }

    /// Warns, once per [`TowerStore::new`], that a delete ran outside [`TowerScopeLayer`]:
    /// the store still works as without it, but a `cycle_id` (a login) racing a logout or
    /// another login can keep a session alive. On a delete only: it is the call where the
    /// scope matters, and an application that never deletes is not told about it.
    fn check_scope(&self) {
        if !scope::active() && !self.unscoped_reported.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "tower-sessions' store called outside session_axum::TowerScopeLayer (missing, or \
                 inside SessionManagerLayer; it must be the outer .layer): a cycle_id (a login) \
                 racing a logout or another login can keep a session alive, and store outages \
                 answer 500, not 503"
            );
        }
    }

    /// Creates `state` under `start`, or, when that id is taken (or was created without
    /// data, or deleted by this adapter recently), under a fresh `Id::default()`, up to
    /// [`CREATE_TRIES`] ids. The id it was created under. Errors are not noted
    /// ([`note_failure`](Self::note_failure)): a cycled record is created in a task of its
    /// own, outside the request's scope, and its caller notes them.
    async fn create_state(
        &self,
        start: Id,
        state: &SessionState,
        ttl: Duration,
    ) -> Result<Id, StoreError> {
        let mut tower_id = start;
        for _ in 0..CREATE_TRIES {
            let id = Self::session_id(&tower_id);
            // An id created without data is taken too, though nothing is stored under it yet.
            if !self.pending.contains(&id)
                && self.store.create_with_id(&id, state, Some(ttl)).await?
            {
                if state.is_empty() {
                    // Nothing was written, so nothing checked that the id is free in the
                    // store: a 128-bit random id colliding with a live session is beyond
                    // reach, and checking would cost the round trip an empty create saves.
                    self.pending.remember(id);
                }
                return Ok(tower_id);
            }
            tracing::warn!(
                backend = self.store.backend_name(),
                "tower-sessions id was taken; retrying with another"
            );
            tower_id = Id::default();
        }
        Err(StoreError::IdCollision {
            tries: CREATE_TRIES,
        })
    }

    /// tower-sessions' `create` of a record that is not a cycled one: a new session, or new
    /// data after a `flush`.
    async fn create_new(&self, record: &mut Record) -> session_store::Result<()> {
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
        record.id = self
            .create_state(record.id, &state, ttl)
            .await
            .map_err(|e| self.backend_error(e))?;
        Ok(())
    }

    /// tower-sessions' `create` of a record whose id `cycle_id` changed, inside
    /// [`TowerScopeLayer`], with the delete of the old id that `cycle_id` made (`held`,
    /// not sent yet): the new id is created first, then the old one deleted. When that delete
    /// finds nothing (a logout, a revoke or expiry since this request's load, or another
    /// `cycle_id` of the session that got there first), the new id is deleted again and the
    /// create fails, so that tower-sessions sets no cookie and the scope answers 409: a
    /// logout that lands anywhere in the cycle sticks, and of two at once one keeps a new id.
    ///
    /// The three calls run in a task of their own, to their end even when the request is
    /// dropped (a client gone): dropped between them, the old id stayed, or the new one did
    /// with an id nobody was ever sent. A failed create leaves the old session as it was
    /// (its delete was never sent), as our own layers' renews do.
    async fn create_cycled(
        &self,
        record: &mut Record,
        held: scope::Held,
    ) -> session_store::Result<()> {
        let Some(ttl) = time_left(record.expiry_date) else {
            // Expired before it was stored: nothing to create, and the old id goes, as it
            // would have without the scope.
            return held
                .send()
                .await
                .map(drop)
                .map_err(|e| self.backend_error(e));
        };
        let state = to_state(&self.store, record, ttl)?;
        let this = self.clone();
        let start = record.id;
        let cycled = self
            .store
            .run_to_the_end("cycle_id", async move {
                let id = this.create_state(start, &state, ttl).await?;
                let kept = this
                    .store
                    .finish_renew(&held.id, &Self::session_id(&id))
                    .await;
                Ok::<_, StoreError>((id, kept))
            })
            .await;
        match cycled {
            Ok((id, Ok(true))) => {
                record.id = id;
                Ok(())
            }
            Ok((_, Ok(false))) => {
                // Gone since the load. Keeping the new id would undo a logout, or leave a
                // second live session behind an old cookie; a cookie naming nothing would log
                // out a user whose other login won, whenever this answer reached the browser
                // last. tower-sessions answers a failed save with a 500 that sets no cookie;
                // the scope makes it 409.
                tracing::info!(
                    "session was deleted or its id cycled by another request during a cycle_id; nothing stored"
                );
                scope::mark(SessionError::Conflict);
                Err(Error::Backend(
                    "session was deleted or its id cycled by another request during its cycle_id"
                        .to_owned(),
                ))
            }
            Ok((_, Err(err))) | Err(err) => Err(self.backend_error(err)),
        }
    }

    /// The adapter over `store`; its TTL rule (`session_redis_key_expire`) and size limit
    /// apply to every write.
    pub fn new(store: SessionStore) -> Self {
        Self {
            store,
            pending: Arc::default(),
            deleted: Arc::default(),
            last_outage: Arc::default(),
            unscoped_reported: Arc::default(),
            held_once: Arc::default(),
        }
    }

    /// Whether `other` is this adapter or a clone of it (one `TowerStore::new`): a held
    /// delete belongs to the adapter that held it.
    fn same(&self, other: &TowerStore) -> bool {
        Arc::ptr_eq(&self.deleted, &other.deleted)
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
        // A create outside a scope by an adapter that held a delete in one: the layer wraps
        // the handler only (placed inside tower-sessions' layer), so a login's held delete
        // was sent when the handler ended, before this create, as without the layer. Every
        // delete is held in there, so `check_scope` never told
        // (`a_tower_scope_layer_inside_the_session_layer_warns_once`).
        if self.held_once.load(Ordering::Relaxed)
            && !scope::active()
            && !self.unscoped_reported.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                "tower-sessions' store created a session outside session_axum::TowerScopeLayer \
                 after holding a delete inside it: the layer is inside SessionManagerLayer (it \
                 must be the outer .layer), so a cycle_id (a login) racing a logout or another \
                 login can keep a session alive"
            );
        }
        // Inside `TowerScopeLayer`, a delete of a session this request loaded waits (see
        // `delete`); the create that comes after it says what that delete was.
        match scope::take_held(self) {
            None => self.create_new(record).await,
            Some(held) if held.tower_id == record.id => {
                // `flush`, then new data (a "logged out" message): tower-sessions creates the
                // record under the flushed id. The logout goes first, as without the scope
                // (its answer does not matter: gone is logged out), and a failed one stores
                // nothing, so the answer keeps the cookie of the session still stored.
                held.send().await.map_err(|e| self.backend_error(e))?;
                self.create_new(record).await
            }
            // `cycle_id`: the record under a new random id.
            Some(held) => self.create_cycled(record, held).await,
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        if scope::is_held(self, &record.id) {
            // Its delete waits for the end of the request (a handler called
            // `Session::delete`, then changed the record): without the scope the save found
            // the session gone and wrote nothing, so nothing is written.
            return Ok(());
        }
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
        if scope::is_held(self, session_id) {
            // Deleted earlier in this request; the delete only waits.
            return Ok(None);
        }
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
        scope::loaded(*session_id);
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
        // A delete of a session this request loaded is a logout (`flush`) or the first half
        // of a `cycle_id`: inside `TowerScopeLayer` it waits for the `create` of the cycled
        // record, or for the end of the request, where the layer sends it.
        if scope::hold(self, *session_id, &id) {
            // Only on a held delete (a login or a logout): no cost on reads and writes.
            if !self.held_once.load(Ordering::Relaxed) {
                self.held_once.store(true, Ordering::Relaxed);
            }
            return Ok(());
        }
        self.check_scope();
        // Not held: outside the layer, or a session this request did not load (a handler
        // that `flush`es without reading first; tower-sessions then deletes without a load).
        // Still possibly a logout, so sent to its end: sent in the request's future, a client
        // that closed the tab meanwhile dropped it, and the session outlived its logout
        // (`a_logout_without_a_load_sticks_when_its_request_is_dropped`).
        self.store
            .delete_to_the_end(&id)
            .await
            .map_err(|e| self.backend_error(e))?;
        Ok(())
    }
}

/// The per-request scope that [`TowerScopeLayer`] opens and [`TowerStore`] fills in.
///
/// A tokio task-local, not state in the store: one store serves every request of a process
/// at once, and requests of one connection share a task, while a task-local scope wraps
/// exactly one request's future (it is set while that future is polled). Outside a scope (no
/// layer) every function here does nothing and answers as for a request that loaded nothing.
mod scope {
    use super::*;

    /// A delete of a session this request loaded, not sent yet.
    pub(super) struct Held {
        /// The store that was asked (a request may use more than one).
        pub(super) store: TowerStore,
        /// tower-sessions' id, to tell a `cycle_id`'s create (another id) from a `flush`'s
        /// (this one).
        pub(super) tower_id: Id,
        /// Our id.
        pub(super) id: SessionId,
    }

    impl Held {
        /// Sends the delete, to its end even when the request is dropped meanwhile (a
        /// logout the user asked for). Whether there was a session.
        pub(super) async fn send(self) -> Result<bool, StoreError> {
            self.store.store.delete_to_the_end(&self.id).await
        }
    }

    #[derive(Default)]
    pub(super) struct RequestScope {
        /// The first id this request loaded: most requests load one session, and it costs
        /// no allocation.
        loaded: Option<Id>,
        /// Any other (several session layers, or several stores, on one route).
        more_loaded: Vec<Id>,
        /// The held delete: a `cycle_id`'s create sends it, or the layer at the end.
        held: Option<Held>,
        /// A store call of this request failed in a way the answer should tell.
        failure: Option<SessionError>,
    }

    impl RequestScope {
        fn has_loaded(&self, id: &Id) -> bool {
            self.loaded.as_ref() == Some(id) || self.more_loaded.contains(id)
        }
    }

    impl Drop for RequestScope {
        /// A request dropped with a delete still held (a client gone, a timeout layer,
        /// after the handler's `flush`): without the scope that delete was already made in
        /// the handler, so it is sent now, in a task of its own.
        fn drop(&mut self) {
            if let Some(held) = self.held.take() {
                held.store.store.delete_detached(held.id);
            }
        }
    }

    tokio::task_local! {
        pub(super) static REQUEST: RefCell<RequestScope>;
    }

    /// Whether this call runs inside [`TowerScopeLayer`].
    pub(super) fn active() -> bool {
        REQUEST.try_with(|_| ()).is_ok()
    }

    /// Notes why a store call of this request failed, when the answer should say so: the
    /// store unavailable (503), a session over `session_redis_max_session_size` (413), or a
    /// `cycle_id` that found its session gone (409). The last one noted is answered.
    pub(super) fn mark(failure: SessionError) {
        let _ = REQUEST.try_with(|scope| scope.borrow_mut().failure = Some(failure));
    }

    pub(super) fn take_failure() -> Option<SessionError> {
        REQUEST
            .try_with(|scope| scope.borrow_mut().failure.take())
            .ok()
            .flatten()
    }

    /// Notes that this request's load found the session `id`.
    pub(super) fn loaded(id: Id) {
        let _ = REQUEST.try_with(|scope| {
            let mut scope = scope.borrow_mut();
            if scope.has_loaded(&id) {
                return;
            }
            match scope.loaded {
                None => scope.loaded = Some(id),
                Some(_) => scope.more_loaded.push(id),
            }
        });
    }

    /// Whether the delete of `id` by `store` is held in this request.
    pub(super) fn is_held(store: &TowerStore, id: &Id) -> bool {
        REQUEST
            .try_with(|scope| {
                scope
                    .borrow()
                    .held
                    .as_ref()
                    .is_some_and(|held| held.tower_id == *id && held.store.same(store))
            })
            .unwrap_or(false)
    }

    /// Holds back the delete of `tower_id` when this request loaded that session (a logout
    /// or a `cycle_id`; a delete of an id it did not load, such as a `cycle_id` of a session
    /// created in this request, goes at once, and so does a second one). Whether it is held.
    pub(super) fn hold(store: &TowerStore, tower_id: Id, id: &SessionId) -> bool {
        REQUEST
            .try_with(|scope| {
                let mut scope = scope.borrow_mut();
                match &scope.held {
                    Some(held) => held.tower_id == tower_id && held.store.same(store),
                    None if scope.has_loaded(&tower_id) => {
                        scope.held = Some(Held {
                            store: store.clone(),
                            tower_id,
                            id: id.clone(),
                        });
                        true
                    }
                    None => false,
                }
            })
            .unwrap_or(false)
    }

    /// The held delete of `store`, for its create that sends it. Only that store's: a
    /// request under two session layers over two stores (an outer one for axum-login, an
    /// inner one for something else) saw the inner layer's `create` of a new session take
    /// the outer one's held logout, send it to the wrong store, where it found nothing, and
    /// answer 409 (nothing stored) with the logout never sent: the session stayed stored
    /// (`a_logout_under_one_layer_is_not_taken_by_another_layers_create`).
    pub(super) fn take_held(store: &TowerStore) -> Option<Held> {
        REQUEST
            .try_with(|scope| {
                let mut scope = scope.borrow_mut();
                match &scope.held {
                    Some(held) if held.store.same(store) => scope.held.take(),
                    _ => None,
                }
            })
            .ok()
            .flatten()
    }

    /// The held delete, whichever store's, for the layer at the end.
    pub(super) fn take_any_held() -> Option<Held> {
        REQUEST
            .try_with(|scope| scope.borrow_mut().held.take())
            .ok()
            .flatten()
    }
}

/// A tower [`Layer`] that gives each request a scope in which [`TowerStore`] makes
/// tower-sessions' `cycle_id` (axum-login's login) and logouts stick. Place it **outside**
/// tower-sessions' `SessionManagerLayer` (and axum-login's `AuthManagerLayer`, which holds
/// it): in axum the later `.layer` call is the outer one.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use axum::{body::Body, http::Request, routing::post, Router};
/// use session_axum::{TowerScopeLayer, TowerStore};
/// use tower::ServiceExt;
/// use tower_sessions::{Session, SessionManagerLayer};
///
/// async fn login(session: Session) -> &'static str {
///     session.cycle_id().await.unwrap(); // what axum-login's login does
///     session.insert("user", "alice").await.unwrap();
///     "logged in"
/// }
///
/// // `SessionStore::from_config(&SessionConfig::from_env()?)` in an app.
/// let store = session_core::SessionStore::memory();
/// let app = Router::new()
///     .route("/login", post(login))
///     .layer(SessionManagerLayer::new(TowerStore::new(store)).with_secure(false))
///     // Outside tower-sessions' layer.
///     .layer(TowerScopeLayer::new());
///
/// let res = app.oneshot(Request::post("/login").body(Body::empty()).unwrap()).await.unwrap();
/// assert_eq!(res.status(), 200);
/// assert!(res.headers().contains_key("set-cookie"));
/// # });
/// ```
///
/// # What the scope changes
///
/// tower-sessions' `cycle_id` deletes the old id at once, in the handler, and their layer
/// creates the record under the new id after the handler. Without a scope the store cannot
/// tie the two calls together, so a logout that landed between the request's load and its
/// create was undone (the session lived on under the new id), and two `cycle_id`s of one
/// session at once (a login sent twice, or a stolen cookie's request racing the victim's
/// login) both kept a live session. Inside the scope [`TowerStore`]:
///
/// * notes which sessions the request loaded, and **holds back** a delete of one of them;
/// * when the `create` of the cycled record comes, creates the new id **first**, then sends
///   the held delete; when that delete finds nothing (a logout, a revoke or expiry since the
///   load, or another `cycle_id` that got there first) it deletes the new id again and
///   fails, so tower-sessions sets no cookie (it answers a failed save with an empty 500
///   and adds no `Set-Cookie`), and this layer answers **409 Conflict**. A logout that
///   lands anywhere in the cycle sticks; of two at once exactly one keeps a new id, and the
///   loser's answer leaves the browser's cookie alone, so the browser keeps the winner's
///   cookie whichever answer arrives last. The loser's changes are dropped; handing it the
///   winner's id would hand a racing stolen cookie the victim's new session;
/// * a held delete with no create after it (a logout: `flush`; or a `cycle_id` whose request
///   saved nothing) is sent by this layer once the inner service is done. When it fails,
///   the answer is replaced by 503 (store unavailable) or 500, with no `Set-Cookie`, so the
///   browser keeps the cookie of the session that is still stored; a request dropped before
///   then (a client gone) still sends it, in a task of its own, and so is a cycle's create
///   and deletes, once begun, finished;
/// * a `flush` followed by new data (a "logged out" message) deletes the old id, then
///   creates the new session, as without the scope; a failed delete stores nothing;
/// * answers the empty 500 of tower-sessions and axum-login for a failed store call of the
///   request with what it was: **503** when the store was unavailable, **413** for a
///   session over `session_redis_max_session_size` (nothing stored), as our own layers do.
///   A 500 with a body is the handler's own and is kept;
/// * a held delete belongs to the [`TowerStore`] that held it (one [`TowerStore::new`] and
///   its clones): another adapter's create never takes it. Two tower-sessions layers over
///   clones of **one** adapter on one route are not told apart (the first create after a
///   held delete sends it, and a login then loses its ordering, as without the scope): give
///   each layer its own `TowerStore::new`.
///
/// # What it costs
///
/// Nothing in store calls: a request that only reads or writes its session makes the calls
/// it made without the layer (a load; a load and a save); a login is one load, one create
/// and one delete, as before (in the other order), and a loser one delete more. Per request:
/// one boxed future and a task-local of a few words, set while the request's future is
/// polled, with no allocation unless the request deletes a session or loads more than one.
///
/// # Without it
///
/// [`TowerStore`] works as before: each call goes to the store as it comes, and the two
/// races above are open (docs/tower-sessions.md). The first delete outside the scope logs
/// one warning naming this layer (once per [`TowerStore::new`]; its clones share it). So
/// does the layer placed inside tower-sessions' (it then covers the handler only, and a
/// login loses its ordering as without it): the first `create` outside the scope after a
/// delete held inside it.
#[derive(Debug, Clone, Copy, Default)]
pub struct TowerScopeLayer {
    _private: (),
}

impl TowerScopeLayer {
    /// The layer. It holds nothing: each [`TowerStore`] a request uses keeps what it needs in
    /// the request's scope.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<S> Layer<S> for TowerScopeLayer {
    type Service = TowerScopeService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TowerScopeService { inner }
    }
}

/// The [`Service`] made by [`TowerScopeLayer`]: runs the inner service inside the request's
/// scope, sends a logout's held delete after it, and answers the store failures the scope
/// noted (see the layer).
#[derive(Debug, Clone)]
pub struct TowerScopeService<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for TowerScopeService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send,
    ReqBody: Send + 'static,
    ResBody: axum::body::HttpBody + From<&'static str> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        // The clone that was polled ready serves this request; the fresh clone stays for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(scope::REQUEST.scope(RefCell::default(), async move {
            let result = inner.call(req).await;
            // A logout's delete, held back by `TowerStore::delete` (a `cycle_id`'s was sent by
            // its create). Sent even when the inner service failed: a logout the user asked
            // for.
            let logout = match scope::take_any_held() {
                Some(held) => {
                    let store = held.store.clone();
                    Some(held.send().await.map_err(|err| (store, err)))
                }
                None => None,
            };
            let res = result?;
            if let Some(Err((store, err))) = logout {
                store.note_failure(&err);
                let err = SessionError::from_store(err);
                err.log();
                return Ok(err.answer());
            }
            // tower-sessions and axum-login answer every store error with an empty 500. Only
            // such an answer is replaced: a 500 with a body is the handler's own (a failure of
            // its own after a session error it got past), and replacing it with "session store
            // unavailable" or "too large" hid its message behind a cause it did not have
            // (`a_handlers_own_500_is_not_rewritten_with_the_scope`).
            if res.status() != StatusCode::INTERNAL_SERVER_ERROR
                || res.body().size_hint().exact() != Some(0)
            {
                return Ok(res);
            }
            Ok(match scope::take_failure() {
                Some(failure) => failure.answer(),
                None => res,
            })
        }))
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
