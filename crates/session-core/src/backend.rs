//! The small trait every storage engine implements.
//!
//! Ids arrive already validated and TTLs already resolved by [`SessionStore`](crate::SessionStore),
//! so a backend only moves data. Every method is one round trip to the engine.

use std::time::Duration;

use async_trait::async_trait;

use crate::{Changes, IndexName, LoadedState, SessionId, SessionState, StoreError};

/// How long a moved marker stays where a session moved from
/// ([`SessionBackend::retire_many`]): longer than a move's retire and its one resend take
/// (a Redis request's socket timeout, twice). Also the most expiry a move gives the copies
/// it creates until its last step says it stands ([`crate::backends::multi`]).
pub const MOVED_MARKER_TTL: Duration = Duration::from_secs(60);

/// The token of the marker a multi-backend's logout leaves where sessions move from
/// ([`crate::backends::multi`], "A logout during a move"), in place of the session, for
/// [`MOVED_MARKER_TTL`]: a retire under this token, where a move's is random. A second
/// delete of the id that finds it (`Before`) answers "no session" whatever copy a move
/// in flight made elsewhere, and a move that finds it (`Other`) ends as a logout. No move
/// token or version tag is ever this value ([`fresh_token`]).
pub(crate) const LOGGED_OUT_TOKEN: u64 = 0;

/// A random token for a move or a version tag: never [`LOGGED_OUT_TOKEN`], whose marker
/// would otherwise read as a logout's (a move vouching with a copy's tag of that value
/// would take a logout's marker for its own).
pub(crate) fn fresh_token() -> u64 {
    loop {
        let token = rand::random();
        if token != LOGGED_OUT_TOKEN {
            return token;
        }
    }
}

/// What [`SessionBackend::retire_many`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retired {
    /// The session was there; it is gone now, this move's marker in its place.
    Now,
    /// This move's marker was there: the same retire ran already (its reply was lost).
    Before,
    /// Another move's marker was there, holding that move's token: the session moved away
    /// since this move read it. A move that found the session already in its target marks
    /// with the header tag of the copy it found there, which is the token of the move that
    /// made it ([`SessionBackend::create_many_tagged`]): to that move, the marker is its own
    /// ([`crate::backends::multi`], "Moving a session").
    Other(u64),
    /// Nothing: the session was deleted (a logout) or expired.
    Absent,
}

impl Retired {
    /// A delete's answer as a retire's: `Now` when the session was there, `Absent` when not
    /// (the stores whose retire is a delete, and the sources a multi-backend deletes).
    pub(crate) fn of_delete(found: bool) -> Self {
        if found {
            Self::Now
        } else {
            Self::Absent
        }
    }
}

