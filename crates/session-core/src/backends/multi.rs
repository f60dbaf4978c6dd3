//! `session_redis_multi_backends`: several backends, each with read / write / delete modes
//! (acs_redis_multi_sessions' `ACS_SESSION_MULTISESSIONS_POOL`), for moving sessions from one
//! engine to another and for separate read and write paths.
//!
//! The semantics are deterministic and never hide a failure:
//!
//! * **load** asks the `read` backends in configured order; the first that has the session
//!   wins. An error does not stop the search, but when no backend had the session and one
//!   failed, that error is returned (never a silent logout). A session found in a backend
//!   without `write` mode is first copied (conditional create) into every `write` backend, so
//!   the request's later conditional writes find it, then deleted from where it was found when
//!   that backend has `delete` mode: that is how sessions move between engines (see "Moving
//!   a session" below). The copy's TTL is the touch TTL when the load touches, else what the
//!   session had left where it was found, else `session_redis_key_expire`, else none
//!   ([`TtlRule::for_move`]). When a `write` backend already holds the id, that backend
//!   keeps its copy, and the move answers (and creates in the write backends after it) the
//!   first live copy: a `read`, `write` backend's, where later loads read it, or one kept in
//!   the source's own place. A copy in a write-only backend elsewhere counts only when no
//!   write backend is `read`, and otherwise (a mirror, filled apart, which may have missed a
//!   write) the source's state does (`Found`). A miss writes nothing. A load that finds
//!   the session in a `read`, `write` backend copies it nowhere: a mirror gets what moves
//!   and creates bring it, and a copying [mover](crate::mover) from the old backend into it
//!   (`sessionctl migrate`) the rest.
//! * **create** goes to every `write` backend, conditionally; when one reports the id taken
//!   (false) or fails (error), the copies already made are removed (best effort, logged).
//! * **replace / apply / touch** go to every `write` backend: true when the session existed in
//!   any; an error from any backend is returned after all were tried.
//! * **delete** goes to every `delete` backend and every `write` backend (write implies
//!   delete, so a logout always removes what was written), the backends sessions move *from*
//!   first, then the `read`, `write` ones, then the write-only ones (a copy into a mirror
//!   out of a `read`, `write` backend has that one as its source): true when a `read`
//!   backend had it (a mirror's copy alone is no session: no load finds it, and a renew
//!   decides by this answer); errors as above. The copy in a backend sessions move from
//!   is not removed but replaced by a logout's marker for a minute, and a delete that
//!   finds one answers false ("A logout during a move", below). A write that leaves no key (`apply_versioned` with no entries after
//!   it: a logout by clearing the session) first ends the copies of the backends
//!   sessions move from, as a delete does. Configuration refuses a `read` backend
//!   with neither `write` nor `delete`: a session deleted elsewhere would be found there
//!   again and brought back.
//! * **health** reports every backend, named.
//!
//! Each backend builds its own clients: nothing is shared between backends.
//!
//! # Moving a session, and a logout at the same instant
//! A move reads the session where it is (the *source*), creates it in the write backends
//! (the *targets*), then retires the source. A logout (delete) that runs in between must not
//! be undone by the create. Two rules make sure of it, across processes too:
//!
//! 1. A delete removes the source copies **before** the target copies.
//! 2. The mover that created the target copies then *retires* the source
//!    ([`SessionBackend::retire_many`]): on Redis the session's key there gets a moved
//!    marker of this move's own in place of the session, for
//!    [`MOVED_MARKER_TTL`](crate::MOVED_MARKER_TTL), and the answer says what was there. The
//!    session, or this move's marker (its retire ran, the reply was lost and the Redis
//!    client sent it again): the move stands. Nothing, or another move's marker: the
//!    session went away since the mover read it, so the mover removes the copies it just
//!    made and reports no session. A plain delete answered "not there" to its own resend
//!    too, and the move then removed the only copy left. A retire that fails is sent once
//!    more before the move gives up: only its answer tells a logout. The file store keeps
//!    the same markers as files ("A logout during a move", below); the in-memory store's
//!    retire deletes: a local delete either ran or failed.
//!
//! Rule 2 needs the move to reach its last step: a move runs in a task of its own, which a
//! dropped request (a client gone, a timeout layer) does not cancel. And its removal of the
//! copies must work. Neither is certain (a process stops between the create and the retire;
//! the write backend does not answer a moment later), so a move creates its copies **on
//! trial**, with at most [`MOVED_MARKER_TTL`](crate::MOVED_MARKER_TTL) of expiry, and gives
//! them the expiry they were made for (a `touch`) once the last step says the move stands.
//! A copy made after a logout whose removal failed, or whose move never got that far, then
//! ends within a minute instead of keeping the user logged in for the session's lifetime
//! (unless a request with its cookie writes to it, or reads it with sliding expiry, within
//! that minute, which gives it a session's expiry again: a window of a minute, where there
//! was the session's lifetime). A copy whose `touch` fails ends as well unless so refreshed
//! (a user logged out: the safe direction). The `touch` goes only to a copy that still
//! carries the tag the move made it with ([`SessionBackend::touch_tagged`]): the id may
//! hold another move's copy by then, made after a logout, whose minute it must not end. The
//! source's copy is not retired until that last step, so a move stopped before it is made
//! again by a load after the minute.
//!
//! The trial has two costs, both in the safe direction (a user logged out, never kept
//! logged in): a copy whose maker never confirms it (its create's reply lost, its process
//! stopped) but which another move found, retiring the source for it, ends within a minute
//! unless used; and a session kept without any expiry whose copy is rewritten (a new tag)
//! between its create and the confirm keeps the trial's minute, since a write without an
//! expiry keeps the key's. A move that only found a copy leaves its expiry alone: giving a
//! found copy with at most a minute left the old store's expiry (a review's first answer to
//! the first cost) also gave a copy near its natural end the old store's longer expiry, or
//! none at all (`a_found_copy_near_its_end_keeps_its_own_expiry`).
//!
//! A write backend that keeps the session in the very place the source does
//! ([`SessionBackend::place`]: a pool and the same pool with a member more) holds no copy to
//! make and the source no old copy to delete: the move asks the source instead of deleting
//! it (as a copying move does), and a write backend that no longer has the session (a logout
//! since the read) ends the move with no session, never creates it there again. A load does
//! not even ask such a source when every write backend keeps the session in that place and
//! one of them is also a `read` one: it reads the same key there, as a plain load. When
//! another write backend keeps it elsewhere (a mirror being filled for a later switch), the
//! load goes through the move, which copies the session there.
//!
//! One server, db and prefix written two ways (`localhost` and `127.0.0.1`, a socket and
//! TCP) is two places to [`SessionBackend::place`], which compares configured addresses. A
//! move out of one spelling into the other finds the session "already there" (the same
//! key), and retiring the source would retire that copy, the only one: each session would
//! be lost on its first load (with the source listed before the writer; listed after, a
//! load finds the writer's copy first and moves nothing). So a move whose write backend
//! already had the session reads the versions of the source's value and of that copy
//! (`load_versioned`): the same header tag (random, new with every rewrite, never shared
//! by copies made apart; the source read again after the copy, so that one rewrite in
//! between does not hide it), or both in the former hash layout (no tag to tell), and the
//! source is asked instead of retired, as above; so it is when one of these reads fails.
//! They read the primary ([`SessionBackend::load_versioned_from_primary`]), never a replica
//! (`session_redis_sentinel_read_from_replicas`), which may not have seen the copy a
//! moment-old move made: the same read gives the tag a move marks with when it found a copy
//! (below), and a replica without the copy made the second of two moves mark with a token
//! of its own, which the first took for a logout.
//! Copies made apart are retired as before;
//! a byte-for-byte clone (a replica's data, an RDB restored elsewhere) is left in the
//! source, a stale copy that a logout removes (rule 1) and that expires on its own.
//!
//! Every interleaving then ends with no copy: a logout that deleted the source before the
//! mover's create is seen by rule 2; one that deleted it after the mover did also deletes the
//! targets afterwards (rule 1). In one process, moves and deletes of the same id also wait
//! for each other (per-id locks), at most [`DEFAULT_LOCK_TIMEOUT`]
//! ([`MultiBackend::with_lock_timeout`]) each: a client's many requests of one session must
//! not queue one backend timeout after another.
//!
//! Across processes, two moves of one session at the same instant (a browser's parallel
//! requests sent to two workers, on the first visit after a switch) meet: both read the
//! source, one creates the copy, the other finds it. Another move's marker cannot simply
//! count as "moved": a logout after that move, made by a process configured without the
//! old store (or by clearing the session), removes the copy but not the marker, and a stale
//! move that created a copy of its own afterwards would undo the logout by keeping it. So a
//! marker says which copy it stands for:
//!
//! * every move has a random token of its own, and the copies it **creates** carry it as
//!   their header tag ([`SessionBackend::create_many_tagged`]);
//! * a move that **found** the session in its write backend (its create answered "taken",
//!   or the copy was there when it looked) marks the source with that copy's tag (read by
//!   the same-value check above): the token of the move that made it. Any other move marks
//!   with its own token.
//!
//! So the move that made a copy and the moves that found it leave one marker, the same
//! token: whichever retires second finds "its own" marker (`Before`), and the copy stands.
//! A move that created its copies and finds another token ends as a logout: that marker
//! stands for another copy (one removed by a logout since, and maybe made again by a stale
//! move: a review's three-process test, where comparing the tag the new store held
//! *now* kept a copy made after the logout). A move that made no copy keeps nothing either
//! way. Two more rules close the rest:
//!
//! * a create that finds exactly its state under another tag is another create's, "taken"
//!   (the `CREATE` script compares the whole value, header included), so the second of two
//!   moves never takes the first one's copy for its own;
//! * a move's creates go **at most once** (on a cluster through a connection that retries
//!   nothing, not even a redirection): sent again after a lost reply, a create wrote its
//!   copy back, tag and all, where a logout through a process configured without the old
//!   store had just removed it, and the marker then vouched for it. A lost reply fails the move instead (its copies
//!   removed, the old store untouched; the next load moves the session again).
//!
//! What is left: a copy rewritten (a new tag) between its create and the other move's look
//! at it ends the creating move as a logout, and its undo removes the copy (the safe
//! direction); so do stores that keep no tags or markers: a write backend that is not Redis
//! (its copies carry no tag), and the in-memory store as a source, whose retire is a
//! delete, so the move that retires second finds nothing where the session was. A move slower than the marker's lifetime between its retire and the resend
//! of it also ends as a logout. The file-store migration ([`crate::migration`]) is this same
//! mechanism, with the file store as the source.
//!
//! # A logout during a move
//!
//! A renew (a login: a new id) keeps its new id only when its delete of the old one found
//! the session, so two deletes of one id must never both find it. While a move is in
//! flight (one process's load has read the old copy, created its copy in the new store and
//! not yet retired the old one), the session has two copies that loads find, and two
//! deletes in two processes (a logout and a renew, or two renews) each removed one of them
//! and both answered "there was a session": the renew kept the session under its new id
//! after the logout had answered. The second delete could not tell the move's copy on
//! trial from a session moved long ago.
//!
//! So a delete does not remove the copy in a backend sessions move from: it *retires* it
//! under a logout's marker (the token `backend::LOGGED_OUT_TOKEN`, one `RETIRE` script on
//! Redis, as a move's retire), which stays for
//! [`MOVED_MARKER_TTL`](crate::MOVED_MARKER_TTL), as long as a move's copies stay on
//! trial. A delete that finds a logout's marker there answers false, whatever the other
//! backends held (it still ends their copies: a Redis writer's under the same marker,
//! below); a move whose retire finds it ends as a
//! logout (any marker but its own does), removing its copy. A logout's marker also takes
//! the place of a move's marker it finds: a logout's request usually loaded the session
//! first, which moved it, and a move from before (another process's) and a renew racing
//! both must find the logout's marker, not that move's. A write that leaves no key (a
//! logout by clearing) leaves the same marker, removed again when the clearing met a
//! concurrent write that kept the session (`MultiBackend::emptied`). A second delete within the minute (a
//! logout sent twice, a lost reply resent) therefore answers false: the safe direction,
//! a renew then stores nothing (409) rather than keeping a session.
//!
//! A logout's marker that takes the place of a move's leaves the first delete's answer to
//! the writers' copy (the session moved there), which a second delete, finding the marker,
//! could remove first: two renews of a session moved a moment ago (their own loads moved
//! it) both answered "no session" and both stored nothing. So both end the `read`, `write`
//! copies under the logout's marker too (a retire, as for the sources): the second leaves
//! it where the session was, and the first, finding it, counts the session as its own and
//! deletes the marker. That marker can stay in a writer for a minute as well, when the
//! second delete came after the first was done.
//!
//! The file store keeps the same markers as files beside the session's, `<id>.ended`
//! ([`crate::backends::file`], "Markers"): a move's and a logout's, answered as Redis'
//! are, so processes sharing one directory are covered too. The in-memory store keeps
//! none: it is one process's, where the per-id locks keep a move, a logout and a renew of
//! one session apart.
//!
//! What it costs: a logout of a session that was in the old Redis store, during the minute
//! after, leaves a key there (the 28-byte marker) where it left none; `DBSIZE` and
//! `sessionctl stats` count it until it expires, and every read takes it for no session.
//! In a file store a move and a logout leave a file of up to 37 bytes for the minute,
//! which the sweep removes after.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;

