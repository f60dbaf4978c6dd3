//! Migration of file-store sessions into Redis at start-up (`session_redis_migrate_from_filestore`).
//!
//! Odoo's `session_redis` rule: each session id is migrated only if Redis does not have it yet. Here that is
//! the backend's conditional `create`, so a session that already exists in Redis (because an
//! earlier run migrated it, or because the application wrote it since) is never overwritten.
//!
//! What happens to each file of `session_filestore_path`:
//!
//! | file | Redis | file afterwards |
//! |---|---|---|
//! | live session | created with the file's remaining TTL (or `key_expire` when the file has none) | removed |
//! | live session, id already in Redis | left as it is | removed |
//! | expired session | nothing | removed |
//! | corrupt file | nothing | kept, counted and logged, for inspection |
//! | file that cannot be read or removed | nothing | kept, counted and logged (one line per run); the run goes on |
//! | entry that is no session file where the store keeps one (a session file in another shard than its id's, another name) | nothing | kept, never read, counted as unrecognised and logged as a count (one line per run) |
//!
//! A migrated file is removed once Redis holds the session, so a later logout (a delete in
//! Redis) cannot be undone by the next start-up migrating the old file again. When Redis is
//! unavailable the run stops, the remaining files stay, and [`SessionStore::from_config`]
//! retries in the background every [`RETRY_INTERVAL`] until one run completes: the application
//! starts either way. Until then, a session still in a file is moved on its first use (so its
//! user stays logged in), and a logout (a delete, or a write clearing the session) ends the
//! file copy too, under a logout's marker (so the retry cannot bring it back, and a move in
//! flight or a renew racing the logout finds the marker:
//! [`MultiBackend`](crate::backends::multi::MultiBackend), "A logout during a move"). Only
//! this library's file store format is read (see [`FileBackend`]).
//!
//! Every move, on first use or by the sweep, goes through [the mover](crate::mover), the
//! multi-backend's move (Redis read + write, the file store read + delete; see
//! [`MultiBackend`](crate::backends::multi::MultiBackend), "Moving a session"), which
//! `sessionctl migrate` uses too: a logout at the same instant as a move stays a logout. The
//! sweep moves [`DEFAULT_BATCH`](crate::mover::DEFAULT_BATCH) sessions per batch, as the file
//! store's walk ([`FileBackend::walk`]) hands them out: it holds one batch of ids at a time,
//! not every id of the directory (about 1 GB per 10 million files), and a batch's moves end
//! before the next batch is asked for. The walk hands out no id twice; a file written
//! during the run (by a process still on the file store) may be seen or missed, as one
//! written after a listing of the whole directory was: missed, it stays in its file for the
//! next run. Progress is logged every batch with the sessions done
//! and the shard directories walked out of those found (ids are spread evenly over the
//! shards), not with a total of sessions: counting them first would read the whole
//! directory once more, and again at each retry while Redis is down.
//!
//! One process sweeps a file store at a time (an exclusive `flock` on `.migration.lock` in
//! its directory): processes started together with one configuration would otherwise move
//! every session twice at once, and a move that finds its source gone takes it for a logout.
//! A process that waits more than 10 s starts anyway, moving sessions on first use, and
//! retries the sweep in the background.
//!
//! [`SessionStore::from_config`]: crate::SessionStore::from_config

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use async_trait::async_trait;

use crate::{
    backends::file::FileBackend,
    mover::{MoveOutcome, Mover},
    BackendHealth, Changes, IndexMember, IndexName, LoadedState, SessionBackend, SessionId,
    SessionState, StoreError, TtlRule, Version,
};

/// How often a migration that found Redis unavailable is tried again.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(5);

/// How many ids the sweep asks the walk for at a time (the ids it holds at once), and how
/// many sessions between two progress lines in the log.
const PROGRESS_EVERY: usize = 1000;

/// What one migration run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// Sessions created in the target.
    pub migrated: usize,
    /// Sessions whose id the target already had (left as they were there).
    pub already_present: usize,
    /// Expired session files removed without migrating them.
    pub expired: usize,
    /// Corrupt session files, left in place.
    pub corrupt: usize,
    /// Sessions a logout deleted while they were being moved: gone from both sides.
    pub logged_out: usize,
    /// Session files the file store could not read or remove (permissions, a directory in
    /// the way): skipped, left in place and logged, so one bad file does not stop the rest.
    pub unreadable: usize,
    /// Entries of the file store's directory that are not session files where the store
    /// keeps them: a session file in another shard than its id's (the store never reads it
    /// there), a name that is no session file's. Never read nor moved, left in place, and
    /// logged once per run as a count (a misplaced file's name is a session id).
    pub unrecognised: usize,
}