/// A storage engine for sessions.
///
/// `ttl` is the expiry to set on the stored session; `None` means "no expiry". On
/// [`apply`](Self::apply) `None` leaves the current expiry as it is.
///
/// Conditional writes are the contract that makes logout stick: `replace`, `apply` and `touch`
/// never create a session that is absent (deleted or expired), and `create` never overwrites
/// one that exists.
#[async_trait]
pub trait SessionBackend: Send + Sync + 'static {
    /// Loads a session; when `touch` is given, also resets its expiry to that duration in the
    /// same round trip (sliding expiry).
    async fn load(
        &self,
        id: &SessionId,
        touch: Option<Duration>,
    ) -> Result<Option<SessionState>, StoreError>;

    /// Loads a session with what is left of its lifetime (`None`: no expiry), without touching
    /// it: for moving a session into another backend with the expiry it had (the file-store
    /// migration, a multi-backend load). The default knows no lifetime and says `None`;
    /// backends that store a deadline report it.
    async fn load_with_ttl(
        &self,
        id: &SessionId,
    ) -> Result<Option<(SessionState, Option<Duration>)>, StoreError> {
        Ok(self.load(id, None).await?.map(|state| (state, None)))
    }

    /// [`load`](Self::load), with the [`Version`] of what was loaded, for the write that
    /// follows it ([`apply_versioned`](Self::apply_versioned)). The default: the plain load,
    /// at an unknown version.
    async fn load_versioned(
        &self,
        id: &SessionId,
        touch: Option<Duration>,
    ) -> Result<Option<(SessionState, Version)>, StoreError> {
        Ok(self
            .load(id, touch)
            .await?
            .map(|state| (state, Version::default())))
    }

    /// [`load_versioned`](Self::load_versioned) without touching, read where writes go:
    /// never from a replica (`session_redis_sentinel_read_from_replicas`,
    /// `session_redis_cluster_read_from_replicas`), which may not have received a write made
    /// a moment ago. For the reads that decide a move ([`crate::backends::multi`]: whether a
    /// copy is the source's very value, whether a marker vouches for a copy), where a stale
    /// answer logged the user out. The default: `load_versioned(id, None)`.
    async fn load_versioned_from_primary(
        &self,
        id: &SessionId,
    ) -> Result<Option<(SessionState, Version)>, StoreError> {
        self.load_versioned(id, None).await
    }

    /// [`load_versioned`](Self::load_versioned), the state read in place ([`LoadedState`]):
    /// what the axum layer loads. The default: `load_versioned`'s map, copied once into one.
    /// Redis reads its reply in place, with no allocation per key (but for keys stored
    /// escaped).
    async fn load_in_place(
        &self,
        id: &SessionId,
        touch: Option<Duration>,
    ) -> Result<Option<(LoadedState, Version)>, StoreError> {
        Ok(self
            .load_versioned(id, touch)
            .await?
            .map(|(state, version)| (state.into(), version)))
    }

    /// [`apply`](Self::apply) by a request that loaded the session at `version`, and whose
    /// whole state after `changes` is `after` (what it loaded, with `changes` applied). A
    /// backend may use them to rewrite the session whole instead of applying the changes,
    /// when nothing else wrote it since `version` (Redis: when the records its writes add
    /// outweigh the session; a rewrite that meets another write applies `changes` instead),
    /// so only the changed keys change either way. The default: [`apply`](Self::apply) of
    /// `changes`.
    async fn apply_versioned(
        &self,
        id: &SessionId,
        version: Version,
        after: &[(&str, &str)],
        changes: &Changes,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        let _ = (version, after);
        self.apply(id, changes, ttl).await
    }

    /// Stores a new session under `id` only if nothing is stored there yet. Returns false when
    /// the id is taken. `state` is never empty.
    async fn create(
        &self,
        id: &SessionId,
        state: &SessionState,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError>;

    /// Replaces the whole state of an existing session. Returns false (and writes nothing)
    /// when the session is absent. `state` is never empty.
    async fn replace(
        &self,
        id: &SessionId,
        state: &SessionState,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError>;

    /// Sets and removes single keys of an existing session. Returns false (and writes
    /// nothing) when the session is absent. A session left with no keys is deleted.
    async fn apply(
        &self,
        id: &SessionId,
        changes: &Changes,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError>;

    /// Resets the expiry of an existing session (`None`: remove its expiry). Returns false
    /// when the session is absent.
    async fn touch(&self, id: &SessionId, ttl: Option<Duration>) -> Result<bool, StoreError>;

    /// [`touch`](Self::touch) of a copy a move made or found ([`crate::backends::multi`],
    /// "Moving a session"), only while it still carries the header tag `tag`: another
    /// move's copy under the id (made after a logout, on trial) keeps its minute. The
    /// default touches (stores that keep no tags).
    async fn touch_tagged(
        &self,
        id: &SessionId,
        ttl: Option<Duration>,
        tag: u64,
    ) -> Result<bool, StoreError> {
        let _ = tag;
        self.touch(id, ttl).await
    }

    /// Deletes a session. Returns whether it existed.
    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError>;

    /// [`load_with_ttl`](Self::load_with_ttl) for many sessions: one answer per id, in
    /// order. For moving sessions in bulk ([`crate::mover`]). The default runs the single
    /// operation, [`BATCH_WINDOW`] at a time; Redis overrides it with one pipeline (one round
    /// trip for the whole batch).
    async fn load_many_with_ttl(
        &self,
        ids: &[SessionId],
    ) -> Vec<Result<Option<(SessionState, Option<Duration>)>, StoreError>> {
        in_order(ids, |id| self.load_with_ttl(id)).await
    }

    /// [`create`](Self::create) for many sessions `(id, state, ttl)`: one answer per
    /// session, in order. Default and overrides as for
    /// [`load_many_with_ttl`](Self::load_many_with_ttl).
    async fn create_many(
        &self,
        sessions: &[(SessionId, SessionState, Option<Duration>)],
    ) -> Vec<Result<bool, StoreError>> {
        in_order(sessions, |(id, state, ttl)| self.create(id, state, *ttl)).await
    }

    /// [`create_many`](Self::create_many) for the copies a move makes
    /// ([`crate::backends::multi`]): `(id, state, ttl, tag)`, each stored under `tag` as its
    /// version's tag where the backend keeps one (Redis' header tag). The tag is the move's
    /// token, which its marker in the old store holds: a second move of the same session at
    /// the same instant finds this copy, marks the old store with its tag, and so with the
    /// first move's own token, which that move then takes for its own marker ("Moving a
    /// session"). The default ignores the tags (the file store and the in-memory store keep
    /// no versions).
    async fn create_many_tagged(
        &self,
        sessions: &[(SessionId, SessionState, Option<Duration>, u64)],
    ) -> Vec<Result<bool, StoreError>> {
        in_order(sessions, |(id, state, ttl, _)| self.create(id, state, *ttl)).await
    }

    /// [`delete`](Self::delete) for many sessions: one answer per id, in order. Default and
    /// overrides as for [`load_many_with_ttl`](Self::load_many_with_ttl).
    async fn delete_many(&self, ids: &[SessionId]) -> Vec<Result<bool, StoreError>> {
        in_order(ids, |id| self.delete(id)).await
    }

    /// Retires sessions a move has copied elsewhere ([`crate::mover`], a multi-backend's
    /// load): each one still stored is removed and a *moved marker* holding its token (the
    /// move's own random number, or the tag of the copy it found in its target: see
    /// [`Retired::Other`]) left in its place for [`MOVED_MARKER_TTL`], which every read
    /// takes for no session and a create writes over. `moves` are the ids with their
    /// tokens; one answer per id, in order.
    ///
    /// The answer is the last step of a move (rule 2 of
    /// [`backends::multi`](crate::backends::multi)): anything but [`Retired::Now`] and
    /// [`Retired::Before`] means the session went away since the move read it, and the move
    /// removes its copies. `Before` is this same move's marker: its retire ran already, and
    /// this is the request sent again after its reply was lost (the Redis client resends a
    /// request once after a dropped connection), which a plain delete answered "not there",
    /// as if a logout had come in between: the move then removed the only copy left. A marker
    /// of another move ([`Retired::Other`]) counts as gone, as a delete's "not there" did,
    /// unless it holds this move's own token (another move found this move's copy and
    /// marked with its tag): the other move may have been followed by a logout that removed
    /// its copy but not the marker (a process configured without the old store), so keeping
    /// a copy that marker does not stand for could undo that logout.
    ///
    /// The default deletes (`Now` when the session was there, `Absent` when not): right for
    /// a store whose delete cannot run without its caller knowing (the file store, the
    /// in-memory store: a local call either ran or failed). Redis keeps markers, since a
    /// request over the network can run and lose its reply; a pool passes it on to its
    /// members.
    async fn retire_many(&self, moves: &[(SessionId, u64)]) -> Vec<Result<Retired, StoreError>> {
        let ids: Vec<SessionId> = moves.iter().map(|(id, _)| id.clone()).collect();
        self.delete_many(&ids)
            .await
            .into_iter()
            .map(|deleted| deleted.map(Retired::of_delete))
            .collect()
    }

    /// Where this backend keeps the session `id`, in a form that another backend's answer
    /// can be compared with: the same answer from two backends means one stored copy, not
    /// two. A move between them (a multi-backend, [`crate::mover`]) then has nothing to move,
    /// must not delete "the old copy", which is the session itself, and must not create it
    /// again where a logout just deleted it: a pool and the same pool with a member more
    /// share most of their places. The default, `None`: not known, never taken for the same
    /// place as anything.
    ///
    /// Redis: `redis:<server>/<db>#<key>`, the server as configured (`host:port`, with
    /// `rediss://` for TLS, or the socket path; the sentinels' or the cluster seeds' list,
    /// sorted). Two spellings of one server (`localhost` and `127.0.0.1`, a socket and TCP)
    /// are two places: name servers the same way in both configurations. A move between
    /// them no longer deletes the sessions (a target that already had the session and holds
    /// the source's very value, by its tag, does not get its source retired:
    /// [`crate::backends::multi`]), but loads pay a move's steps for nothing. A pool answers its owning member's place; the
    /// file store its canonical directory and the id; the in-memory store its map.
    ///
    /// The answer holds the session id, a bearer credential: compare it, never log it.
    fn place(&self, id: &SessionId) -> Option<String> {
        let _ = id;
        None
    }

    /// The session key this backend indexes (`session_redis_index_key`), if any: every
    /// `create`, `replace` and `apply` (single or batched) that sets that key adds the id to
    /// the key's value's index entry, before the write or in the same round trip, so the
    /// entry may name a session that is gone or holds another value now, never miss one that
    /// holds its value (see [`crate::index`]). The default: no index.
    fn index_key(&self) -> Option<&str> {
        None
    }

    /// Adds `id` to the index entry `index`, stamped with the time of the call (a later add
    /// of the same id renews the stamp). The default: this backend keeps no index
    /// ([`StoreError::Unsupported`]).
    async fn index_add(&self, index: &IndexName, id: &SessionId) -> Result<(), StoreError> {
        let _ = (index, id);
        Err(no_index(self.name()))
    }

    /// Every id in the index entry `index`, with its stamp; with `oldest = Some(n)`, only the
    /// n with the oldest stamps (the likeliest stale, for a bounded prune). A superset: the
    /// caller checks each session's current value.
    async fn index_members(
        &self,
        index: &IndexName,
        oldest: Option<usize>,
    ) -> Result<Vec<IndexMember>, StoreError> {
        let _ = (index, oldest);
        Err(no_index(self.name()))
    }

    /// Removes these members from the index entry `index`, each only if its stamp is still
    /// the one given (an add since then renewed it, so it stays). For stale entries: a
    /// session deleted, expired, or holding another value now. An entry left without
    /// members is removed; with no members given, an entry that holds none is.
    async fn index_remove(
        &self,
        index: &IndexName,
        members: &[IndexMember],
    ) -> Result<(), StoreError> {
        let _ = (index, members);
        Err(no_index(self.name()))
    }

    /// Checks that the engine answers, for health endpoints. One entry per underlying server
    /// or engine.
    async fn health(&self) -> Vec<BackendHealth>;

    /// A short name for logs and errors, such as `redis` or `file`.
    fn name(&self) -> &str;
}

/// Which stored value of a session a load saw: handed back with the write that follows
/// ([`SessionStore::apply_versioned`](crate::SessionStore::apply_versioned)), so the write
/// can tell whether another write came in between. Only the backend that made it reads it:
/// any other backend, and every backend for [`Version::default`] (unknown), treats the
/// write as one without a version.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Version(Stamp);

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Stamp {
    #[default]
    Unknown,
    /// A value of `len` bytes whose header holds `tag`, read by the backend `origin`.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Tagged { origin: u64, tag: u64, len: usize },
    /// A session in Redis' former hash layout, read by the backend `origin`.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Hash { origin: u64 },
}

/// What a backend learns from a [`Version`] it is handed.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) enum Seen {
    /// Not one of this backend's, or unknown.
    Unknown,
    /// This backend read a value tagged so, of this many bytes.
    Tagged { tag: u64, len: usize },
    /// This backend read a session in the hash layout.
    Hash,
}

#[cfg_attr(not(feature = "redis"), allow(dead_code))]
impl Version {
    pub(crate) fn tagged(origin: u64, tag: u64, len: usize) -> Self {
        Self(Stamp::Tagged { origin, tag, len })
    }

    pub(crate) fn hash(origin: u64) -> Self {
        Self(Stamp::Hash { origin })
    }

    /// The header tag of a value in the string layout, whoever read it: the token a move
    /// that found this copy marks the source with ([`Retired::Other`]).
    pub(crate) fn tag(self) -> Option<u64> {
        match self.0 {
            Stamp::Tagged { tag, .. } => Some(tag),
            _ => None,
        }
    }

    /// What this version says to the backend `origin`.
    pub(crate) fn seen_by(self, origin: u64) -> Seen {
        match self.0 {
            Stamp::Tagged {
                origin: o,
                tag,
                len,
            } if o == origin => Seen::Tagged { tag, len },
            Stamp::Hash { origin: o } if o == origin => Seen::Hash,
            _ => Seen::Unknown,
        }
    }

    /// True when `self` and `other`, read by any two backends, may be one stored value: the
    /// same header tag (random, new with every rewrite, kept by appends, so two copies
    /// made apart never share it), or both sessions in the former hash layout, which have
    /// no tag to tell them apart. False for different tags, and for a backend that keeps
    /// no versions (the file store, the in-memory store), whose
    /// [`place`](SessionBackend::place) is exact. For a move whose target "already had"
    /// the session: two spellings of one Redis server are two places, and retiring the
    /// source would retire the target's copy, the same key ([`crate::backends::multi`]).
    pub(crate) fn may_be_same_value(self, other: Version) -> bool {
        match (self.0, other.0) {
            (Stamp::Tagged { tag: a, .. }, Stamp::Tagged { tag: b, .. }) => a == b,
            (Stamp::Hash { .. }, Stamp::Hash { .. }) => true,
            _ => false,
        }
    }

    /// A number no other backend of this process gets, for [`Version`]s: a version is only
    /// meaningful to the backend that read it.
    pub(crate) fn new_origin() -> u64 {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
}

/// One id of an index entry, with the time it was added (Unix milliseconds, the adding
/// process's clock).
#[derive(Clone, PartialEq, Eq)]
pub struct IndexMember {
    /// The session.
    pub id: SessionId,
    /// When it was added (or last renewed), in Unix milliseconds.
    pub added_ms: u64,
}

/// The id is the session's credential: only the stamp shows.
impl std::fmt::Debug for IndexMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexMember")
            .field("added_ms", &self.added_ms)
            .finish_non_exhaustive()
    }
}