use crate::{
    backend::LOGGED_OUT_TOKEN,
    config::BackendMode,
    plan::{BackendPlan, MultiPlan},
    BackendHealth, Changes, ConfigError, IndexMember, IndexName, LoadedState, Retired,
    SessionBackend, SessionConfig, SessionId, SessionState, StoreError, TtlRule, Version,
};

const NAME: &str = "multi";

/// The longest a load, move or delete waits for the move or delete of the same session that
/// another request of this process has under way (the per-id locks of the module docs);
/// past it, the operation fails as unavailable (timed out). The same bound as Redis' default
/// response timeout and the file store's lock timeout.
///
/// Without a bound the waits added up: while a write backend does not answer, each move
/// holds its session's lock for a timeout or more, so a client that sends many requests
/// with one cookie at once queued them one timeout after another (120 requests, 0.5 s
/// timeouts: most still waiting after 40 s), and the moves spawned for requests it dropped
/// (which run to their end, holding the session's state) piled up in the same queue.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// One backend with its modes.
struct Named {
    name: String,
    read: bool,
    write: bool,
    delete: bool,
    backend: Arc<dyn SessionBackend>,
}

/// Several backends with read / write / delete modes (see the [module docs](self)).
///
/// Clones are cheap and share the backends and the per-id locks.
#[derive(Clone)]
pub struct MultiBackend {
    backends: Arc<[Named]>,
    /// The expiry of a session a load copies into the write backends.
    ttl: TtlRule,
    /// Moves and deletes of one id wait for each other (see the module docs).
    locks: Arc<IdLocks>,
    /// The longest one of them waits for the others ([`with_lock_timeout`](Self::with_lock_timeout)).
    lock_timeout: Duration,
    /// Errors name the backend (`multi[name]/...`); the migration's wrapper keeps the
    /// target's own name instead.
    tag_errors: bool,
    /// A move leaves the source copy in place (`sessionctl migrate` without
    /// `--delete-source`): rule 2 of the module docs then reads the source instead of
    /// deleting it.
    keep_source: bool,
}

/// What a move did.
#[derive(Debug, Clone)]
pub(crate) enum Moved {
    /// Created in the targets; the source copy is gone.
    Created(SessionState),
    /// The targets had the id already (or keep it where the source does): their copy.
    AlreadyThere(SessionState),
    /// A delete came in between: nothing is left anywhere.
    LoggedOut,
}

/// Per-id locks: the ids whose move or delete is under way in this process. A batch takes
/// all its ids at once or none (so two batches, or a batch and a single lock, never wait for
/// each other in a cycle), and batches of different ids never wait for each other. Memory:
/// the ids in flight.
///
/// Each held id has a `Notify` of its own, so a release wakes only the requests waiting
/// for one of its ids: with one for all ids, every release woke every waiter of the process,
/// and a client's burst of requests of one session (waiting, up to the lock timeout, for its
/// move) made every move or delete of every other session cost as many wake-ups.
struct IdLocks {
    busy: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Notify>>>,
}

/// Held ids, released on drop.
struct IdGuard<'a> {
    locks: &'a IdLocks,
    ids: Vec<String>,
}

impl IdLocks {
    fn new() -> Self {
        Self {
            busy: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    #[cfg(test)]
    async fn lock(&self, id: &SessionId) -> IdGuard<'_> {
        self.lock_all(std::iter::once(id)).await
    }

    /// Every id of the batch, once none of them is held elsewhere.
    async fn lock_all<'a>(&self, ids: impl Iterator<Item = &'a SessionId>) -> IdGuard<'_> {
        let mut ids: Vec<String> = ids.map(|id| id.as_str().to_owned()).collect();
        ids.sort_unstable();
        ids.dedup();
        loop {
            match self.try_lock_all(&ids) {
                Ok(()) => return IdGuard { locks: self, ids },
                Err(released) => released.await,
            }
        }
    }

    /// Takes every id of `ids` when none is held; otherwise the wake-up of the release of
    /// one that is. It is made under the mutex, and a release notifies under it too, so a
    /// release between this look and the wait is not missed (`notify_waiters` reaches a
    /// `Notified` made before it, polled or not).
    fn try_lock_all(&self, ids: &[String]) -> Result<(), tokio::sync::futures::OwnedNotified> {
        let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(held) = ids.iter().find_map(|id| busy.get(id)) {
            return Err(Arc::clone(held).notified_owned());
        }
        for id in ids {
            busy.insert(id.clone(), Arc::new(tokio::sync::Notify::new()));
        }
        Ok(())
    }
}

impl Drop for IdGuard<'_> {
    fn drop(&mut self) {
        let mut busy = self.locks.busy.lock().unwrap_or_else(|e| e.into_inner());
        for id in &self.ids {
            if let Some(released) = busy.remove(id) {
                released.notify_waiters();
            }
        }
    }
}

impl std::fmt::Debug for MultiBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.backends.iter().map(|b| {
                format!(
                    "{} ({}{}{}): {}",
                    b.name,
                    if b.read { "r" } else { "-" },
                    if b.write { "w" } else { "-" },
                    if b.delete { "d" } else { "-" },
                    b.backend.name()
                )
            }))
            .finish()
    }
}