/// The mover: the target read + write, the file store read + delete.
fn mover(from: Arc<FileBackend>, to: Arc<dyn SessionBackend>, ttl: TtlRule) -> Mover {
    Mover::new(from, to, ttl)
}

/// Moves every session of `from` into `to`, each only if `to` does not have its id yet, with
/// the expiry [`TtlRule::for_move`] gives: what it had left in the file, else `key_expire`.
///
/// Stops at the first error other than a corrupt or unreadable session file; what was done so far
/// stays done, and running it again continues where it stopped.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::Arc;
/// use session_core::{
///     backends::{file::FileBackend, memory::MemoryBackend},
///     migration::migrate_file_store, SessionStore, TtlRule,
/// };
///
/// let dir = tempfile::tempdir().unwrap();
/// let files = SessionStore::new(FileBackend::new(dir.path().to_path_buf()).unwrap());
/// let id = files.create(&[("user".into(), "\"alice\"".into())].into(), None).await.unwrap();
///
/// let from = Arc::new(FileBackend::new(dir.path().to_path_buf()).unwrap());
/// let report = migrate_file_store(from, Arc::new(MemoryBackend::new()), TtlRule::default())
///     .await
///     .unwrap();
/// assert_eq!(report.migrated, 1);
/// assert!(files.load(&id).await.unwrap().is_none(), "the file is gone");
/// # });
/// ```
pub async fn migrate_file_store(
    from: Arc<FileBackend>,
    to: Arc<dyn SessionBackend>,
    ttl: TtlRule,
) -> Result<MigrationReport, StoreError> {
    sweep(&from, &mover(Arc::clone(&from), to, ttl)).await
}

/// How long a sweep waits for another process's to finish before it gives up for this
/// attempt (the application then starts with the moves on first use, and the retry waits
/// again).
const SWEEP_LOCK_WAIT: Duration = Duration::from_secs(10);

/// One pass over the file store, every session through `moving`, a batch at a time, one
/// process at a time: two processes sweeping the same files at once (started together with
/// one configuration) would move each session twice, and the second to delete a file would
/// take the first one's delete for a logout and remove the session it had found in the
/// target (rule 2 of the multi-backend's moves): nearly every session lost. One after the
/// other, the second finds the files gone.
async fn sweep(from: &FileBackend, moving: &Mover) -> Result<MigrationReport, StoreError> {
    let _one_at_a_time = from.migration_lock(SWEEP_LOCK_WAIT).await?;
    let mut walk = from.walk();
    let mut report = MigrationReport::default();
    let mut done = 0;
    while let Some(ids) = walk.next_batch(PROGRESS_EVERY).await? {
        if done > 0 {
            // No total of sessions: counting first would read the whole directory once
            // more, and again at every retry (every RETRY_INTERVAL while Redis is down),
            // which then fails at its first batch. The shards walked out of those found
            // say how far the run is, as ids are spread evenly over the shards.
            tracing::info!(
                done,
                shards_walked = walk.shards_walked(),
                shards = walk.shards(),
                "migrating file-store sessions"
            );
        }
        done += ids.len();
        for (id, outcome) in ids.iter().zip(moving.move_many(&ids).await) {
            match outcome {
                Ok(MoveOutcome::Created) => report.migrated += 1,
                Ok(MoveOutcome::AlreadyThere) => report.already_present += 1,
                Ok(MoveOutcome::LoggedOut) => report.logged_out += 1,
                Ok(MoveOutcome::Absent) => {
                    // Expired (or gone meanwhile): removing what is left resurrects nothing.
                    // Never the target's copy: a session this run moved already (a file the
                    // walk saw twice) is only deleted from the file store, where it is gone.
                    // Its logout's marker stays (a logout in another process may have just
                    // retired it): a plain delete would remove it (`backends::file`, "Markers").
                    match from.delete_session_file(id).await {
                        Ok(_) => report.expired += 1,
                        Err(err) if is_about_files(&err) => report.unreadable += 1,
                        Err(err) => return Err(err),
                    }
                }
                Err(err) if err.is_corrupt() => report.corrupt += 1,
                // One file the store cannot read must not stop every retry forever: skip it.
                // An unavailable target (the usual reason to stop and retry) is another
                // backend.
                Err(err) if is_about_files(&err) => report.unreadable += 1,
                Err(err) => return Err(err),
            }
        }
    }
    report.unrecognised = walk.unrecognised();
    Ok(report)
}

/// True for an I/O error of the file store itself (one file it cannot read or remove), as
/// opposed to the target being unavailable.
fn is_about_files(err: &StoreError) -> bool {
    matches!(err, StoreError::Unavailable { backend, .. } if backend == FileBackend::NAME)
}