/// Keeps the `oldest` members with the oldest stamps, when a limit is given
/// ([`SessionBackend::index_members`]).
pub(crate) fn keep_oldest(members: &mut Vec<IndexMember>, oldest: Option<usize>) {
    if let Some(n) = oldest {
        if members.len() > n {
            members.sort_unstable_by_key(|m| m.added_ms);
            members.truncate(n);
        }
    }
}

/// The error of a backend that keeps no index.
pub(crate) fn no_index(backend: &str) -> StoreError {
    StoreError::Unsupported {
        backend: backend.to_owned(),
        operation: "keep a session index (session_redis_index_key)".into(),
    }
}

/// The current time in Unix milliseconds, for index stamps.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// How many single operations the default batch methods of [`SessionBackend`] keep in
/// flight at once.
pub const BATCH_WINDOW: usize = 64;

/// Runs `op` on every item, [`BATCH_WINDOW`] at a time; the answers in the order of `items`.
pub(crate) async fn in_order<'a, T, R>(
    items: &'a [T],
    op: impl Fn(&'a T) -> futures_util::future::BoxFuture<'a, R>,
) -> Vec<R> {
    use futures_util::{stream::FuturesOrdered, StreamExt};
    let mut answers = Vec::with_capacity(items.len());
    let mut in_flight = FuturesOrdered::new();
    let mut next = items.iter();
    loop {
        while in_flight.len() < BATCH_WINDOW {
            match next.next() {
                Some(item) => in_flight.push_back(op(item)),
                None => break,
            }
        }
        match in_flight.next().await {
            Some(answer) => answers.push(answer),
            None => return answers,
        }
    }
}