impl MultiBackend {
    /// Backends as `(name, modes, backend)`, in the order loads ask them. `ttl` gives the
    /// expiry of sessions a load copies into the write backends (see
    /// [`TtlRule::for_move`]).
    ///
    /// # Panics
    /// When there is no backend with each of the three modes
    /// ([`from_config`](Self::from_config) validates it).
    pub fn new(
        backends: Vec<(String, Vec<BackendMode>, Arc<dyn SessionBackend>)>,
        ttl: TtlRule,
    ) -> Self {
        let backends: Vec<Named> = backends
            .into_iter()
            .map(|(name, modes, backend)| Named {
                name,
                read: modes.contains(&BackendMode::Read),
                write: modes.contains(&BackendMode::Write),
                // Whatever a backend receives it must lose on logout, or the logout would not
                // stick: write implies delete.
                delete: modes.contains(&BackendMode::Delete) || modes.contains(&BackendMode::Write),
                backend,
            })
            .collect();
        assert!(
            backends.iter().any(|b| b.read)
                && backends.iter().any(|b| b.write)
                && backends.iter().any(|b| b.delete),
            "a multi-backend needs read, write and delete backends"
        );
        Self {
            backends: backends.into(),
            ttl,
            locks: Arc::new(IdLocks::new()),
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            tag_errors: true,
            keep_source: false,
        }
    }

    /// The backends the configuration's `session_redis_multi_backends` describes: a
    /// shorthand for [`SessionConfig::plan`] then [`from_plan`](Self::from_plan).
    pub fn from_config(config: &SessionConfig) -> Result<Self, ConfigError> {
        match config.plan()?.backend {
            BackendPlan::Multi(plan) => Self::from_plan(&plan),
            _ => Err(ConfigError::invalid(
                "session_redis_multi_backends",
                "[]",
                "one or more backends",
            )),
        }
    }

    /// Builds every backend of the plan (Redis in any mode, a pool, or the file store), each
    /// with its own clients.
    pub fn from_plan(plan: &MultiPlan) -> Result<Self, ConfigError> {
        let mut backends = Vec::with_capacity(plan.backends.len());
        for b in &plan.backends {
            let backend = super::build(&b.plan).map_err(|mut e| {
                e.key = format!("session_redis_multi_backends[{:?}].{}", b.name, e.key);
                e
            })?;
            backends.push((b.name.clone(), b.modes.clone(), backend));
        }
        Ok(Self::new(backends, plan.ttl))
    }