/// Runs the migration once now and returns the backend the store should use: `to` itself
/// when the run completed, otherwise `to` wrapped so that, until a retry completes in the
/// background, a session found only in the file store is moved on first use and a logout
/// deletes both copies (a file left behind must not bring a logged-out session back when the
/// retry migrates it). Never fails: the application starts either way, and every outcome is
/// logged.
pub(crate) async fn start(
    from: FileBackend,
    to: Arc<dyn SessionBackend>,
    ttl: TtlRule,
) -> Arc<dyn SessionBackend> {
    let from = Arc::new(from);
    let moving = mover(Arc::clone(&from), Arc::clone(&to), ttl);
    let first = attempt(&from, &moving, to.name()).await;
    match first {
        Ok(report) if report.unreadable == 0 => return to,
        // Files left behind that the store could not read or remove: the run is done, but
        // logouts keep deleting the file copy too, or the next start-up could move a
        // logged-out session back.
        Ok(_) => {
            return Arc::new(Pending {
                from,
                moving,
                to,
                done: AtomicBool::new(true),
            })
        }
        Err(()) => {}
    }
    let pending = Arc::new(Pending {
        from,
        moving,
        to,
        done: AtomicBool::new(false),
    });
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            let retry = Arc::clone(&pending);
            runtime.spawn(async move {
                loop {
                    tokio::time::sleep(RETRY_INTERVAL).await;
                    if attempt(&retry.from, &retry.moving, retry.to.name())
                        .await
                        .is_ok()
                    {
                        retry.done.store(true, Ordering::Release);
                        break;
                    }
                }
            });
        }
        Err(_) => tracing::error!(
            "file-store migration could not run and no tokio runtime is there to retry it; sessions are moved on first use until the next start"
        ),
    }
    pending
}

/// The target backend while a migration is unfinished (see [`start`]). It forwards the
/// operations the target overrides, where the trait's defaults would answer no lifetime
/// (`load_with_ttl`), drop a move's tags (`create_many_tagged`, `touch_tagged`) and take
/// batches one session at a time. Not `delete_many` and `retire_many`: their defaults
/// delete one id at a time through [`delete`](SessionBackend::delete), which must go
/// through the mover (the file copy first).
struct Pending {
    from: Arc<FileBackend>,
    /// Loads and deletes go through the mover until the sweep completed.
    moving: Mover,
    to: Arc<dyn SessionBackend>,
    done: AtomicBool,
}

impl Pending {
    /// The mover while sessions may still sit in files, the target alone afterwards.
    fn reader(&self) -> &dyn SessionBackend {
        if self.done.load(Ordering::Acquire) {
            self.to.as_ref()
        } else {
            self.moving.as_backend()
        }
    }
}

#[async_trait]
impl SessionBackend for Pending {
    async fn load(
        &self,
        id: &SessionId,
        touch: Option<Duration>,
    ) -> Result<Option<SessionState>, StoreError> {
        self.reader().load(id, touch).await
    }

    async fn load_versioned(
        &self,
        id: &SessionId,
        touch: Option<Duration>,
    ) -> Result<Option<(SessionState, Version)>, StoreError> {
        self.reader().load_versioned(id, touch).await
    }

    async fn load_with_ttl(
        &self,
        id: &SessionId,
    ) -> Result<Option<(SessionState, Option<Duration>)>, StoreError> {
        self.reader().load_with_ttl(id).await
    }

    async fn load_many_with_ttl(
        &self,
        ids: &[SessionId],
    ) -> Vec<Result<Option<(SessionState, Option<Duration>)>, StoreError>> {
        self.reader().load_many_with_ttl(ids).await
    }

    async fn load_versioned_from_primary(
        &self,
        id: &SessionId,
    ) -> Result<Option<(SessionState, Version)>, StoreError> {
        self.reader().load_versioned_from_primary(id).await
    }

    async fn load_in_place(
        &self,
        id: &SessionId,
        touch: Option<Duration>,
    ) -> Result<Option<(LoadedState, Version)>, StoreError> {
        self.reader().load_in_place(id, touch).await
    }

    async fn apply_versioned(
        &self,
        id: &SessionId,
        version: Version,
        after: &[(&str, &str)],
        changes: &Changes,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        if after.is_empty() {
            // A write that leaves no key (a logout by clearing the session) ends the file
            // copy under a logout's marker first, as a delete does, even once the sweep
            // completed (`backends::multi`, "A logout during a move"): to the target alone,
            // it left a move's marker in the file store, and a renew racing a stale move in
            // flight took that move's copy for the session and kept it.
            return self
                .moving
                .as_backend()
                .apply_versioned(id, version, after, changes, ttl)
                .await;
        }
        self.to
            .apply_versioned(id, version, after, changes, ttl)
            .await
    }

