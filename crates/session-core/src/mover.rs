//! The one mover of sessions from one backend into another: the start-up migration from the
//! file store ([`crate::migration`]) and `sessionctl migrate` both move through it.
//!
//! Each session moves by the multi-backend's protocol ([`MultiBackend`], "Moving a session"):
//! read it with what is left of its lifetime from the source, create it in the target only
//! if the target does not have its id yet (the target's copy wins otherwise), then retire the
//! source copy (a moved marker of the move's own in its place for a minute:
//! [`SessionBackend::retire_many`]) and look at the answer: a source already gone (or
//! another move's marker, unless it holds this move's token: a move that found this move's
//! copy) means a logout
//! may have come in since the read, and the copy just made is removed again; the move's own
//! marker means its retire ran and this is the request sent again after a lost reply: the
//! move stands. A logout during a move therefore stays
//! a logout, provided the application deletes from the source first (a multi-backend with
//! the source in `delete` mode does, and so does the migration's wrapper). A session the
//! target keeps in the very place the source does ([`SessionBackend::place`]: a pool and the
//! same pool with a member more) is left where it is: nothing is created or deleted. So is
//! one the target already holds as the source's very value (the same header tag: one Redis
//! server written two ways, which `place` takes for two places): retiring the source would
//! retire the target's copy, the same key ([`MultiBackend`], "Moving a session").
//!
//! With [`keep_source`](Mover::keep_source) the source is read again instead of deleted
//! (a copy): a session gone from it since the first read is removed from the target.
//!
//! Speed comes from batches: [`Mover::move_many`] moves [`batch`](Mover::batch) sessions
//! at a time, and each step of the protocol is one batch operation per backend
//! ([`SessionBackend::load_many_with_ttl`], [`create_many`](SessionBackend::create_many),
//! [`retire_many`](SessionBackend::retire_many)): one pipelined round trip on Redis for the
//! whole batch, with a few batches in flight so that one server works while the other
//! answers; then one `touch` per session created, all in flight together, gives each copy
//! its expiry (copies are created on trial, with at most a minute, until the move stands:
//! [`MultiBackend`], "Moving a session"). Each session still goes through exactly the steps it would go through alone
//! (a load of a multi-backend moves one session with the same code, as a batch of one), and
//! moves and deletes of one id wait for each other inside the process.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use session_core::{
//!     backends::memory::MemoryBackend, mover::{MoveOutcome, Mover}, SessionBackend, SessionId,
//!     TtlRule,
//! };
//!
//! let (from, to) = (Arc::new(MemoryBackend::new()), Arc::new(MemoryBackend::new()));
//! let id = SessionId::generate();
//! from.create(&id, &[("user".into(), "\"alice\"".into())].into(), None).await.unwrap();
//!
//! let mover = Mover::new(from.clone(), to.clone(), TtlRule::default());
//! assert_eq!(mover.move_many(&[id.clone()]).await[0].as_ref().unwrap(), &MoveOutcome::Created);
//! assert!(from.load(&id, None).await.unwrap().is_none());
//! assert!(to.load(&id, None).await.unwrap().is_some());
//! # });
//! ```

use std::sync::Arc;

use futures_util::{stream::FuturesOrdered, StreamExt};

use crate::{
    backends::multi::{Moved, MultiBackend},
    config::BackendMode,
    SessionBackend, SessionId, StoreError, TtlRule,
};

/// Where the source sits among the mover's backends (after the target).
const SOURCE: usize = 1;

/// How many sessions [`Mover::move_many`] moves per batch unless told otherwise.
pub const DEFAULT_BATCH: usize = 1000;

/// How many batches [`Mover::move_many`] keeps in flight.
const BATCHES_IN_FLIGHT: usize = 4;

/// What moving one session did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveOutcome {
    /// Created in the target; the source copy is gone (kept with
    /// [`keep_source`](Mover::keep_source)).
    Created,
    /// The target had the id already and keeps its own copy; the source copy is gone (kept
    /// with `keep_source`, or when the target keeps the session in the source's own place).
    AlreadyThere,
    /// A logout came in during the move: the session is in neither backend.
    LoggedOut,
    /// The source does not have the session (expired or deleted before it was read).
    Absent,
}

/// Moves sessions from one backend into another (see the [module docs](self)).
pub struct Mover {
    moving: MultiBackend,
    batch: usize,
}

impl std::fmt::Debug for Mover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mover")
            .field("backends", &self.moving)
            .field("batch", &self.batch)
            .finish()
    }
}

impl Mover {
    /// A mover from `from` into `to`; moved sessions get the expiry [`TtlRule::for_move`]
    /// gives: what they had left in the source, else `key_expire`.
    pub fn new(from: Arc<dyn SessionBackend>, to: Arc<dyn SessionBackend>, ttl: TtlRule) -> Self {
        let moving = MultiBackend::new(
            vec![
                (
                    "target".into(),
                    vec![BackendMode::Read, BackendMode::Write],
                    to,
                ),
                (
                    "source".into(),
                    vec![BackendMode::Read, BackendMode::Delete],
                    from,
                ),
            ],
            ttl,
        )
        .untagged();
        Self {
            moving,
            batch: DEFAULT_BATCH,
        }
    }

    /// Copy instead of move: the source keeps its sessions. A session the source loses
    /// during its copy (a logout) is removed from the target again.
    pub fn keep_source(mut self, keep: bool) -> Self {
        self.moving = self.moving.keeping_source(keep);
        self
    }

    /// How many sessions [`move_many`](Self::move_many) moves per batch (at least 1; 1 is
    /// one session, one command at a time).
    pub fn batch(mut self, sessions: usize) -> Self {
        self.batch = sessions.max(1);
        self
    }

    /// Moves one session.
    pub async fn move_one(&self, id: &SessionId) -> Result<MoveOutcome, StoreError> {
        self.move_many(std::slice::from_ref(id))
            .await
            .pop()
            .expect("one answer for one id")
    }

    /// Moves every session of `ids`, [`batch`](Self::batch) sessions at a time, each step
    /// of the protocol one batch operation per backend; the outcomes in the order of `ids`.
    /// One failure does not stop the others.
    pub async fn move_many(&self, ids: &[SessionId]) -> Vec<Result<MoveOutcome, StoreError>> {
        // A few batches in flight, so that one server works while the other answers. A
        // hand-written window rather than `StreamExt::buffered`, whose closure makes the
        // future not `Send` for every lifetime (the migration spawns it).
        let mut outcomes = Vec::with_capacity(ids.len());
        let mut in_flight = FuturesOrdered::new();
        let mut batches = ids.chunks(self.batch);
        loop {
            while in_flight.len() < BATCHES_IN_FLIGHT {
                match batches.next() {
                    Some(batch) => in_flight.push_back(self.moving.move_out_of(SOURCE, batch)),
                    None => break,
                }
            }
            let Some(moved) = in_flight.next().await else {
                return outcomes;
            };
            outcomes.extend(moved.into_iter().map(|moved| {
                Ok(match moved? {
                    Some(Moved::Created(_)) => MoveOutcome::Created,
                    Some(Moved::AlreadyThere(_)) => MoveOutcome::AlreadyThere,
                    Some(Moved::LoggedOut) => MoveOutcome::LoggedOut,
                    None => MoveOutcome::Absent,
                })
            }));
        }
    }

    /// The source and the target as one backend: loads move a session found only in the
    /// source, deletes remove the source copy first (for the migration's wrapper).
    #[cfg_attr(not(feature = "file"), allow(dead_code))]
    pub(crate) fn as_backend(&self) -> &MultiBackend {
        &self.moving
    }
}