    /// The longest a load, move or delete of a session waits for a move or delete of the
    /// same session under way in this process (default [`DEFAULT_LOCK_TIMEOUT`]); past it,
    /// the operation fails as unavailable. Clones made before share the locks but keep their
    /// own bound.
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// The per-id locks of `ids`, waited for at most [`with_lock_timeout`](Self::with_lock_timeout).
    async fn serialised<'a>(
        &self,
        ids: impl Iterator<Item = &'a SessionId>,
    ) -> Result<IdGuard<'_>, StoreError> {
        match tokio::time::timeout(self.lock_timeout, self.locks.lock_all(ids)).await {
            Ok(guard) => Ok(guard),
            // Cancelling `lock_all` is safe: it takes its ids in one step, under the mutex.
            Err(_) => Err(StoreError::Unavailable {
                backend: NAME.into(),
                timed_out: true,
                message: format!(
                    "another request of this process kept moving or deleting the session for {:?}",
                    self.lock_timeout
                ),
            }),
        }
    }

    fn writers(&self) -> impl Iterator<Item = &Named> {
        self.backends.iter().filter(|b| b.write)
    }

    /// Runs `op` on every backend `which` selects; true when any returned true; the first
    /// error (after all were tried) otherwise.
    async fn all<'a, F, Fut>(&'a self, which: fn(&Named) -> bool, op: F) -> Result<bool, StoreError>
    where
        F: Fn(&'a Named) -> Fut,
        Fut: std::future::Future<Output = Result<bool, StoreError>>,
    {
        let mut any = false;
        let mut first_err = None;
        for b in self.backends.iter().filter(|b| which(b)) {
            match op(b).await {
                Ok(found) => any |= found,
                Err(e) => {
                    tracing::warn!(backend = %b.name, error = %e, "multi-backend: operation failed");
                    first_err.get_or_insert(self.tag(b, e));
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(any),
        }
    }

    /// Moves copy instead: the source keeps its copy (see [`crate::mover::Mover::keep_source`]).
    pub(crate) fn keeping_source(mut self, keep: bool) -> Self {
        self.keep_source = keep;
        self
    }

    /// Errors keep the backend's own name (for the migration's wrapper, which presents
    /// itself as its target).
    pub(crate) fn untagged(mut self) -> Self {
        self.tag_errors = false;
        self
    }

    fn tag(&self, b: &Named, e: StoreError) -> StoreError {
        if self.tag_errors {
            tag(b, e)
        } else {
            e
        }
    }

    /// Moves the sessions `ids` out of the non-write backend at `source` (an index into the
    /// backends) into every write backend, as a load does on finding one there: one answer
    /// per id, `Ok(None)` when the source does not have it. For [the mover](crate::mover),
    /// which is why it works on a batch: each step below is one batch operation per backend
    /// (one round trip on Redis) instead of one per session.
    pub(crate) async fn move_out_of(
        &self,
        source: usize,
        ids: &[SessionId],
    ) -> Vec<Result<Option<Moved>, StoreError>> {
        // An id given twice is moved once, and both get its answer: two moves of one id in
        // one batch would each take the other's source delete for a logout, and undo the
        // copy (a create that finds exactly its own value reports success, so both created).
        let mut first_of = std::collections::HashMap::with_capacity(ids.len());
        let (mut unique, mut again) = (Vec::with_capacity(ids.len()), Vec::new());
        for (slot, id) in ids.iter().enumerate() {
            match first_of.entry(id.as_str()) {
                std::collections::hash_map::Entry::Occupied(first) => {
                    again.push((slot, *first.get()))
                }
                std::collections::hash_map::Entry::Vacant(entry) => {
                    entry.insert(slot);
                    unique.push(id.clone());
                }
            }
        }
        if again.is_empty() {
            return self.move_distinct(source, ids).await;
        }
        let mut answers: Vec<Option<Result<Option<Moved>, StoreError>>> =
            ids.iter().map(|_| None).collect();
        for (id, answer) in unique.iter().zip(self.move_distinct(source, &unique).await) {
            answers[first_of[id.as_str()]] = Some(answer);
        }
        for (slot, first) in again {
            answers[slot] = answers[first].clone();
        }
        answers
            .into_iter()
            .map(|answer| answer.expect("every id has an answer"))
            .collect()
    }

    /// [`move_out_of`](Self::move_out_of) for ids that are all different.
    async fn move_distinct(
        &self,
        source: usize,
        ids: &[SessionId],
    ) -> Vec<Result<Option<Moved>, StoreError>> {
        let from = &self.backends[source];
        let mut answers: Vec<Option<Result<Option<Moved>, StoreError>>> =
            ids.iter().map(|_| None).collect();
        let mut items = Vec::new();
        let mut slots = Vec::new();
        for (slot, (id, loaded)) in ids
            .iter()
            .zip(from.backend.load_many_with_ttl(ids).await)
            .enumerate()
        {
            match loaded {
                Ok(Some((state, left))) => {
                    items.push(Move::new(id.clone(), state, self.ttl.for_move(None, left)));
                    slots.push(slot);
                }
                Ok(None) => answers[slot] = Some(Ok(None)),
                Err(e) => answers[slot] = Some(Err(self.tag(from, e))),
            }
        }
        for (slot, moved) in slots
            .into_iter()
            .zip(self.promote_many(source, items, None).await)
        {
            answers[slot] = Some(moved.map(Some));
        }
        answers
            .into_iter()
            .map(|answer| answer.expect("every id has an answer"))
            .collect()
    }

    // The version is the one of the write backend the session was found in (a session
    // moved by this load has none): every write backend gets it back with the write, and
    // only the one that read it acts on it (`Version::seen_by`).
    async fn load_as<T: LoadedAs>(
        &self,
        id: &SessionId,
        touch: Option<Duration>,
    ) -> Result<Option<(T, Version)>, StoreError> {
        // Backends that failed, logged only when their error is not the answer: the caller
        // logs the error it gets (a corrupt session, an outage), and a line here as well made
        // two warnings for one request (README: one line per request).
        let mut failed: Vec<(&Named, StoreError)> = Vec::new();
        let report = |failed: &[(&Named, StoreError)]| {
            for (b, e) in failed {
                tracing::warn!(backend = %b.name, error = %e, "multi-backend: load failed; asking the next backend");
            }
        };
        for (index, b) in self.backends.iter().enumerate().filter(|(_, b)| b.read) {
            // A backend sessions move from that keeps this one where every write backend
            // does, one of them readable (a pool and the same pool with a member more), is
            // not asked: that write backend reads the same key, as a plain load, where a find
            // here would go through a move (a lock, the writers' look, the source's) on every
            // load. Not when another write backend keeps it elsewhere (a mirror being filled
            // for a later switch): only the move copies the session there.
            if !b.write && self.every_writer_keeps_it_there(b, id) {
                continue;
            }
            let found = if b.write {
                T::load(&*b.backend, id, touch).await
            } else {
                // A session found here moves into the write backends with what it had left
                // (touching is a write: only write backends are touched).
                match b.backend.load_with_ttl(id).await {
                    Ok(Some((state, left))) => {
                        report(&failed);
                        let ttl = self.ttl.for_move(touch, left);
                        return match self.promote(index, id, state, ttl, touch).await? {
                            Moved::Created(state) | Moved::AlreadyThere(state) => {
                                Ok(T::moved(self, id, state)
                                    .await?
                                    .map(|moved| (moved, Version::default())))
                            }
                            Moved::LoggedOut => Ok(None),
                        };
                    }
                    Ok(None) => Ok(None),
                    Err(e) => Err(e),
                }
            };
            match found {
                Ok(Some(state)) => {
                    report(&failed);
                    return Ok(Some(state));
                }
                Ok(None) => {}
                Err(e) => failed.push((b, e)),
            }
        }
        if !failed.is_empty() {
            let (b, e) = failed.remove(0);
            report(&failed);
            return Err(self.tag(b, e));
        }
        // A concurrent request may have moved the session out of a backend this load had not
        // reached yet into one it had already asked: ask the write backends once more, after
        // any move of this id in this process is done, rather than answer "no session".
        if self.backends.iter().any(|b| b.read && !b.write) {
            let _serialised = self.serialised(std::iter::once(id)).await?;
            for b in self.backends.iter().filter(|b| b.read && b.write) {
                if let Some(state) = T::load(&*b.backend, id, touch)
                    .await
                    .map_err(|e| self.tag(b, e))?
                {
                    return Ok(Some(state));
                }
            }
        }
        Ok(None)
    }

    /// Copies a session found in a non-write backend (`from`, which has delete mode) into
    /// every write backend with expiry `ttl`, then removes the original, by the rules of the
    /// module docs. `touch` is the load's sliding refresh, for a writer's existing copy.
    async fn promote(
        &self,
        source: usize,
        id: &SessionId,
        state: SessionState,
        ttl: Option<Duration>,
        touch: Option<Duration>,
    ) -> Result<Moved, StoreError> {
        let one = vec![Move::new(id.clone(), state, ttl)];
        let mut answers = self.promote_many(source, one, touch).await;
        answers.pop().expect("one answer for one move")
    }

    /// [`promote`](Self::promote) for a batch, out of the backend at `source`, in a task of
    /// its own: a move runs to its end even when the request that started it is dropped (a
    /// client gone, a timeout layer). Its last step is what tells a logout that came in
    /// meanwhile (rule 2), so a move cancelled between its creates and that step would keep
    /// copies that the logout had already missed: the session would come back.
    async fn promote_many(
        &self,
        source: usize,
        moves: Vec<Move>,
        touch: Option<Duration>,
    ) -> Vec<Result<Moved, StoreError>> {
        let this = self.clone();
        let count = moves.len();
        let moving = async move {
            let from = &this.backends[source];
            this.promote_many_here(from, moves, touch).await
        };
        crate::backend::to_the_end(moving).await.unwrap_or_else(|| {
            (0..count)
                .map(|_| {
                    Err(StoreError::Unavailable {
                        backend: self.backends[source].name.clone(),
                        timed_out: false,
                        message: "a move was cancelled: the runtime is shutting down".into(),
                    })
                })
                .collect()
        })
    }

    /// The steps of [`promote_many`](Self::promote_many): every step is one batch operation
    /// per backend, and each session goes through exactly the steps it would go through
    /// alone. One answer per move, in order.
    async fn promote_many_here(
        &self,
        from: &Named,
        mut moves: Vec<Move>,
        touch: Option<Duration>,
    ) -> Vec<Result<Moved, StoreError>> {
        let _serialised = match self.serialised(moves.iter().map(|m| &m.id)).await {
            Ok(guard) => guard,
            // Nothing made yet: every move fails as it would on an unavailable target.
            Err(err) => return moves.iter().map(|_| Err(err.clone())).collect(),
        };
        for (w_index, w) in self.backends.iter().enumerate().filter(|(_, b)| b.write) {
            let open: Vec<usize> = (0..moves.len())
                .filter(|&k| moves[k].outcome.is_none())
                .collect();
            if open.is_empty() {
                break;
            }
            // A writer that has the id already keeps its copy. Asked first: it needs no
            // create, and a store of your own may answer "created" to a create that finds
            // exactly its state (as Redis' did before it compared the tag too), which would
            // make a second mover take the first one's copy for its own.
            let ids: Vec<SessionId> = open.iter().map(|&k| moves[k].id.clone()).collect();
            let mut to_create = Vec::new();
            for (&k, copy) in open.iter().zip(self.writer_copies(w, &ids, touch).await) {
                match copy {
                    Ok(Some((copy, left))) => {
                        let rank = self.rank_of(from, w, &moves[k].id);
                        let ttl = self.ttl.for_move(touch, left);
                        moves[k].found_at.push(w_index);
                        moves[k].take_copy(rank, copy, ttl)
                    }
                    // This writer keeps the session where the source does (a pool and the
                    // same pool with a member more): not there now means deleted (a logout)
                    // or expired since the source was read. Creating it would bring it back.
                    Ok(None) if same_place(&*from.backend, &*w.backend, &moves[k].id) => {
                        let m = &mut moves[k];
                        self.undo(&m.created, &m.id).await;
                        m.outcome = Some(Ok(Moved::LoggedOut));
                    }
                    Ok(None) => to_create.push(k),
                    Err(e) => self.fail(&mut moves[k], self.tag(w, e)).await,
                }
            }
            let batch: Vec<_> = to_create
                .iter()
                .map(|&k| {
                    let m = &moves[k];
                    (m.id.clone(), m.found.clone(), on_trial(m.ttl), m.token)
                })
                .collect();
            let created = w.backend.create_many_tagged(&batch).await;
            for (&k, created) in to_create.iter().zip(created) {
                match created {
                    Ok(true) => moves[k].created_in(w_index, w),
                    Ok(false) => {
                        self.already_there(from, w_index, &mut moves[k], touch)
                            .await
                    }
                    Err(e) => self.fail(&mut moves[k], self.tag(w, e)).await,
                }
            }
        }
        // Rule 2 of the module docs: only the answer of this delete tells whether a logout
        // came in since the source was read. A copying move asks the source instead: a
        // session gone from it since it was read was logged out.
        // A source that keeps a session in the very place a write backend keeps it (a pool
        // and the same pool with a member more, where most sessions stay on their member)
        // holds no old copy of it: its delete would delete the session. It is asked instead,
        // as for a copying move.
        let open: Vec<usize> = (0..moves.len())
            .filter(|&k| moves[k].outcome.is_none())
            .collect();
        let (mut asked, deleted): (Vec<usize>, Vec<usize>) = open.iter().partition(|&&k| {
            (self.keep_source && !from.write) || self.a_writer_keeps_it_there(from, &moves[k].id)
        });
        // A writer that already had the session may hold the source's very key: one Redis
        // server, db and prefix written two ways (`localhost`, `127.0.0.1`) is two places to
        // `place`. Retiring the source would then retire the only copy. Such a source is
        // asked instead, as above; a copy kept in two places is a stale one at worst, which
        // a logout removes (rule 1).
        let shared = futures_util::future::join_all(
            deleted
                .iter()
                .map(|&k| self.shares_a_writers_value(from, &moves[k])),
        )
        .await;
        let (same_key, deleted): (Vec<_>, Vec<_>) = deleted
            .into_iter()
            .zip(shared)
            .partition(|&(_, (shared, _))| shared);
        asked.extend(same_key.into_iter().map(|(k, _)| k));
        let deleted: Vec<usize> = deleted
            .into_iter()
            .map(|(k, (_, vouch))| {
                moves[k].vouch = vouch;
                k
            })
            .collect();
        let ids_of =
            |ks: &[usize]| -> Vec<SessionId> { ks.iter().map(|&k| moves[k].id.clone()).collect() };
        let ids_asked = ids_of(&asked);
        let mut answers: Vec<(usize, Result<bool, StoreError>)> = Vec::with_capacity(open.len());
        if !asked.is_empty() {
            let copies = from.backend.load_many_with_ttl(&ids_asked).await;
            answers.extend(
                asked.iter().copied().zip(
                    copies
                        .into_iter()
                        .map(|copy| copy.map(|copy| copy.is_some())),
                ),
            );
        }
        if !deleted.is_empty() {
            // A move that found a copy marks with that copy's tag, else with its own token,
            // which the copies it created carry as their tag (module docs).
            let retiring: Vec<(SessionId, u64)> = deleted
                .iter()
                .map(|&k| {
                    (
                        moves[k].id.clone(),
                        moves[k].vouch.unwrap_or(moves[k].token),
                    )
                })
                .collect();
            let retired = self.retire_sources(from, &retiring).await;
            for (&k, retired) in deleted.iter().zip(retired) {
                let m = &moves[k];
                let source_was_there = match retired {
                    Ok(Retired::Now | Retired::Before) => Ok(true),
                    // Another move found this move's copy and marked with its tag. (A move
                    // that made no copy ends the same whatever the answer: below.)
                    Ok(Retired::Other(token)) => Ok(token == m.token),
                    Ok(Retired::Absent) => Ok(false),
                    Err(e) => Err(e),
                };
                answers.push((k, source_was_there));
            }
        }
        // The copies of the moves that stand get their expiry (see `on_trial`), all at once.
        let standing: Vec<usize> = answers
            .iter()
            .filter(|(k, answer)| matches!(answer, Ok(true)) && !moves[*k].created.is_empty())
            .map(|&(k, _)| k)
            .collect();
        futures_util::future::join_all(standing.iter().map(|&k| self.confirm(&moves[k]))).await;
        for (k, source_was_there) in answers {
            let m = &mut moves[k];
            let found = std::mem::take(&mut m.found);
            m.outcome = Some(match source_was_there {
                Ok(false) if !m.created.is_empty() => {
                    self.undo(&m.created, &m.id).await;
                    Ok(Moved::LoggedOut)
                }
                Ok(_) if m.created.is_empty() => Ok(Moved::AlreadyThere(found)),
                Ok(_) => Ok(Moved::Created(found)),
                Err(e) if m.created.is_empty() => {
                    // The writers had it already: the stale source copy stays until a later
                    // move or a logout (which deletes sources first) removes it.
                    tracing::warn!(backend = %from.name, error = %e, "multi-backend: could not remove a moved session from its old backend");
                    Ok(Moved::AlreadyThere(found))
                }
                Err(e) => {
                    // Without that answer a logout in between cannot be told apart, and a
                    // copy kept now could outlive it: undo the copies and report the failure.
                    self.undo(&m.created, &m.id).await;
                    Err(self.tag(from, e))
                }
            });
        }
        moves
            .into_iter()
            .map(|m| m.outcome.expect("every move has an outcome"))
            .collect()
    }

    /// True when a write backend that `m` found the session in already
    /// ([`Move::found_at`]) may hold the very value `from` holds
    /// ([`Version::may_be_same_value`]): one key written two ways. The source is read
    /// before and after that writer, so one rewrite in between (a new tag) does not make
    /// one key look like two. A read that fails says "may be the same": the source is then
    /// asked instead of retired, which a logout cannot turn into a kept copy (a source gone
    /// by then undoes the copies), where retiring it could retire the only copy (a review
    /// found one failed read losing the session this check is for). A read that finds
    /// nothing says "not the same": the retire that follows tells a logout.
    ///
    /// Also answers the header tag of the first writer copy it read, for [`Move::vouch`].
    async fn shares_a_writers_value(&self, from: &Named, m: &Move) -> (bool, Option<u64>) {
        if m.found_at.is_empty() {
            return (false, None);
        }
        let version = |b: &Named| {
            let backend = b.backend.clone();
            let id = m.id.clone();
            async move {
                backend
                    .load_versioned_from_primary(&id)
                    .await
                    .map(|found| found.map(|(_, version)| version))
            }
        };
        let before = match version(from).await {
            Ok(Some(before)) => before,
            Ok(None) => return (false, None),
            Err(_) => return (true, None),
        };
        let mut vouch = None;
        for w in m.found_at.iter().map(|&i| &self.backends[i]) {
            let copy = match version(w).await {
                Ok(Some(copy)) => copy,
                Ok(None) => continue,
                Err(_) => return (true, vouch),
            };
            // A tag of the logout marker's token would make this move take a logout's
            // marker for its own (`fresh_token` never gives it; a value written otherwise
            // might).
            vouch = vouch.or(copy.tag().filter(|&tag| tag != LOGGED_OUT_TOKEN));
            if before.may_be_same_value(copy) {
                return (true, vouch);
            }
            match version(from).await {
                Ok(Some(after)) if after.may_be_same_value(copy) => return (true, vouch),
                Err(_) => return (true, vouch),
                _ => {}
            }
        }
        (false, vouch)
    }

    /// True when a write backend keeps `id` in the same place as `from` does
    /// ([`SessionBackend::place`]): moving it there moves nothing.
    fn a_writer_keeps_it_there(&self, from: &Named, id: &SessionId) -> bool {
        self.writers()
            .any(|w| same_place(&*from.backend, &*w.backend, id))
    }

    /// True when every write backend keeps `id` in the same place as `from` does and one of
    /// them is `read`: a load finds the session in that one, and a move from `from` would
    /// copy it nowhere.
    fn every_writer_keeps_it_there(&self, from: &Named, id: &SessionId) -> bool {
        self.writers().any(|w| w.read)
            && self
                .writers()
                .all(|w| same_place(&*from.backend, &*w.backend, id))
    }

    /// The step of a move whose create in the write backend `w_index` found the id taken (an
    /// earlier move's copy, or a write-only backend filled otherwise): that writer keeps its
    /// copy ([`Move::take_copy`]). A copy gone by the time it is read (expired, or a logout,
    /// which removed the source first: rule 1) is created once more, and the move's last
    /// step (rule 2) tells a logout by the source. Gone twice, the source decides at once:
    /// gone there too is a logout; still there, an error to retry, never a false logout,
    /// and never a delete of the source (which may be a write backend's own place, the live
    /// session).
    async fn already_there(
        &self,
        from: &Named,
        w_index: usize,
        m: &mut Move,
        touch: Option<Duration>,
    ) {
        let w = &self.backends[w_index];
        for again in [false, true] {
            match self.writer_copy(w, &m.id, touch).await {
                Ok(Some((copy, left))) => {
                    let ttl = self.ttl.for_move(touch, left);
                    m.found_at.push(w_index);
                    return m.take_copy(self.rank_of(from, w, &m.id), copy, ttl);
                }
                Ok(None) if !again => {
                    let copy = (m.id.clone(), m.found.clone(), on_trial(m.ttl), m.token);
                    let created = w.backend.create_many_tagged(&[copy]).await.pop();
                    match created.unwrap_or(Ok(false)) {
                        Ok(true) => return m.created_in(w_index, w),
                        Ok(false) => continue,
                        Err(e) => return self.fail(m, self.tag(w, e)).await,
                    }
                }
                Ok(None) => {
                    self.undo(&m.created, &m.id).await;
                    // With its lifetime, as a move reads a source: from the master, where a
                    // plain load may read a replica that has not seen a logout yet.
                    m.outcome = Some(match from.backend.load_with_ttl(&m.id).await {
                        Ok(None) => Ok(Moved::LoggedOut),
                        Ok(Some(_)) => Err(StoreError::Unavailable {
                            backend: w.name.clone(),
                            timed_out: false,
                            message: "a session being moved here vanished twice between being found and being read (expiring, or evicted); nothing was moved, try again".into(),
                        }),
                        Err(e) => Err(self.tag(from, e)),
                    });
                    return;
                }
                Err(e) => return self.fail(m, self.tag(w, e)).await,
            }
        }
    }

    /// Before a write that leaves no key (a logout by clearing the session, which reaches
    /// the backends as a write, not a delete): ends the copies of the backends sessions
    /// move from, as a delete does first (rule 1), under a logout's marker
    /// ([`end_sources`](Self::end_sources)). Left there, a copy (a copying move's source,
    /// or a source whose delete failed) would be found by the next load and moved back. A
    /// copy there while a write backend holds the session is a leftover, so ending it
    /// loses nothing even when the write meets a concurrent one and keeps the session; the
    /// logout's marker put in place of it, or of a move's, is then removed again
    /// ([`emptied`](Self::emptied)).
    ///
    /// Answers where it put a logout's marker, for [`emptied`](Self::emptied): each backend
    /// with the token of the move's marker it replaced there, or `None` where it ended a
    /// copy of the session.
    async fn emptying(&self, id: &SessionId) -> Result<Vec<(usize, Option<u64>)>, StoreError> {
        let _serialised = self.serialised(std::iter::once(id)).await?;
        self.end_sources(id, Clearing::Yes)
            .await
            .map(|(_, replaced)| replaced)
    }

    /// After the write of [`emptying`](Self::emptying): when a `read`, `write` backend still
    /// holds the copy of the move whose marker the logout's replaced (its tag is that
    /// marker's token), or, where the logout's marker took the place of a leftover copy of
    /// the session, the very copy the clearing loaded (`loaded`: its tag), the write met a
    /// concurrent one that kept the session (its removals went on top), and the logout's
    /// marker is removed again: left there, it made every delete of the live session within
    /// the minute answer "no session", a renew storing nothing (`moves.rs`
    /// `a_renew_after_a_clearing_that_a_write_outlived_finds_the_session`,
    /// `a_renew_after_a_clearing_that_a_write_outlived_over_a_leftover_copy_finds_the_session`).
    /// Any other copy (a stale move's, made after the clearing, or the session rewritten
    /// whole, a new tag, by the concurrent write) keeps the marker: a delete within the
    /// minute then still answers "no session". Best effort: a marker left answers "no
    /// session", the safe direction.
    async fn emptied(&self, id: &SessionId, replaced: &[(usize, Option<u64>)], loaded: Version) {
        if replaced.is_empty() {
            return;
        }
        for w in self.backends.iter().filter(|b| b.read && b.write) {
            let Ok(Some((_, version))) = w.backend.load_versioned_from_primary(id).await else {
                continue;
            };
            let kept = |&&(_, token): &&(usize, Option<u64>)| {
                version.tag().is_some() && token.or(loaded.tag()) == version.tag()
            };
            for &(source, _) in replaced.iter().filter(kept) {
                let b = &self.backends[source];
                if let Err(e) = b.backend.delete(id).await {
                    tracing::warn!(backend = %b.name, error = %e, "multi-backend: could not remove a logout's marker after a write kept the session");
                }
            }
            return;
        }
    }

    /// A logout's first step (rule 1): the copy of `id` in each backend sessions move from
    /// (`delete`, not `write`) is *retired under a logout's marker*
    /// ([`LOGGED_OUT_TOKEN`]) rather than deleted: on Redis the marker stays in the
    /// session's place for [`MOVED_MARKER_TTL`](crate::MOVED_MARKER_TTL). Answers what was
    /// there: a session, counted when the backend is `read` ([`Ended::Found`]); a logout's
    /// marker ([`Ended::LoggedOut`]); else nothing.
    ///
    /// Why a marker: while a move of the session is in flight (one process's load has read
    /// the old copy, made its copy in the new store and not yet retired the old one), the
    /// session has two copies that a load can find, and two deletes of the id in two
    /// processes (a logout, and a renew: a login, which keeps its new id only when its
    /// delete found the session) each removed one of them, and both answered "there was a
    /// session": the renew kept the session under its new id after the logout had answered
    /// (the limit documented until then, tests `moves.rs` `a_renew_racing_a_logout_during_a_move_*`).
    /// Nothing the second delete saw told the move's copy on trial from a session moved long
    /// ago. The logout's marker does: the second delete finds it and answers "no session"
    /// whatever the new store holds, and the move's retire, which takes any marker but its
    /// own for a logout, removes its copy. The marker lasts as long as a move's copies stay
    /// on trial, so it outlives any move in flight. It also takes the place of a move's
    /// marker found there (answered as that move's, [`Retired::Other`]): a logout's own
    /// request usually loaded, and so moved, the session first, and a move in flight from
    /// before (another process's) must then find the logout's marker, and a renew too
    /// (`a_renew_after_a_loaded_logout_during_a_move_brings_nothing_back`).
    ///
    /// A source that keeps the session in a write backend's own place (a pool and the same
    /// pool with a member more) holds no second copy: its "copy" is the session the writers
    /// delete next, so a delete deletes it plainly, and a write that leaves no key
    /// (`clearing`) leaves it alone: ending it first would drop a concurrent write that the
    /// versioned write keeps. The file store keeps a logout's marker as a file; the
    /// in-memory store retires by deleting (one process's: the per-id locks cover it).
    async fn end_sources(
        &self,
        id: &SessionId,
        clearing: Clearing,
    ) -> Result<(Ended, Vec<(usize, Option<u64>)>), StoreError> {
        let mut ended = Ended::Nothing;
        let mut replaced = Vec::new();
        let mut first_err = None;
        for (index, b) in self
            .backends
            .iter()
            .enumerate()
            .filter(|(_, b)| DELETE_ORDER[0](b))
        {
            let same_place = self.a_writer_keeps_it_there(b, id);
            let answer =
                // A backend no load reads (`delete` alone: a store being emptied) holds no
                // move in flight, so it needs no marker, and one left there made the second
                // of two renews answer "no session" and retire the writers' copy, the first
                // then finding only that marker: both stored nothing
                // (`two_renews_with_a_delete_only_backend_keep_one_id`).
                if same_place || !b.read {
                    if same_place && clearing == Clearing::Yes {
                        continue;
                    }
                    b.backend.delete(id).await.map(Retired::of_delete)
                } else {
                    retire_logged_out(b, id).await
                };
            match answer {
                Ok(Retired::Now) if b.read => {
                    ended = ended.max(Ended::Found);
                    // A clearing skips a backend keeping the session in a writer's place,
                    // so this is a copy the logout's marker took the place of.
                    if clearing == Clearing::Yes {
                        replaced.push((index, None));
                    }
                }
                // The logout's own marker: another logout (or renew) of this id came first,
                // or this very retire ran before and its reply was lost (answered as "no
                // session": the safe direction, a renew then fails instead of keeping a
                // session).
                Ok(Retired::Before | Retired::Other(LOGGED_OUT_TOKEN)) => ended = Ended::LoggedOut,
                // A move's marker, now the logout's: the session moved from here, and its
                // copy (in a writer) is what this delete finds; a delete that finds this
                // logout's marker before that may take it (`delete_everywhere`).
                Ok(Retired::Other(token)) if b.read => {
                    ended = ended.max(Ended::Replaced);
                    replaced.push((index, Some(token)));
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(backend = %b.name, error = %e, "multi-backend: operation failed");
                    first_err.get_or_insert(self.tag(b, e));
                }
            }
        }
        first_err.map_or(Ok((ended, replaced)), Err)
    }

    /// A delete of `id`: the backends sessions move from ([`end_sources`](Self::end_sources)),
    /// then the `read`, `write` ones, then the write-only ones, every group tried: true when
    /// a `read` backend had it and no logout's marker was found; the first error otherwise.
    ///
    /// Only a copy a load can find counts: a mirror's (a write-only backend's) is no session.
    /// A renew keeps its new id only when its delete found the session, and two deletes of
    /// one id in two processes each remove one copy after the other: counting the mirror's
    /// made a renew that came after a logout's main delete, but before its mirror delete,
    /// answer "found" and keep the session under the new id, after the logout (test
    /// `a_renew_racing_a_logout_over_a_mirror_brings_nothing_back`, session-axum). A
    /// logout's marker in a source means the same: a delete of this id came first, and
    /// what the later groups hold is a move's copy made before it ended them (ended all
    /// the same, see [`Ended`] for how).
    async fn delete_everywhere<'a>(&'a self, id: &'a SessionId) -> Result<bool, StoreError> {
        let mut first_err = None;
        let ended = match self.end_sources(id, Clearing::No).await {
            Ok((ended, _)) => ended,
            Err(e) => {
                first_err = Some(e);
                Ended::Nothing
            }
        };
        let mut any = ended == Ended::Found;
        for (group, &which) in DELETE_ORDER.iter().enumerate().skip(1) {
            // The `read`, `write` copies, when this delete came second (`LoggedOut`) or its
            // answer hangs on them (`Replaced`): see `Ended`.
            let handing_over = group == 1 && matches!(ended, Ended::LoggedOut | Ended::Replaced);
            let deleting = |b: &'a Named| async move {
                if !handing_over {
                    return b.backend.delete(id).await.map(|found| found && b.read);
                }
                let found = matches!(
                    retire_logged_out(b, id).await?,
                    Retired::Now | Retired::Before
                );
                if found && ended == Ended::Replaced {
                    // The logout's marker here was only for this delete to read: removed
                    // (best effort: it is no session, and goes within a minute).
                    if let Err(e) = b.backend.delete(id).await {
                        tracing::warn!(backend = %b.name, error = %e, "multi-backend: could not remove a logout's marker; it goes within a minute");
                    }
                }
                Ok(found && b.read)
            };
            match self.all(which, deleting).await {
                Ok(found) => any |= found,
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(any && ended != Ended::LoggedOut), Err)
    }

    /// How much a copy of `id` that the write backend `w` already holds counts for a move
    /// out of `from` ([`Move::found_in`]).
    fn rank_of(&self, from: &Named, w: &Named, id: &SessionId) -> Found {
        if w.read || same_place(&*from.backend, &*w.backend, id) {
            Found::Live
        } else if self.writers().any(|w| w.read) {
            Found::Mirror
        } else {
            Found::Writer
        }
    }

    /// Ends a move with `err`, removing the copies it made.
    async fn fail(&self, m: &mut Move, err: StoreError) {
        self.undo(&m.created, &m.id).await;
        m.outcome = Some(Err(err));
    }

    /// [`writer_copy`](Self::writer_copy) for a batch.
    async fn writer_copies(
        &self,
        w: &Named,
        ids: &[SessionId],
        touch: Option<Duration>,
    ) -> Vec<Result<Option<(SessionState, Option<Duration>)>, StoreError>> {
        let copies = w.backend.load_many_with_ttl(ids).await;
        let mut out = Vec::with_capacity(ids.len());
        for (id, copy) in ids.iter().zip(copies) {
            out.push(match copy {
                Ok(Some(copy)) if touch.is_some() => match w.backend.touch(id, touch).await {
                    Ok(true) => Ok(Some(copy)),
                    Ok(false) => Ok(None),
                    Err(e) => Err(e),
                },
                copy => copy,
            });
        }
        out
    }

    /// A writer's copy of `id` with what is left of its lifetime, read from its primary (a
    /// replica may not have seen a copy another move made a moment ago), touched when the
    /// load slides the expiry.
    async fn writer_copy(
        &self,
        w: &Named,
        id: &SessionId,
        touch: Option<Duration>,
    ) -> Result<Option<(SessionState, Option<Duration>)>, StoreError> {
        let Some(copy) = w.backend.load_with_ttl(id).await? else {
            return Ok(None);
        };
        if touch.is_some() && !w.backend.touch(id, touch).await? {
            return Ok(None);
        }
        Ok(Some(copy))
    }

    /// Rule 2's step for the sessions moved out of `from` (`moves`: each id with its move's
    /// token): retires each source copy under a marker holding the token
    /// ([`SessionBackend::retire_many`]) and answers what it found: the session (`Now`), or
    /// this very request's marker, sent again after its reply was lost (`Before`); else it
    /// went away since the move read it (a logout, or another move, which may have been
    /// followed by a logout that left its marker, unless that marker holds this move's own
    /// token: another move found this move's copy). An id whose retire failed is retired
    /// once more: the first try may have run, and only its marker tells that from a logout,
    /// where without an answer the move would remove its copies, the source gone too.
    async fn retire_sources(
        &self,
        from: &Named,
        moves: &[(SessionId, u64)],
    ) -> Vec<Result<Retired, StoreError>> {
        let mut answers = from.backend.retire_many(moves).await;
        let failed: Vec<usize> = (0..moves.len()).filter(|&i| answers[i].is_err()).collect();
        if !failed.is_empty() {
            let again: Vec<(SessionId, u64)> = failed.iter().map(|&i| moves[i].clone()).collect();
            for (i, answer) in failed
                .into_iter()
                .zip(from.backend.retire_many(&again).await)
            {
                if answer.is_ok() {
                    answers[i] = answer;
                }
            }
        }
        answers
    }

    /// Gives the copies `m` made the expiry they were made for ([`on_trial`]), now that the
    /// move stands. Best effort, logged: a copy left on trial goes within
    /// [`MOVED_MARKER_TTL`](crate::MOVED_MARKER_TTL) unless a write or a sliding read
    /// refreshes it first (the user logged out: the safe direction).
    ///
    /// Each copy is touched only while it carries this move's tag
    /// ([`SessionBackend::touch_tagged`]): the id may hold another move's copy by now (a
    /// logout removed this one, and a stale move made its own after it), whose trial this
    /// touch must not end. A copy this move only found keeps its own expiry: a review found
    /// that confirming a found copy with at most a minute left (maybe another move's on
    /// trial, whose maker never got to confirm it) also gave a copy near its natural end
    /// the old store's longer expiry, or none at all.
    async fn confirm(&self, m: &Move) {
        for w in m.created.iter().map(|&i| &self.backends[i]) {
            if let Err(e) = w.backend.touch_tagged(&m.id, m.ttl, m.token).await {
                tracing::warn!(backend = %w.name, error = %e, "multi-backend: could not give a moved session its expiry; it ends within a minute unless used");
            }
        }
    }

    /// Removes copies a move made, in the backends at `created` (best effort, logged).
    async fn undo(&self, created: &[usize], id: &SessionId) {
        for w in created.iter().map(|&i| &self.backends[i]) {
            if let Err(e) = w.backend.delete(id).await {
                tracing::warn!(backend = %w.name, error = %e, "multi-backend: could not remove a copy made by an interrupted move");
            }
        }
    }
}

/// The expiry a move creates a copy with: at most [`MOVED_MARKER_TTL`](crate::MOVED_MARKER_TTL)
/// until the move's last step says it stands ([`MultiBackend::confirm`] then sets `ttl`). A
/// copy made after a logout that the move's last step finds is removed again (rule 2), but
/// that removal can fail (the backend unreachable a moment later), and a process can stop
/// between the create and the last step (a crash, a runtime shut down): on trial, such a
/// copy is gone within a minute instead of keeping the user logged in for the session's
/// lifetime. The price: one request more per move that created a copy (a `touch`, one per
/// session in a batch, in flight together), and a copy whose `confirm` fails lives a minute
/// unless used.
fn on_trial(ttl: Option<Duration>) -> Option<Duration> {
    Some(ttl.map_or(crate::MOVED_MARKER_TTL, |ttl| {
        ttl.min(crate::MOVED_MARKER_TTL)
    }))
}

/// One session being moved by [`MultiBackend::promote_many`].
struct Move {
    id: SessionId,
    /// The state to copy: the source's, or a writer's copy once one is found.
    found: SessionState,
    /// Where `found` came from ([`Found`]): the copy a load answers, and the state later
    /// writers are created with.
    found_in: Found,
    ttl: Option<Duration>,
    /// Indices of the write backends this move created the session in.
    created: Vec<usize>,
    /// Indices of the write backends that had the session already.
    found_at: Vec<usize>,
    /// This move's own random token: the version tag of the copies it creates
    /// ([`SessionBackend::create_many_tagged`]) and, unless it found a copy (`vouch`), its
    /// marker's token.
    token: u64,
    /// The header tag of the first copy found in a write backend, when the check of it read
    /// one ([`MultiBackend::shares_a_writers_value`]): the token of this move's marker. When
    /// a move made that copy, the tag is that move's token, so the marker is that move's own
    /// to it (module docs, "Moving a session").
    vouch: Option<u64>,
    outcome: Option<Result<Moved, StoreError>>,
}

impl Move {
    fn new(id: SessionId, found: SessionState, ttl: Option<Duration>) -> Self {
        Self {
            id,
            found,
            found_in: Found::Source,
            ttl,
            created: Vec::new(),
            found_at: Vec::new(),
            token: crate::backend::fresh_token(),
            vouch: None,
            outcome: None,
        }
    }

    /// Takes a copy that a write backend already holds, counted as `rank`, with `ttl`
    /// from what it has left, unless the state taken so far counts as much or more. The
    /// copies made after it get its expiry with its state: a mirror created from a live
    /// copy must not outlive it by the source's longer lifetime (a leftover of an earlier
    /// configuration), and come back after the switch.
    fn take_copy(&mut self, rank: Found, copy: SessionState, ttl: Option<Duration>) {
        if rank > self.found_in {
            self.found = copy;
            self.found_in = rank;
            self.ttl = ttl;
        }
    }

    /// Records the copy just created in the write backend `w_index` (`w`). Created in a
    /// `read` one, the state is now what later loads read there: no copy of a second
    /// readable writer replaces it.
    fn created_in(&mut self, w_index: usize, w: &Named) {
        self.created.push(w_index);
        if w.read {
            self.found_in = self.found_in.max(Found::Live);
        }
    }
}

/// Where a move's state came from, least preferred first ([`Move::found_in`]). A live copy
/// wins, the first found: a `read`, `write` backend's, where later loads read the session and
/// later writes change it, or one kept in the source's own place (the source itself, as the
/// writes since left it). A copy in a write-only backend next to one (a mirror) counts for
/// less than the source's state: a mirror is filled apart (`sessionctl migrate`) and misses what a
/// process still on the old configuration writes, and answering it would hide that write
/// or, created from it, carry it stale into the readable writer. With only write-only
/// backends, a copy one already holds is the one later writes changed: it wins over the
/// source's state, which a second mover read before the first one's writes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Found {
    Mirror,
    Source,
    Writer,
    Live,
}