    async fn create(
        &self,
        id: &SessionId,
        state: &SessionState,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.to.create(id, state, ttl).await
    }

    async fn create_many(
        &self,
        sessions: &[(SessionId, SessionState, Option<Duration>)],
    ) -> Vec<Result<bool, StoreError>> {
        self.to.create_many(sessions).await
    }

    async fn create_many_tagged(
        &self,
        sessions: &[(SessionId, SessionState, Option<Duration>, u64)],
    ) -> Vec<Result<bool, StoreError>> {
        self.to.create_many_tagged(sessions).await
    }

    async fn replace(
        &self,
        id: &SessionId,
        state: &SessionState,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.to.replace(id, state, ttl).await
    }

    async fn apply(
        &self,
        id: &SessionId,
        changes: &Changes,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.to.apply(id, changes, ttl).await
    }

    async fn touch(&self, id: &SessionId, ttl: Option<Duration>) -> Result<bool, StoreError> {
        self.to.touch(id, ttl).await
    }

    async fn touch_tagged(
        &self,
        id: &SessionId,
        ttl: Option<Duration>,
        tag: u64,
    ) -> Result<bool, StoreError> {
        self.to.touch_tagged(id, ttl, tag).await
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        // Always through the mover, the file copy first, even once the sweep completed: a
        // file it could not remove (counted as unreadable) must not bring the session back at
        // the next start-up. A missing file costs two lookups (the session file and its
        // marker, `backends::file`, "Markers"), no lock.
        self.moving.as_backend().delete(id).await
    }

    // The index is the target's: a session still in a file is indexed when it moves (the
    // mover creates it in the target, which indexes what it creates). Until the sweep is
    // done, lookups also ask the file store's own index (kept while the application ran on
    // the file store with the option set), so a logout everywhere finds the sessions that
    // have not moved yet; the mover's delete removes their file first.
    fn index_key(&self) -> Option<&str> {
        self.to.index_key()
    }

    async fn index_add(&self, index: &IndexName, id: &SessionId) -> Result<(), StoreError> {
        self.to.index_add(index, id).await
    }

    async fn index_members(
        &self,
        index: &IndexName,
        oldest: Option<usize>,
    ) -> Result<Vec<IndexMember>, StoreError> {
        let mut members = self.to.index_members(index, oldest).await?;
        if !self.done.load(Ordering::Acquire) && self.from.index_key().is_some() {
            members.extend(self.from.index_members(index, oldest).await?);
            crate::backend::keep_oldest(&mut members, oldest);
        }
        Ok(members)
    }

    async fn index_remove(
        &self,
        index: &IndexName,
        members: &[IndexMember],
    ) -> Result<(), StoreError> {
        if self.from.index_key().is_some() {
            self.from.index_remove(index, members).await?;
        }
        self.to.index_remove(index, members).await
    }

    async fn health(&self) -> Vec<BackendHealth> {
        self.to.health().await
    }

    fn place(&self, id: &SessionId) -> Option<String> {
        self.to.place(id)
    }

    fn name(&self) -> &str {
        self.to.name()
    }
}

/// One run, logged. `Err` when it should be tried again later.
async fn attempt(from: &FileBackend, moving: &Mover, target: &str) -> Result<MigrationReport, ()> {
    match sweep(from, moving).await {
        Ok(report) => {
            tracing::info!(
                migrated = report.migrated,
                already_present = report.already_present,
                expired = report.expired,
                corrupt = report.corrupt,
                logged_out = report.logged_out,
                unreadable = report.unreadable,
                unrecognised = report.unrecognised,
                from = %from.root().display(),
                "file-store sessions migrated into {target}"
            );
            if report.unrecognised > 0 {
                // A count only: a misplaced session file's name is a session id.
                tracing::warn!(
                    unrecognised = report.unrecognised,
                    from = %from.root().display(),
                    "entries of the file store's directory are not session files where the store keeps them (a session file in another shard than its id's, another name); they were not migrated and are left in place"
                );
            }
            if report.corrupt > 0 {
                tracing::warn!(
                    corrupt = report.corrupt,
                    "corrupt session files were not migrated; they are left in the file store for inspection"
                );
            }
            if report.unreadable > 0 {
                tracing::warn!(
                    unreadable = report.unreadable,
                    from = %from.root().display(),
                    "session files the file store could not read or remove were skipped; they are left in place (check their permissions)"
                );
            }
            Ok(report)
        }
        Err(err) => {
            tracing::warn!(
                error = %err,
                retry_in_secs = RETRY_INTERVAL.as_secs(),
                "file-store migration stopped; the sessions not migrated yet stay in the file store and the migration is retried"
            );
            Err(())
        }
    }
}