/// Runs `work` in a task of its own, so that it runs to its end even when its caller is
/// dropped (a client gone, a timeout layer), and hands its answer to the caller while it
/// lives. For the steps whose half-done state is worse than either end: a move between
/// backends, the touch that gives a session its own TTL back after a sliding load. A panic
/// in `work` is the caller's; `None` when the runtime is shutting down and cancelled it.
pub(crate) async fn to_the_end<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> Option<T> {
    match tokio::spawn(work).await {
        Ok(answer) => Some(answer),
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        Err(_) => None,
    }
}

/// Answers given per group (`groups[g]`: the positions in the batch of group `g`'s items)
/// back in the order of the batch of `n` items.
#[cfg_attr(not(any(feature = "redis", feature = "file")), allow(dead_code))]
pub(crate) fn scatter<R>(n: usize, groups: &[Vec<usize>], answers: Vec<Vec<R>>) -> Vec<R> {
    let mut out: Vec<Option<R>> = (0..n).map(|_| None).collect();
    for (positions, answers) in groups.iter().zip(answers) {
        for (&p, answer) in positions.iter().zip(answers) {
            out[p] = Some(answer);
        }
    }
    out.into_iter()
        .map(|answer| answer.expect("every group answers for each of its items"))
        .collect()
}

/// The state of one backend, as reported by [`SessionStore::health`](crate::SessionStore::health).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BackendHealth {
    /// The backend's name, such as `redis` or `file`.
    pub name: String,
    /// Where it is, without credentials (for example `127.0.0.1:6379` or a directory).
    pub location: String,
    /// True when it answered.
    pub up: bool,
    /// Why it is down, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The health of the parts of a composite backend (a pool's members, a multi-backend's
/// backends), checked concurrently, each entry named `{part}/{name}`, where `part` is how the
/// composite names that part in its errors too.
pub(crate) async fn health_of_parts<'a>(
    parts: impl IntoIterator<Item = (String, &'a dyn SessionBackend)>,
) -> Vec<BackendHealth> {
    let checks = parts.into_iter().map(|(part, backend)| async move {
        let mut out = backend.health().await;
        for h in &mut out {
            h.name = format!("{part}/{}", h.name);
        }
        out
    });
    futures_util::future::join_all(checks)
        .await
        .into_iter()
        .flatten()
        .collect()
}