impl MultiBackend {
    /// The backends that keep an index.
    fn indexed(&self) -> impl Iterator<Item = &Named> {
        self.backends
            .iter()
            .filter(|b| b.backend.index_key().is_some())
    }
}

/// The order a delete reaches the backends in (rule 1 of the module docs): the backends
/// sessions move from, then the `read`, `write` ones, then the write-only ones (mirrors), for
/// a copy into a mirror out of a `read`, `write` backend (`sessionctl migrate` without
/// `--delete-source`) has that backend as its source, and rule 1 holds for it too.
/// Whether [`MultiBackend::end_sources`] runs for a write that leaves no key (a logout by
/// clearing the session) rather than a delete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Clearing {
    Yes,
    No,
}

/// What [`MultiBackend::end_sources`] found, in order of precedence.
///
/// `Replaced` and `LoggedOut` hand the session over between two deletes of one id in two
/// processes: the first (`Replaced`: it put the logout's marker in place of a move's, the
/// session being in the writers) answers by the writers' copy, and the second (`LoggedOut`)
/// may remove that copy before the first gets to it. Both then end the `read`, `write`
/// copies as the sources' (`retire_many` under the logout's token: a Redis writer keeps the
/// logout's marker in the session's place), and the first counts that marker as the session
/// it came for (then deletes it): without it, two renews of a session moved a moment ago
/// both answered "no session" and both stored nothing, the user logged out
/// (`moves.rs` `two_renews_after_a_move_keep_one_id`). The second's marker stays for
/// [`MOVED_MARKER_TTL`](crate::MOVED_MARKER_TTL) when the first was there before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ended {
    Nothing,
    /// A move's marker, in a `read` backend, replaced by the logout's.
    Replaced,
    /// A session, in a `read` backend.
    Found,
    /// A logout's marker: the id was deleted before.
    LoggedOut,
}

const DELETE_ORDER: [fn(&Named) -> bool; 3] = [
    |b| b.delete && !b.write,
    |b| b.write && b.read,
    |b| b.write && !b.read,
];

/// Retires `id` in `b` under a logout's marker ([`LOGGED_OUT_TOKEN`]; module docs, "A
/// logout during a move").
async fn retire_logged_out(b: &Named, id: &SessionId) -> Result<Retired, StoreError> {
    let mut answers = b
        .backend
        .retire_many(&[(id.clone(), LOGGED_OUT_TOKEN)])
        .await;
    answers.pop().unwrap_or(Ok(Retired::Absent))
}

/// True when `a` and `b` both know where they keep `id` and it is the same place: one
/// stored copy, not two.
fn same_place(a: &dyn SessionBackend, b: &dyn SessionBackend, id: &SessionId) -> bool {
    match (a.place(id), b.place(id)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// Names the backend in an error.
fn tag(b: &Named, e: StoreError) -> StoreError {
    e.within(&format!("{NAME}[{}]", b.name))
}

#[async_trait]
impl SessionBackend for MultiBackend {
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
        self.load_as(id, touch).await
    }

    async fn load_in_place(
        &self,
        id: &SessionId,
        touch: Option<Duration>,
    ) -> Result<Option<(LoadedState, Version)>, StoreError> {
        self.load_as(id, touch).await
    }

    /// Each backend is asked as a load asks it, each for its own lifetime left; a session
    /// this moves is answered as its first write backend keeps it (a copy found there keeps
    /// its own expiry).
    async fn load_with_ttl(
        &self,
        id: &SessionId,
    ) -> Result<Option<(SessionState, Option<Duration>)>, StoreError> {
        Ok(self
            .load_as::<WithTtl>(id, None)
            .await?
            .map(|(WithTtl(state, left), _)| (state, left)))
    }

    async fn create(
        &self,
        id: &SessionId,
        state: &SessionState,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        let mut created: Vec<&Named> = Vec::new();
        let mut outcome = Ok(true);
        for w in self.writers() {
            match w.backend.create(id, state, ttl).await {
                Ok(true) => created.push(w),
                Ok(false) => {
                    outcome = Ok(false);
                    break;
                }
                Err(e) => {
                    outcome = Err(self.tag(w, e));
                    break;
                }
            }
        }
        if !matches!(outcome, Ok(true)) {
            for w in created {
                if let Err(e) = w.backend.delete(id).await {
                    tracing::warn!(backend = %w.name, error = %e, "multi-backend: could not remove a partly created session");
                }
            }
        }
        outcome
    }

    async fn replace(
        &self,
        id: &SessionId,
        state: &SessionState,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.all(|b| b.write, |b| b.backend.replace(id, state, ttl))
            .await
    }

    async fn apply(
        &self,
        id: &SessionId,
        changes: &Changes,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.all(|b| b.write, |b| b.backend.apply(id, changes, ttl))
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
        let replaced = if after.is_empty() {
            self.emptying(id).await?
        } else {
            Vec::new()
        };
        let written = self
            .all(
                |b| b.write,
                |b| b.backend.apply_versioned(id, version, after, changes, ttl),
            )
            .await;
        if written.is_ok() {
            self.emptied(id, &replaced, version).await;
        }
        written
    }

    async fn touch(&self, id: &SessionId, ttl: Option<Duration>) -> Result<bool, StoreError> {
        self.all(|b| b.write, |b| b.backend.touch(id, ttl)).await
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        // Rule 1 of the module docs: the backends sessions move from first, then the
        // writers; and not while a move of this id is under way in this process.
        let _serialised = self.serialised(std::iter::once(id)).await?;
        self.delete_everywhere(id).await
    }

    // The index: each backend keeps the entries of the sessions written to it (a session
    // that moves is indexed by the create that copies it); a lookup asks every backend that
    // keeps one, so a session not moved yet is found where it is.

    fn index_key(&self) -> Option<&str> {
        self.backends.iter().find_map(|b| b.backend.index_key())
    }

    async fn index_add(&self, index: &IndexName, id: &SessionId) -> Result<(), StoreError> {
        for b in self.backends.iter().filter(|b| b.write) {
            b.backend
                .index_add(index, id)
                .await
                .map_err(|e| self.tag(b, e))?;
        }
        Ok(())
    }

    async fn index_members(
        &self,
        index: &IndexName,
        oldest: Option<usize>,
    ) -> Result<Vec<IndexMember>, StoreError> {
        let mut members = Vec::new();
        for b in self.indexed() {
            members.extend(
                b.backend
                    .index_members(index, oldest)
                    .await
                    .map_err(|e| self.tag(b, e))?,
            );
        }
        crate::backend::keep_oldest(&mut members, oldest);
        Ok(members)
    }

    async fn index_remove(
        &self,
        index: &IndexName,
        members: &[IndexMember],
    ) -> Result<(), StoreError> {
        // Each backend removes only the members whose stamp it holds.
        for b in self.indexed() {
            b.backend
                .index_remove(index, members)
                .await
                .map_err(|e| self.tag(b, e))?;
        }
        Ok(())
    }

    async fn health(&self) -> Vec<BackendHealth> {
        crate::backend::health_of_parts(
            self.backends
                .iter()
                .map(|b| (format!("{NAME}[{}]", b.name), b.backend.as_ref())),
        )
        .await
    }

    fn name(&self) -> &str {
        NAME
    }
}

/// What a load answers: a map ([`SessionBackend::load_versioned`]), a state read in place
/// ([`SessionBackend::load_in_place`]) or a map with its lifetime left
/// ([`SessionBackend::load_with_ttl`]), asked of each backend in the same form.
#[async_trait]
trait LoadedAs: Send + Sized + 'static {
    async fn load(
        backend: &dyn SessionBackend,
        id: &SessionId,
        touch: Option<Duration>,
    ) -> Result<Option<(Self, Version)>, StoreError>;

    /// The answer for a session the load moved into the write backends (`state`, as the
    /// move left it).
    async fn moved(
        multi: &MultiBackend,
        id: &SessionId,
        state: SessionState,
    ) -> Result<Option<Self>, StoreError>;
}

#[async_trait]
impl LoadedAs for SessionState {
    async fn load(
        backend: &dyn SessionBackend,
        id: &SessionId,
        touch: Option<Duration>,
    ) -> Result<Option<(Self, Version)>, StoreError> {
        backend.load_versioned(id, touch).await
    }

    async fn moved(
        _: &MultiBackend,
        _: &SessionId,
        state: SessionState,
    ) -> Result<Option<Self>, StoreError> {
        Ok(Some(state))
    }
}

#[async_trait]
impl LoadedAs for LoadedState {
    async fn load(
        backend: &dyn SessionBackend,
        id: &SessionId,
        touch: Option<Duration>,
    ) -> Result<Option<(Self, Version)>, StoreError> {
        backend.load_in_place(id, touch).await
    }

    async fn moved(
        _: &MultiBackend,
        _: &SessionId,
        state: SessionState,
    ) -> Result<Option<Self>, StoreError> {
        Ok(Some(state.into()))
    }
}

/// A session with what is left of its lifetime.
struct WithTtl(SessionState, Option<Duration>);

#[async_trait]
impl LoadedAs for WithTtl {
    async fn load(
        backend: &dyn SessionBackend,
        id: &SessionId,
        _: Option<Duration>,
    ) -> Result<Option<(Self, Version)>, StoreError> {
        Ok(backend
            .load_with_ttl(id)
            .await?
            .map(|(state, left)| (WithTtl(state, left), Version::default())))
    }

    /// The lifetime the first write backend that is also read gave the session (the first
    /// write backend when none is read): the move's own, or that of a copy the move found
    /// there, which keeps its expiry. One more read, on a move only. Gone by then (a logout
    /// right after the move): no session.
    async fn moved(
        multi: &MultiBackend,
        id: &SessionId,
        _: SessionState,
    ) -> Result<Option<Self>, StoreError> {
        let Some(first) = multi
            .writers()
            .find(|b| b.read)
            .or_else(|| multi.writers().next())
        else {
            return Ok(None);
        };
        Ok(first
            .backend
            .load_with_ttl(id)
            .await
            .map_err(|e| tag(first, e))?
            .map(|(state, left)| WithTtl(state, left)))
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    /// A waker that counts its wakes.
    struct Wakes(std::sync::atomic::AtomicUsize);

    impl futures_util::task::ArcWake for Wakes {
        fn wake_by_ref(arc_self: &Arc<Self>) {
            arc_self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// A release wakes the requests waiting for its ids, and no other. It woke every waiter
    /// of the process (one `Notify` for all ids), each of which took the mutex and looked
    /// again: with many requests of one session waiting (a client's burst while that
    /// session's move waits on a hung backend), every move or delete of any other session
    /// in the process cost as many wake-ups.
    #[tokio::test]
    async fn a_release_wakes_only_the_waiters_of_its_ids() {
        use std::{
            future::Future,
            sync::atomic::Ordering,
            task::{Context, Poll},
        };
        let locks = IdLocks::new();
        let (a, b) = (SessionId::generate(), SessionId::generate());
        let held = locks.lock(&a).await;
        let wakes = Arc::new(Wakes(std::sync::atomic::AtomicUsize::new(0)));
        let waker = futures_util::task::waker(Arc::clone(&wakes));
        let mut cx = Context::from_waker(&waker);
        let mut waiting = Box::pin(locks.lock(&a));
        assert!(waiting.as_mut().poll(&mut cx).is_pending());
        for _ in 0..10 {
            drop(locks.lock(&b).await);
        }
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            0,
            "a release of another id woke the waiter"
        );
        drop(held);
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1, "the release of its id");
        assert!(matches!(waiting.as_mut().poll(&mut cx), Poll::Ready(_)));
    }

    #[tokio::test]
    async fn a_batch_waits_for_its_held_ids_only() {
        let locks = Arc::new(IdLocks::new());
        let (a, b, c) = (
            SessionId::generate(),
            SessionId::generate(),
            SessionId::generate(),
        );
        let held = locks.lock(&a).await;
        // Other ids: taken at once, and given back on drop.
        let other = locks.lock_all([&b, &c].into_iter()).now_or_never();
        assert!(other.is_some(), "ids nobody holds are not waited for");
        drop(other);
        assert!(locks.lock(&a).now_or_never().is_none(), "a held id waits");
        // A batch with a held id takes none of its ids until it gets all of them.
        let waiting = {
            let locks = Arc::clone(&locks);
            let (a, b) = (a.clone(), b.clone());
            tokio::spawn(async move {
                let _all = locks.lock_all([&a, &b].into_iter()).await;
            })
        };
        tokio::task::yield_now().await;
        assert!(
            locks.lock(&b).now_or_never().is_some(),
            "b is not taken while the batch waits"
        );
        drop(held);
        waiting.await.unwrap();
        assert!(locks
            .lock_all([&a, &b, &c].into_iter())
            .now_or_never()
            .is_some());
    }
}
