//! File store backend: one JSON file per session, used when Redis is disabled
//! (`session_redis_mode = False`).
//!
//! # Layout
//!
//! ```text
//! <root>/                      created with mode 0700 (an existing directory keeps its mode)
//!   <s>/                       shard: the first two characters of the id (mode 0700)
//!     .lock                    advisory lock file of the shard, never removed
//!     <id>.json                one session (mode 0600)
//!     <id>.ended               a logout's marker: the Unix ms it ends at (see below)
//!     .tmp-<random>            a write in progress (or left by a crash)
//!   .probe-<random>            a writability check of `new` or `health`, removed at once
//!   .index/                    with session_redis_index_key only (mode 0700)
//!     <digest>/                one index entry: SHA-256 of the key and a value (mode 0700),
//!                              removed with its lock file when its last name goes (unix)
//!       .lock                  advisory lock of the entry (adds, reads, removals)
//!       <id>                   a session of that entry; holds the Unix ms of its add
//!       .tmp-<random>          an add in progress
//! ```
//!
//! Ids are validated base64url text ([`SessionId`]), so they are safe as file names. Sharding
//! keeps directories small (at most 64² = 4096 shards).
//!
//! # File format (version 1)
//!
//! ```json
//! {"version":1,"expires_at_ms":1767225600000,"state":{"user":"\"alice\"","n":"3"}}
//! ```
//!
//! * `version`: always `1`. Any other value is reported as corrupt, so a future format is never
//!   misread.
//! * `expires_at_ms`: absolute expiry as Unix time in milliseconds, or `null` for no expiry. A
//!   session is expired once `now >= expires_at_ms`. An absolute time (not a TTL) keeps the file
//!   meaningful without its modification time, and converts directly to Redis `PEXPIREAT`.
//! * `state`: session key to the **JSON text** of its value (a JSON string holding JSON): the
//!   same key/text pairs Redis stores, where each text is embedded as is in the session's one
//!   string (`v1:<tag>:{"user":"alice","n":3}`), so a migration moves every value's text
//!   unchanged. It is never empty.
//!
//! Unknown extra top-level fields are ignored, so a later version may add fields that older
//! readers skip.
//!
//! # Atomic writes
//!
//! Every write goes to a fresh `.tmp-*` file in the shard directory, is flushed to disk
//! (`fsync` of the data, unless [`FileBackend::with_fsync`] turned it off) and is then renamed
//! over `<id>.json`. Readers therefore see the old or the new file, never a partial one, and a
//! crash leaves at most a stray temp file, which [`FileBackend::cleanup`] removes. The directory
//! itself is not synced after the rename (one more `fsync` per write): after a power loss a
//! session may come back as its previous complete version, never as a partial one.
//!
//! A removal that ends a session (a delete, such as a logout, or a write that leaves no key)
//! is followed by an `fsync` of its shard directory, once per batch of deletes in one shard:
//! the unlink is a change of the directory alone, and a power loss must not bring a
//! logged-out session back. Its failure fails the delete (the file is gone, but whether for
//! good is not known). Removals of expired files are not flushed: one that comes back is
//! still expired. [`FileBackend::with_fsync`] turns these flushes off too.
//!
//! # Markers
//!
//! A multi-backend that moves sessions out of this store retires a session here as it does
//! on Redis ([`SessionBackend::retire_many`]; `backends::multi`, "Moving a session" and "A
//! logout during a move"): the session file is removed as a delete does, and
//! `<id>.ended` is written beside it, holding the Unix ms at which it ends
//! ([`MOVED_MARKER_TTL`](crate::MOVED_MARKER_TTL) from then) and the token of the move (or
//! the logout's) that wrote it: `1767225600000 0123456789abcdef`. A retire that finds no
//! session file answers by the marker: its own token, [`Retired::Before`]; another,
//! [`Retired::Other`], and a logout's retire then writes its own marker in its place;
//! none (or one past its end), [`Retired::Absent`], writing nothing. So a logout leaves a
//! marker only where a session or a marker was, and of two deletes of one id in two
//! processes sharing this directory (a logout and a renew, while a move of the session is
//! in flight) only the first finds the session: the per-id locks of one process do not
//! keep them apart. A retire puts the marker in place before it removes the session file:
//! a retire or delete looks for either without the lock first, and one looking in between
//! found neither and answered `Absent` without waiting for the lock. A plain delete
//! removes a marker with the session, as Redis' does; the migration's clean-up of a
//! session it found gone does not (`FileBackend::delete_session_file`).
//! Reads never look at markers; the sweep removes those past their end; a walk skips
//! them. A marker is read as a session file is (a regular file only, not followed through
//! a link: a FIFO named `<id>.ended` must not block a logout under the shard lock);
//! anything else there, or a marker that holds no end and token, counts as ended.
//!
//! # Concurrency
//!
//! Every read-modify-write (`create`, `replace`, `apply`, `touch`, `delete`, `load` with a
//! touch, removal of an expired file) holds an exclusive advisory lock (`flock` on Linux) on the
//! shard's `.lock` file for the duration of the read, the change and the rename. The lock file is
//! opened afresh for each operation, and `flock` excludes between open file descriptions, so it
//! serialises threads of one process and separate processes sharing the directory alike. A
//! plain `load` takes no lock: the rename makes each write appear at once. The lock is released
//! when the file is closed, so a crashed process never leaves a shard locked. All blocking I/O
//! runs on tokio's blocking pool.
//!
//! Nothing else may remove files from the directory: the `.lock` files are never rewritten, so
//! they look old, and a cleanup job (`find -mtime +N -delete`) that removes one lets two
//! processes lock two different files for one shard, where a write can undo another's, or a
//! logout. The store removes what it no longer needs itself ([`FileBackend::cleanup`]).
//!
//! An index entry is locked the same way, on its own `.lock`, with one difference: the entry
//! directory is removed when its last name goes (a value indexed once, such as a user name a
//! client typed, would otherwise keep a directory for ever). The removal unlinks the lock
//! file while holding it, so whoever takes an entry's lock checks afterwards that the file it
//! locked is still the one at `<digest>/.lock`, and starts over when it is not: an add then
//! creates the directory again (see `Dir::remove_entry_if_empty`). Shards are never removed.
//!
//! # Expiry and cleanup
//!
//! Expiry is checked on every access: an expired session is never returned, and the access
//! that finds it removes its file (or, when it cannot right then, still answers "no session"
//! and leaves the file to the sweep). Sessions that are never accessed again are removed by
//! [`FileBackend::cleanup`], which learns each file's expiry from its first bytes (the header
//! up to `"state":`, as the store writes it; a file that begins otherwise is read whole) and
//! also removes temp files older than ten minutes (a write
//! takes milliseconds, so these were left by a crash). Cleanup runs on a background tokio
//! task, started by the first operation made inside a tokio runtime: once right away (to clear
//! leftovers of a previous run) and then every [`DEFAULT_CLEANUP_INTERVAL`] (see
//! [`FileBackend::with_cleanup_interval`]). The task stops when the backend is dropped; when
//! its runtime shuts down first, the next operation in a live runtime starts another. Several
//! processes may sweep the same directory at once: each removal re-checks the file under the
//! shard lock.
//!
//! # Walking the store
//!
//! The migration into Redis and `sessionctl` go over every session file with
//! [`FileBackend::walk`], a batch of ids at a time: it reads a few dozen shard directories
//! side by side ([`SessionWalk`]), so it holds at most a batch of ids and that many open
//! directories whatever the number of files (an old deployment's directory may hold
//! millions; listing it whole cost about 1 GB per 10 million). Each shard is read once, so
//! no id comes twice; a file written or removed during the walk may be seen or missed, as a
//! key during a Redis `SCAN`. [`FileBackend::session_ids`] collects a whole walk, every id in
//! memory, for tests and small stores.
//!
//! # Corrupt files
//!
//! A file that is not JSON, does not have the shape above, or holds a value that is not JSON
//! text gives [`StoreError::Corrupt`] on every access, and `replace`, `apply` and `touch` refuse
//! to overwrite it. Corrupt files are **never removed automatically** (they may be the only copy
//! of someone's data, or the sign of a bug worth inspecting): only an explicit `delete` (a
//! logout) removes one. [`FileBackend::cleanup`] counts those it finds (see
//! [`CleanupReport::corrupt_found`]) and logs a warning so an operator can look. A write of a
//! value that is not JSON text is refused before anything is written, so the store never
//! makes a corrupt file itself. Nor one too large: a file larger than the most a session
//! within [`FileBackend::with_max_session_size`] takes on disk is corrupt (and is not read),
//! and a write that would make one is refused ([`StoreError::TooLarge`]).

use std::{
    fs::{self, File, OpenOptions, TryLockError},
    io::{self, Write as _},
    path::{Path, PathBuf},
    sync::{Arc, Weak},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{
    backend::now_ms,
    index::{entry_of_changes, entry_of_state},
    running::Running,
    state::{check_values_are_json, refuse_unless_json},
    BackendHealth, Changes, ConfigError, IndexMember, IndexName, Retired, SessionBackend,
    SessionId, SessionState, StoreError,
};

const BACKEND: &str = "file";
/// The one file format this module writes and reads.
const FORMAT_VERSION: u32 = 1;
const LOCK_FILE: &str = ".lock";
/// The file in the root whose lock one start-up migration holds at a time
/// ([`FileBackend::migration_lock`]).
const MIGRATION_LOCK: &str = ".migration.lock";
const TEMP_PREFIX: &str = ".tmp-";
/// Health and start-up checks write a file with this prefix in the root and remove it at once.
const PROBE_PREFIX: &str = ".probe-";
const SESSION_SUFFIX: &str = ".json";
/// A move's or a logout's marker beside where a session file was (module docs, "Markers").
const MARKER_SUFFIX: &str = ".ended";
/// The directory of the session index, in the root (a name no shard has).
const INDEX_DIR: &str = ".index";
/// How many shard directories a walk reads at once ([`SessionWalk`]): as many as a batch
/// operation has loads or deletes in flight, so those in flight together are in different
/// shards. 64 open directories cost 64 file descriptors and about 2 MB.
const WALK_SHARDS: usize = crate::backend::BATCH_WINDOW;
/// Temp files older than this are left over from a crash: a write takes milliseconds.
const STALE_TEMP_AGE: Duration = Duration::from_secs(600);
/// The longest an operation waits for a shard lock held by another thread or process, the
/// same bound as Redis' default response timeout: a process that hangs while holding a lock
/// then costs callers an "unavailable" answer (503), not a request that never returns and a
/// blocking thread lost for good.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a waiting operation tries the lock again.
const LOCK_RETRY: Duration = Duration::from_millis(5);
/// How often the background task sweeps expired sessions unless configured otherwise.
pub const DEFAULT_CLEANUP_INTERVAL: Duration = Duration::from_secs(600);

/// Sessions stored as JSON files in a directory; see the [module documentation](self) for the
/// layout, the file format and how concurrent access is serialised.
///
/// ```
/// use session_core::{backends::file::FileBackend, SessionStore};
///
/// let dir = tempfile::tempdir().unwrap();
/// let store = SessionStore::new(FileBackend::new(dir.path().join("sessions")).unwrap());
/// ```
pub struct FileBackend {
    dir: Arc<Dir>,
    /// `session_redis_index_key`, when set ([`FileBackend::with_index_key`]).
    index_key: Option<String>,
    cleanup_interval: Option<Duration>,
    /// Whether a sweeper task is alive: counted in when one is spawned, out by the task itself
    /// when it ends, also when its runtime shuts down and drops it.
    sweeper: Running,
    /// The background sweeper holds a `Weak` of this and stops once the backend is gone.
    alive: Arc<()>,
}

impl std::fmt::Debug for FileBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileBackend")
            .field("root", &self.dir.root)
            .field("fsync", &self.dir.fsync)
            .field("max_session_size", &self.dir.max_session_size)
            .field("cleanup_interval", &self.cleanup_interval)
            .finish()
    }
}

/// What one [`FileBackend::cleanup`] sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// Expired session files removed.
    pub expired_removed: usize,
    /// Stale temp files (left by a crash during a write) removed.
    pub temp_removed: usize,
    /// Corrupt session files found and left in place. The sweep reads a file's header only
    /// (its expiry), so it finds a file whose header is damaged (or that is too large, or
    /// not a regular file), or whose header says expired and whose rest is damaged; a live
    /// session damaged after its header is found by the access that reads it.
    pub corrupt_found: usize,
    /// Entries the sweep could not read or remove (permissions, I/O errors), skipped: one
    /// such entry stopped every sweep, and expired sessions piled up behind it.
    pub unreadable: usize,
    /// Markers of moves and logouts past their end removed (module docs, "Markers").
    pub markers_removed: usize,
}

impl FileBackend {
    /// Deletes the session file of `id` and leaves its marker, if any (module docs,
    /// "Markers"), where [`delete`](SessionBackend::delete) removes it too: the
    /// migration's clean-up of a session it found gone ([`crate::migration`]). The walk
    /// listed the file, and a logout in another process may have retired it since: its
    /// marker must stay for its minute, or a renew racing that logout during a move finds
    /// no marker and takes the move's copy for the session.
    pub(crate) async fn delete_session_file(&self, id: &SessionId) -> Result<bool, StoreError> {
        let id = id.clone();
        self.run(move |dir| dir.delete_with(&id, Markers::Keep))
            .await
    }

    /// The name this backend reports in errors and health checks.
    pub const NAME: &'static str = BACKEND;

    /// Opens (creating it if needed, with mode 0700 on unix) the directory `root`.
    ///
    /// Fails with a [`ConfigError`] naming `session_filestore_path` when the directory cannot
    /// be created or written.
    pub fn new(root: PathBuf) -> Result<Self, ConfigError> {
        let config_error = |reason: String| ConfigError {
            kind: crate::config::ConfigErrorKind::Invalid,
            key: "session_filestore_path".into(),
            value: root.display().to_string(),
            expected: format!("a directory this process can create and write ({reason})"),
        };
        create_private_dir(&root).map_err(|e| config_error(format!("cannot create it: {e}")))?;
        let owner =
            probe_writable(&root).map_err(|e| config_error(format!("cannot write in it: {e}")))?;
        #[cfg(unix)]
        refuse_shared(&root, owner).map_err(|why| ConfigError {
            kind: crate::config::ConfigErrorKind::Invalid,
            key: "session_filestore_path".into(),
            value: root.display().to_string(),
            expected: format!(
                "a directory no other local user can replace or write into ({why}): set session_filestore_path to a private directory, or fix the owner and mode"
            ),
        })?;
        #[cfg(not(unix))]
        let _ = owner;
        // Keep the path that was checked: a symlink in the configured path that is re-pointed
        // later must not move the store somewhere unchecked.
        let root = fs::canonicalize(&root).unwrap_or(root);
        Ok(Self {
            dir: Arc::new(Dir {
                root,
                fsync: true,
                lock_timeout: DEFAULT_LOCK_TIMEOUT,
                max_session_size: None,
            }),
            index_key: None,
            cleanup_interval: Some(DEFAULT_CLEANUP_INTERVAL),
            sweeper: Running::default(),
            alive: Arc::new(()),
        })
    }

    /// Whether each write is flushed to disk (`fsync`) before it becomes visible, and each
    /// removal that ends a session (a logout) after it is made (default: true). Turning it off
    /// is faster; after a power loss a session may then read as corrupt, or a logged-out
    /// session come back.
    pub fn with_fsync(mut self, fsync: bool) -> Self {
        Arc::make_mut(&mut self.dir).fsync = fsync;
        self
    }

    /// The most bytes one session may hold (`session_redis_max_session_size`, which
    /// [`SessionStore::from_config`](crate::SessionStore::from_config) passes on; `None` or
    /// 0: no limit, the default). The store reads no session file larger than the most a
    /// session of that size takes on disk (8 bytes per byte, plus 256) and writes none
    /// either: a larger file is corrupt, and is not read, so that a huge file (a disk error,
    /// an operator's mistake, a local user's write) cannot make a load allocate its size. The
    /// limit itself is the [`SessionStore`](crate::SessionStore)'s to check
    /// ([`SessionStore::with_max_session_size`](crate::SessionStore::with_max_session_size)).
    pub fn with_max_session_size(mut self, limit: Option<usize>) -> Self {
        Arc::make_mut(&mut self.dir).max_session_size = limit.filter(|l| *l > 0);
        self
    }

    /// The longest an operation waits for a shard lock that another thread or process holds
    /// (default [`DEFAULT_LOCK_TIMEOUT`]); past it, the operation fails as unavailable.
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        Arc::make_mut(&mut self.dir).lock_timeout = timeout;
        self
    }

    /// How often the background task removes expired sessions (default:
    /// [`DEFAULT_CLEANUP_INTERVAL`]); `None` disables the task, for deployments that call
    /// [`cleanup`](Self::cleanup) themselves (from a cron job, for example).
    pub fn with_cleanup_interval(mut self, interval: Option<Duration>) -> Self {
        self.cleanup_interval = interval.filter(|every| !every.is_zero());
        self
    }

    /// Keeps an index of sessions by the value of the session key `key`, in `<root>/.index`
    /// (see [`crate::index`] and
    /// [`SessionStore::find_indexed`](crate::SessionStore::find_indexed)).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use session_core::{backends::file::FileBackend, SessionState, SessionStore};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let files = FileBackend::new(dir.path().join("sessions")).unwrap().with_index_key("user");
    /// let store = SessionStore::new(files);
    /// let alice = SessionState::from([("user".to_owned(), "\"alice\"".to_owned())]);
    /// let id = store.create(&alice, None).await.unwrap();
    /// assert_eq!(store.delete_indexed("\"alice\"").await.unwrap(), 1);
    /// assert_eq!(store.load(&id).await.unwrap(), None);
    /// # });
    /// ```
    pub fn with_index_key(mut self, key: impl Into<String>) -> Self {
        self.index_key = Some(key.into());
        self
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.dir.root
    }

    /// Takes the lock that one start-up migration of this store holds at a time
    /// ([`crate::migration`]): the exclusive `flock` of [`MIGRATION_LOCK`] in the root, taken
    /// as the shard locks are, waiting at most `timeout`; released when the returned file
    /// is dropped (or the process ends).
    pub(crate) async fn migration_lock(&self, timeout: Duration) -> Result<File, StoreError> {
        let path = self.dir.root.join(MIGRATION_LOCK);
        blocking(
            move || match lock_file(&path, timeout, "the migration lock")? {
                Some(file) => Ok(file),
                None => Err(unavailable(
                    "opening the migration lock file",
                    io::ErrorKind::NotFound.into(),
                )),
            },
        )
        .await
    }

    /// Removes expired session files and stale temp files now. Safe to run from several
    /// processes at once and while the store is in use.
    pub async fn cleanup(&self) -> Result<CleanupReport, StoreError> {
        let dir = self.dir.clone();
        blocking(move || dir.cleanup()).await
    }

    /// A walk over the ids of every session file, live or not, a batch at a time, holding
    /// no more than a batch: for [migration](crate::migration) into another backend and for
    /// `sessionctl`. Files whose name is not a session id, or that are not in their id's
    /// shard directory (where the store never looks for them), are skipped and counted
    /// ([`SessionWalk::unrecognised`]). See [`SessionWalk`] for the order of the ids and
    /// for files created or removed during the walk.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use session_core::{backends::file::FileBackend, SessionBackend, SessionId};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let files = FileBackend::new(dir.path().to_path_buf()).unwrap();
    /// let id = SessionId::generate();
    /// files.create(&id, &[("n".into(), "1".into())].into(), None).await.unwrap();
    ///
    /// let mut walk = files.walk();
    /// let mut found = 0;
    /// while let Some(ids) = walk.next_batch(1000).await.unwrap() {
    ///     found += ids.len();
    /// }
    /// assert_eq!((found, walk.unrecognised()), (1, 0));
    /// # });
    /// ```
    pub fn walk(&self) -> SessionWalk {
        SessionWalk {
            walk: Some(Box::new(ShardWalk::new(self.dir.root.clone()))),
            unrecognised: 0,
            shards: 0,
            shards_walked: 0,
        }
    }

    /// The ids of every session file, as [`walk`](Self::walk) hands them out, in one
    /// vector: **every id in memory at once** (about 100 bytes each, 1 GB per 10 million
    /// session files). For tests and small stores; anything that may meet a large store
    /// walks it a batch at a time with [`walk`](Self::walk), as the migration and
    /// `sessionctl` do.
    pub async fn session_ids(&self) -> Result<Vec<SessionId>, StoreError> {
        let mut walk = self.walk();
        let mut ids = Vec::new();
        while let Some(batch) = walk.next_batch(crate::mover::DEFAULT_BATCH).await? {
            ids.extend(batch);
        }
        Ok(ids)
    }

    /// Starts the background sweeper the first time an operation runs inside a tokio runtime,
    /// and again at the first operation after the one running is gone: it runs on that
    /// operation's runtime, which may shut down before the backend does (a start-up check in
    /// a runtime of its own, an actix-web worker, with its own runtime, restarted after a
    /// panic), and expired sessions never accessed again would otherwise stay for good.
    /// One atomic load on the hot path.
    fn ensure_sweeper(&self) {
        let Some(every) = self.cleanup_interval else {
            return;
        };
        if !self.sweeper.none() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if !self.sweeper.start(1) {
            return;
        }
        let dir = self.dir.clone();
        let alive: Weak<()> = Arc::downgrade(&self.alive);
        let running = self.sweeper.guard();
        runtime.spawn(async move {
            let _running = running;
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if alive.strong_count() == 0 {
                    break;
                }
                let dir = dir.clone();
                match blocking(move || dir.cleanup()).await {
                    Ok(report) => {
                        if report.expired_removed + report.temp_removed + report.markers_removed > 0
                        {
                            tracing::debug!(
                                expired_removed = report.expired_removed,
                                temp_removed = report.temp_removed,
                                markers_removed = report.markers_removed,
                                "file session store swept"
                            );
                        }
                    }
                    Err(err) => tracing::warn!(error = %err, "file session store sweep failed"),
                }
            }
        });
    }

    async fn run<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Dir) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.ensure_sweeper();
        let dir = self.dir.clone();
        blocking(move || op(&dir)).await
    }

    /// Runs `op` on the items of each shard (an item's id by `id_of`) under one lock: one
    /// blocking task per shard, shards concurrently. A batch that took the lock once per
    /// item, many at a time, would mostly wait for it. One answer per item, in order.
    async fn per_shard<T: Clone + Send + 'static, R: Send + 'static>(
        &self,
        items: &[T],
        id_of: fn(&T) -> &SessionId,
        op: ShardOp<T, R>,
    ) -> Vec<Result<R, StoreError>> {
        let mut shards: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
        for (position, item) in items.iter().enumerate() {
            shards
                .entry(&id_of(item).as_str()[..2])
                .or_default()
                .push(position);
        }
        let groups: Vec<Vec<usize>> = shards.into_values().collect();
        let answers = crate::backend::in_order(&groups, |positions| {
            let batch: Vec<T> = positions.iter().map(|&p| items[p].clone()).collect();
            let n = batch.len();
            Box::pin(async move {
                self.run(move |dir| Ok(op(dir, &batch)))
                    .await
                    .unwrap_or_else(|err| (0..n).map(|_| Err(err.clone())).collect())
            })
        })
        .await;
        crate::backend::scatter(items.len(), &groups, answers)
    }
}

/// A walk over the session files of a store, a batch at a time
/// ([`FileBackend::walk`]). It holds no id but the batch it is making, and at most 64 open
/// shard directories (a file descriptor and the C library's buffer, about 32 KiB, each):
/// its memory does not grow with the number of sessions. Listing the whole store first
/// cost about 1 GB per 10 million session files.
///
/// Each shard directory is read once, and a session file counts only in its id's shard,
/// so the walk hands out no id twice (unless the file system's `readdir` names one file
/// twice, which POSIX leaves open for a directory changed during the read: a second move
/// of a session then finds its file gone and reads as absent, and the mover answers an id
/// given twice in one call once). A session file created or removed during the walk may
/// be seen or missed, as a key during a Redis `SCAN`: one missed stays in its file for the
/// next run, one seen and gone since reads as absent.
///
/// The ids come round-robin over those 64 shards read side by side, a shard that ends
/// giving its turn to the next: any run of 64 consecutive ids (the loads and deletes a
/// batch has in flight at once, [`BATCH_WINDOW`](crate::backend::BATCH_WINDOW)) is spread
/// over as many shard directories, and waits for no shard lock, ours or the
/// kernel's on one directory. The whole store listed first spread them over every shard;
/// a batch of a thousand ids over 64 shards takes one lock per shard for about 16 deletes.
pub struct SessionWalk {
    /// `None` once a batch failed (or its blocking task was lost): the walk cannot say
    /// where it was, and a walk that then answered "done" would end a migration with
    /// sessions left behind as if complete.
    walk: Option<Box<ShardWalk>>,
    unrecognised: usize,
    shards: usize,
    shards_walked: usize,
}

impl std::fmt::Debug for SessionWalk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionWalk")
            .field("unrecognised", &self.unrecognised)
            .field("shards", &self.shards)
            .field("shards_walked", &self.shards_walked)
            .field("failed", &self.walk.is_none())
            .finish()
    }
}

impl SessionWalk {
    /// The next ids of the walk, at most `max` (at least 1), never an empty batch; `None`
    /// once every session file was handed out (and again after that). After an error the
    /// walk is over: every later call fails too; start a new one.
    pub async fn next_batch(&mut self, max: usize) -> Result<Option<Vec<SessionId>>, StoreError> {
        let Some(mut walk) = self.walk.take() else {
            return Err(StoreError::Unavailable {
                backend: BACKEND.into(),
                timed_out: false,
                message: "the walk of the session directory stopped at an earlier error".into(),
            });
        };
        let (walk, batch) = blocking(move || {
            let batch = walk.next(max);
            Ok((walk, batch))
        })
        .await?;
        let batch = batch?;
        self.unrecognised = walk.unrecognised;
        self.shards = walk.shards_found;
        self.shards_walked = walk.shards_walked;
        self.walk = Some(walk);
        Ok(batch)
    }

    /// Entries of the directory walked so far that are neither a session file where the
    /// store keeps it nor one of the store's own (shards, lock, temp and probe files, the
    /// index): a session file in another shard than its id's, another name. Exact once
    /// the walk has ended.
    pub fn unrecognised(&self) -> usize {
        self.unrecognised
    }

    /// The shard directories the walk found in the root (0 before the first batch); with
    /// [`shards_walked`](Self::shards_walked), how far it is: ids are random, so each shard
    /// holds about as many sessions as any other.
    pub fn shards(&self) -> usize {
        self.shards
    }

    /// The shard directories read to their end so far.
    pub fn shards_walked(&self) -> usize {
        self.shards_walked
    }
}

/// The blocking part of a [`SessionWalk`].
struct ShardWalk {
    root: PathBuf,
    /// The shard directories not opened yet; `None` until the root is listed (at the first
    /// batch). Two-character names only, so at most a few thousand.
    waiting: Option<std::vec::IntoIter<String>>,
    /// The shards being read, taken in turn.
    lanes: Vec<Lane>,
    /// Whose turn it is in `lanes`.
    turn: usize,
    unrecognised: usize,
    shards_found: usize,
    shards_walked: usize,
    /// The most ids the walk held at once, for the tests.
    #[cfg(test)]
    most_held: usize,
}

/// One shard directory being read.
struct Lane {
    name: String,
    entries: fs::ReadDir,
}

impl ShardWalk {
    fn new(root: PathBuf) -> Self {
        Self {
            root,
            waiting: None,
            lanes: Vec::with_capacity(WALK_SHARDS),
            turn: 0,
            unrecognised: 0,
            shards_found: 0,
            shards_walked: 0,
            #[cfg(test)]
            most_held: 0,
        }
    }

    fn next(&mut self, max: usize) -> Result<Option<Vec<SessionId>>, StoreError> {
        if self.waiting.is_none() {
            self.list_root()?;
        }
        let max = max.max(1);
        let mut batch = Vec::with_capacity(max.min(crate::mover::DEFAULT_BATCH));
        while batch.len() < max {
            if self.lanes.is_empty() {
                break;
            }
            if self.turn >= self.lanes.len() {
                self.turn = 0;
            }
            match self.lanes[self.turn].next_id(&mut self.unrecognised)? {
                Some(id) => {
                    batch.push(id);
                    self.turn += 1;
                    #[cfg(test)]
                    {
                        self.most_held = self.most_held.max(batch.len());
                    }
                }
                None => {
                    self.shards_walked += 1;
                    // The next shard takes the ended one's turn, so the lanes stay as many
                    // (and as spread) until no shard waits.
                    match self.open_next()? {
                        Some(lane) => self.lanes[self.turn] = lane,
                        None => {
                            self.lanes.remove(self.turn);
                        }
                    }
                }
            }
        }
        Ok((!batch.is_empty()).then_some(batch))
    }

    /// Takes the shard names from the root, and counts the entries there that are not
    /// the store's.
    fn list_root(&mut self) -> Result<(), StoreError> {
        let listing = |e| unavailable("listing the session directory", e);
        let mut shards = Vec::new();
        for entry in fs::read_dir(&self.root).map_err(listing)? {
            let entry = entry.map_err(listing)?;
            match shard_name(&entry) {
                Some(name) => shards.push(name),
                None => {
                    let name = entry.file_name();
                    let ours = name == INDEX_DIR
                        || name == MIGRATION_LOCK
                        || name.to_str().is_some_and(|n| n.starts_with(PROBE_PREFIX));
                    self.unrecognised += usize::from(!ours);
                }
            }
        }
        // In name order: two walks of one store go the same way.
        shards.sort_unstable();
        self.shards_found = shards.len();
        self.waiting = Some(shards.into_iter());
        self.open_lanes()
    }

    fn open_lanes(&mut self) -> Result<(), StoreError> {
        while self.lanes.len() < WALK_SHARDS {
            match self.open_next()? {
                Some(lane) => self.lanes.push(lane),
                None => break,
            }
        }
        Ok(())
    }

    /// The next waiting shard that is still there.
    fn open_next(&mut self) -> Result<Option<Lane>, StoreError> {
        let Some(waiting) = self.waiting.as_mut() else {
            return Ok(None);
        };
        for name in waiting.by_ref() {
            match fs::read_dir(self.root.join(&name)) {
                Ok(entries) => return Ok(Some(Lane { name, entries })),
                // Gone since the root was listed: nothing in it to walk.
                Err(e) if e.kind() == io::ErrorKind::NotFound => self.shards_walked += 1,
                Err(e) => return Err(unavailable("listing a shard directory", e)),
            }
        }
        Ok(None)
    }
}

impl Lane {
    /// The next session file of the shard, counting what else it holds that is not the
    /// store's into `unrecognised`; `None` at its end.
    fn next_id(&mut self, unrecognised: &mut usize) -> Result<Option<SessionId>, StoreError> {
        for entry in self.entries.by_ref() {
            let entry = entry.map_err(|e| unavailable("listing a shard directory", e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                *unrecognised += 1;
                continue;
            };
            if name == LOCK_FILE || name.starts_with(TEMP_PREFIX) {
                continue;
            }
            // A logout's marker, in its id's shard only: one elsewhere, or another name
            // ending as one does, is no entry of the store (counted below).
            if marker_in(&self.name, name).is_some() {
                continue;
            }
            // A file named like a session file in another shard than its id's is no
            // session: the store never reads it there (its id read as absent, and every
            // migration counted it as expired, every run).
            match session_in(&self.name, name) {
                Some(id) => return Ok(Some(id)),
                None => *unrecognised += 1,
            }
        }
        Ok(None)
    }
}

async fn blocking<T: Send + 'static>(
    op: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::task::spawn_blocking(op).await {
        Ok(result) => result,
        Err(err) => Err(StoreError::Unavailable {
            backend: BACKEND.into(),
            timed_out: false,
            message: format!("file store task failed: {err}"),
        }),
    }
}

#[async_trait]
impl SessionBackend for FileBackend {
    async fn load_with_ttl(
        &self,
        id: &SessionId,
    ) -> Result<Option<(SessionState, Option<Duration>)>, StoreError> {
        let id = id.clone();
        self.run(move |dir| {
            let now = now_ms();
            Ok(dir.read(&id)?.filter(|r| r.is_live(now)).map(|record| {
                let ttl = record
                    .expires_at_ms
                    .map(|at| Duration::from_millis(at.saturating_sub(now)));
                (record.state, ttl)
            }))
        })
        .await
    }

    async fn load(
        &self,
        id: &SessionId,
        touch: Option<Duration>,
    ) -> Result<Option<SessionState>, StoreError> {
        let id = id.clone();
        self.run(move |dir| {
            match dir.read(&id)? {
                None => return Ok(None),
                Some(record) if !record.is_live(now_ms()) => {
                    forget_expired(dir.remove_if_expired(&id));
                    return Ok(None);
                }
                Some(record) if touch.is_none() => return Ok(Some(record.state)),
                Some(_) => {}
            }
            let record = dir.update(&id, |record| record.expires_at_ms = deadline(touch))?;
            Ok(record.map(|record| record.state))
        })
        .await
    }

    async fn create(
        &self,
        id: &SessionId,
        state: &SessionState,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        refuse_unless_json(BACKEND, state)?;
        let entry = entry_of_state(self.index_key(), state);
        let (id, state) = (id.clone(), state.clone());
        self.run(move |dir| {
            dir.index_add_first(entry.as_ref(), &id)?;
            dir.create(&id, state, ttl)
        })
        .await
    }

    async fn replace(
        &self,
        id: &SessionId,
        state: &SessionState,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        refuse_unless_json(BACKEND, state)?;
        let entry = entry_of_state(self.index_key(), state);
        let (id, state) = (id.clone(), state.clone());
        self.run(move |dir| {
            dir.index_add_first(entry.as_ref(), &id)?;
            let updated = dir.update(&id, |record| {
                record.state = state;
                record.expires_at_ms = deadline(ttl);
            })?;
            Ok(updated.is_some())
        })
        .await
    }

    async fn apply(
        &self,
        id: &SessionId,
        changes: &Changes,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        refuse_unless_json(BACKEND, &changes.set)?;
        let entry = entry_of_changes(self.index_key(), changes);
        let (id, changes) = (id.clone(), changes.clone());
        self.run(move |dir| {
            dir.index_add_first(entry.as_ref(), &id)?;
            let updated = dir.update(&id, |record| {
                changes.apply_to(&mut record.state);
                if ttl.is_some() {
                    record.expires_at_ms = deadline(ttl);
                }
            })?;
            Ok(updated.is_some())
        })
        .await
    }

    async fn touch(&self, id: &SessionId, ttl: Option<Duration>) -> Result<bool, StoreError> {
        let id = id.clone();
        self.run(move |dir| {
            let updated = dir.update(&id, |record| record.expires_at_ms = deadline(ttl))?;
            Ok(updated.is_some())
        })
        .await
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        let id = id.clone();
        self.run(move |dir| dir.delete(&id)).await
    }

    async fn delete_many(&self, ids: &[SessionId]) -> Vec<Result<bool, StoreError>> {
        self.per_shard(ids, |id| id, Dir::delete_in_shard).await
    }

    /// Leaves a marker in each retired session's place (module docs, "Markers").
    async fn retire_many(&self, moves: &[(SessionId, u64)]) -> Vec<Result<Retired, StoreError>> {
        self.per_shard(moves, |(id, _)| id, Dir::retire_in_shard)
            .await
    }

    fn index_key(&self) -> Option<&str> {
        self.index_key.as_deref()
    }

    async fn index_add(&self, index: &IndexName, id: &SessionId) -> Result<(), StoreError> {
        let (index, id) = (index.clone(), id.clone());
        self.run(move |dir| dir.index_add(&index, &id)).await
    }

    async fn index_members(
        &self,
        index: &IndexName,
        oldest: Option<usize>,
    ) -> Result<Vec<IndexMember>, StoreError> {
        let index = index.clone();
        let mut members = self.run(move |dir| dir.index_members(&index)).await?;
        crate::backend::keep_oldest(&mut members, oldest);
        Ok(members)
    }

    async fn index_remove(
        &self,
        index: &IndexName,
        members: &[IndexMember],
    ) -> Result<(), StoreError> {
        let (index, members) = (index.clone(), members.to_vec());
        self.run(move |dir| dir.index_remove(&index, &members))
            .await
    }

    async fn health(&self) -> Vec<BackendHealth> {
        let dir = self.dir.clone();
        let result = blocking(move || probe_writable(&dir.root).map_err(|e| unavailable("", e)))
            .await
            .map_err(|err| match err {
                StoreError::Unavailable { message, .. } => message,
                other => other.to_string(),
            });
        vec![BackendHealth {
            name: BACKEND.into(),
            location: self.dir.root.display().to_string(),
            up: result.is_ok(),
            error: result.err(),
        }]
    }

    fn place(&self, id: &SessionId) -> Option<String> {
        // The root is canonical (`new`): two spellings of one directory are one place.
        Some(format!("files:{}#{}", self.dir.root.display(), id.as_str()))
    }

    fn name(&self) -> &str {
        BACKEND
    }
}

/// The stamp an index name's file holds. One that cannot be read (never written by us: the
/// writes are atomic) counts as added at time 0, so that it can be dropped as stale: a name
/// is only ever dropped when its session does not hold the value.
/// The stamp in an index member's file; `None` when it is gone, or is not a file the store
/// wrote (a FIFO there blocked the reader, as for session files: [`read_store_file`]).
fn read_stamp(path: &Path) -> io::Result<Option<u64>> {
    Ok(match read_store_file(path, MAX_STAMP_BYTES, None)? {
        StoreFile::Bytes(bytes) => Some(stamp_of(&String::from_utf8_lossy(&bytes))),
        StoreFile::Missing | StoreFile::Foreign(_) => None,
    })
}

fn stamp_of(text: &str) -> u64 {
    text.trim().parse().unwrap_or(0)
}

/// One stored session, as written to disk (see the module docs for the format).
#[derive(Serialize, Deserialize)]
struct Record {
    version: u32,
    expires_at_ms: Option<u64>,
    state: SessionState,
}

impl Record {
    fn is_live(&self, now_ms: u64) -> bool {
        is_live(self.expires_at_ms, now_ms)
    }
}

/// The directory and the blocking operations on it.
#[derive(Clone)]
struct Dir {
    root: PathBuf,
    fsync: bool,
    /// The longest wait for a shard lock (see [`DEFAULT_LOCK_TIMEOUT`]).
    lock_timeout: Duration,
    /// [`FileBackend::with_max_session_size`].
    max_session_size: Option<usize>,
}

/// What was found at a session's path, under the shard lock.
enum Found {
    Absent,
    Expired,
    Live(Record),
}

impl Dir {
    /// The largest session file this store writes and reads.
    fn max_file_bytes(&self) -> u64 {
        max_file_bytes(self.max_session_size)
    }

    fn shard(&self, id: &SessionId) -> PathBuf {
        self.root.join(&id.as_str()[..2])
    }

    fn path(&self, id: &SessionId) -> PathBuf {
        self.shard(id)
            .join(format!("{}{SESSION_SUFFIX}", id.as_str()))
    }

    /// Locks the shard of `id` until the returned file is dropped. `None` when the shard
    /// directory does not exist (so no session in it does either).
    fn lock(&self, shard: &Path) -> Result<Option<File>, StoreError> {
        lock_file(&shard.join(LOCK_FILE), self.lock_timeout, "a shard lock")
    }

    /// Reads and checks a session file. `None` when there is none.
    fn read(&self, id: &SessionId) -> Result<Option<Record>, StoreError> {
        read_record(&self.path(id), self.max_file_bytes())
    }

    fn read_locked(&self, id: &SessionId) -> Result<Found, StoreError> {
        Ok(match self.read(id)? {
            None => Found::Absent,
            Some(record) if record.is_live(now_ms()) => Found::Live(record),
            Some(_) => Found::Expired,
        })
    }

    fn create(
        &self,
        id: &SessionId,
        state: SessionState,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        let shard = self.shard(id);
        if !shard.is_dir() {
            create_private_dir(&shard).map_err(|e| unavailable("creating a shard directory", e))?;
        }
        let Some(_lock) = self.lock(&shard)? else {
            return Err(unavailable(
                "opening a shard lock file",
                io::Error::new(io::ErrorKind::NotFound, "shard directory vanished"),
            ));
        };
        // A corrupt file counts as taken: create never overwrites, the store tries another id.
        match self.read_locked(id) {
            Ok(Found::Live(_)) | Err(StoreError::Corrupt { .. }) => return Ok(false),
            Ok(Found::Absent | Found::Expired) => {}
            Err(other) => return Err(other),
        }
        self.write(
            &shard,
            id,
            &Record {
                version: FORMAT_VERSION,
                expires_at_ms: deadline(ttl),
                state,
            },
        )?;
        Ok(true)
    }

    /// The read-modify-write under the shard lock shared by replace, apply, touch and load with
    /// a touch. Returns the record as written, or `None` (writing nothing) when the session is
    /// absent or expired. A record left empty is deleted.
    fn update(
        &self,
        id: &SessionId,
        change: impl FnOnce(&mut Record),
    ) -> Result<Option<Record>, StoreError> {
        let path = self.path(id);
        // Absent sessions never come back except through create, so this unlocked check only
        // spares the lock for requests carrying a stale cookie.
        if !exists(&path)? {
            return Ok(None);
        }
        let shard = self.shard(id);
        let Some(_lock) = self.lock(&shard)? else {
            return Ok(None);
        };
        let mut record = match self.read_locked(id)? {
            Found::Absent => return Ok(None),
            Found::Expired => {
                forget_expired(remove_file(&path));
                return Ok(None);
            }
            Found::Live(record) => record,
        };
        change(&mut record);
        if record.state.is_empty() {
            // The session ends here as with a logout, and must not come back either.
            if remove_file(&path)? {
                self.sync_removal(&shard)?;
            }
        } else {
            self.write(&shard, id, &record)?;
        }
        Ok(Some(record))
    }

    fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        self.delete_with(id, Markers::Remove)
    }

    /// [`delete`](Self::delete), leaving a marker of `id` alone with [`Markers::Keep`].
    fn delete_with(&self, id: &SessionId, markers: Markers) -> Result<bool, StoreError> {
        let path = self.path(id);
        let removing = markers == Markers::Remove;
        let something_there = exists(&path)? || (removing && is_named(&self.marker_path(id)));
        if !something_there {
            return Ok(false);
        }
        let shard = self.shard(id);
        let Some(_lock) = self.lock(&shard)? else {
            return Ok(false);
        };
        let existed = self.delete_locked(id)?;
        if removing {
            self.remove_marker(id);
        }
        if existed {
            self.sync_removal(&shard)?;
        }
        Ok(existed)
    }

    /// Deletes sessions that are all in one shard, under one lock: a batch that deleted them
    /// one by one, many at a time, would mostly wait for that lock. The shard directory is
    /// flushed once for the whole batch, not once per file.
    fn delete_in_shard(&self, ids: &[SessionId]) -> Vec<Result<bool, StoreError>> {
        let Some(first) = ids.first() else {
            return Vec::new();
        };
        let shard = self.shard(first);
        let _lock = match self.lock(&shard) {
            Ok(Some(lock)) => lock,
            Ok(None) => return ids.iter().map(|_| Ok(false)).collect(),
            Err(err) => return ids.iter().map(|_| Err(err.clone())).collect(),
        };
        let mut answers: Vec<_> = ids
            .iter()
            .map(|id| {
                let deleted = self.delete_locked(id);
                self.remove_marker(id);
                deleted
            })
            .collect();
        if answers.iter().any(|answer| matches!(answer, Ok(true))) {
            if let Err(err) = self.sync_removal(&shard) {
                // A logout that may not survive a power loss is not reported as made.
                for answer in &mut answers {
                    if matches!(answer, Ok(true)) {
                        *answer = Err(err.clone());
                    }
                }
            }
        }
        answers
    }

    /// Makes the removals of session files just made in `shard` survive a power loss (unless
    /// `with_fsync(false)`): without it a logout could be undone by one, the directory entry
    /// coming back with the file. Called only after a removal that ended a live (or corrupt)
    /// session: an expired file that comes back is still expired.
    fn sync_removal(&self, shard: &Path) -> Result<(), StoreError> {
        if !self.fsync {
            return Ok(());
        }
        sync_dir(shard).map_err(|e| unavailable("flushing a session file's removal to disk", e))
    }

    /// [`delete`](Self::delete) with the shard lock held, the shard directory not flushed
    /// (the caller flushes it: [`sync_removal`](Self::sync_removal)).
    fn delete_locked(&self, id: &SessionId) -> Result<bool, StoreError> {
        let Some(ends_a_session) = self.file_to_remove(id)? else {
            return Ok(false);
        };
        remove_file(&self.path(id))?;
        Ok(ends_a_session)
    }

    /// With the shard lock held: whether a file of `id` is there for a delete or a retire
    /// to remove (`None`: none), and whether removing it ends a session (`true`: live, or
    /// corrupt, since a delete is how a logout gets rid of one) or only an expired file.
    fn file_to_remove(&self, id: &SessionId) -> Result<Option<bool>, StoreError> {
        match self.read_locked(id) {
            Ok(Found::Absent) => Ok(None),
            Ok(Found::Expired) => Ok(Some(false)),
            Ok(Found::Live(_)) | Err(StoreError::Corrupt { .. }) => Ok(Some(true)),
            Err(other) => Err(other),
        }
    }

    /// Retires sessions that are all in one shard, under one lock (module docs,
    /// "Markers"); the shard directory is flushed once when a session file went. An id
    /// with neither a session file nor a marker answers `Absent` before the lock is taken,
    /// as a delete does: a retire finding nothing there writes nothing.
    fn retire_in_shard(&self, moves: &[(SessionId, u64)]) -> Vec<Result<Retired, StoreError>> {
        let Some((first, _)) = moves.first() else {
            return Vec::new();
        };
        let something_there = |id: &SessionId| {
            Ok::<_, StoreError>(exists(&self.path(id))? || is_named(&self.marker_path(id)))
        };
        let mut answers: Vec<Option<Result<Retired, StoreError>>> = moves
            .iter()
            .map(|(id, _)| match something_there(id) {
                Ok(true) => None,
                Ok(false) => Some(Ok(Retired::Absent)),
                Err(err) => Some(Err(err)),
            })
            .collect();
        if answers.iter().all(Option::is_some) {
            return answers.into_iter().flatten().collect();
        }
        let shard = self.shard(first);
        let _lock = match self.lock(&shard) {
            Ok(Some(lock)) => lock,
            Ok(None) => return moves.iter().map(|_| Ok(Retired::Absent)).collect(),
            Err(err) => return moves.iter().map(|_| Err(err.clone())).collect(),
        };
        let mut removed = false;
        for ((id, token), answer) in moves.iter().zip(&mut answers) {
            if answer.is_none() {
                *answer = Some(
                    self.retire_locked(&shard, id, *token)
                        .map(|(retired, gone)| {
                            removed |= gone;
                            retired
                        }),
                );
            }
        }
        let mut answers: Vec<_> = answers.into_iter().flatten().collect();
        if removed {
            if let Err(err) = self.sync_removal(&shard) {
                // A retire that may not survive a power loss is not reported as made.
                for answer in &mut answers {
                    if matches!(answer, Ok(Retired::Now)) {
                        *answer = Err(err.clone());
                    }
                }
            }
        }
        answers
    }

    /// One retire with the shard lock held: a session file there (live, or corrupt: a
    /// logout gets rid of it) is removed and the marker of `token` written, `Now`; else
    /// the live marker there answers, `Before` for this token's, `Other` for another's (in
    /// whose place a logout's retire writes its own); else `Absent`. Also answers whether
    /// a session file was removed, for the shard's flush.
    fn retire_locked(
        &self,
        shard: &Path,
        id: &SessionId,
        token: u64,
    ) -> Result<(Retired, bool), StoreError> {
        let now = now_ms();
        let marker = read_marker(&self.marker_path(id))?.filter(|m| m.is_live(now));
        match self.file_to_remove(id)? {
            Some(true) => {
                // The marker first, then the session file: a retire or delete in another
                // process looks for either without the lock ([`retire_in_shard`]), and one
                // that looked in between the two found neither and answered `Absent` without
                // waiting (a renew racing a logout during a move kept the session).
                self.write_marker(shard, id, token)?;
                remove_file(&self.path(id))?;
                return Ok((Retired::Now, true));
            }
            Some(false) => {
                remove_file(&self.path(id))?;
            }
            None => {}
        }
        let answer = match marker.and_then(|m| m.token) {
            Some(found) if found == token => Retired::Before,
            Some(found) => {
                if token == crate::backend::LOGGED_OUT_TOKEN {
                    self.write_marker(shard, id, token)?;
                }
                Retired::Other(found)
            }
            None => Retired::Absent,
        };
        Ok((answer, false))
    }

    /// Writes the marker of `token` for `id`, ending [`MOVED_MARKER_TTL`](crate::MOVED_MARKER_TTL)
    /// from now, over whatever was there (a temp file renamed into place, as a session
    /// file is written; not flushed: a marker lost in a power loss reopens a window of a
    /// minute, where a lost session file would lose the session).
    fn write_marker(&self, shard: &Path, id: &SessionId, token: u64) -> Result<(), StoreError> {
        let end = now_ms().saturating_add(crate::ttl::millis(crate::MOVED_MARKER_TTL));
        let mut temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempfile_in(shard)
            .map_err(|e| unavailable("creating a temp file", e))?;
        temp.write_all(format!("{end} {token:016x}").as_bytes())
            .map_err(|e| unavailable("writing a temp file", e))?;
        #[cfg(test)]
        tests::marker_write_hook();
        temp.persist(self.marker_path(id))
            .map_err(|e| unavailable("renaming a temp file over a marker", e.error))?;
        Ok(())
    }

    /// Removes the marker of `id`, if any, with its session (a plain delete, as Redis'
    /// removes a marker with the key). Best effort: one that cannot be removed (a
    /// directory of that name, never the store's) is no session, and must not fail a
    /// logout.
    fn remove_marker(&self, id: &SessionId) {
        let marker = self.marker_path(id);
        if is_named(&marker) {
            if let Err(err) = remove_file(&marker) {
                tracing::debug!(error = %err, "file session store: could not remove a marker");
            }
        }
    }

    fn marker_path(&self, id: &SessionId) -> PathBuf {
        self.shard(id)
            .join(format!("{}{MARKER_SUFFIX}", id.as_str()))
    }

    /// Removes the logout's marker of `id` if, under the lock, it is still past its end.
    fn remove_marker_if_ended(&self, id: &SessionId) -> Result<bool, StoreError> {
        let Some(_lock) = self.lock(&self.shard(id))? else {
            return Ok(false);
        };
        let marker = self.marker_path(id);
        match read_marker(&marker)? {
            Some(found) if !found.is_live(now_ms()) => remove_file(&marker),
            _ => Ok(false),
        }
    }

    /// Removes the file of `id` if, under the lock, it is still there and expired.
    fn remove_if_expired(&self, id: &SessionId) -> Result<bool, StoreError> {
        let Some(_lock) = self.lock(&self.shard(id))? else {
            return Ok(false);
        };
        match self.read_locked(id)? {
            Found::Expired => remove_file(&self.path(id)),
            Found::Absent | Found::Live(_) => Ok(false),
        }
    }

    /// Writes `record` to a temp file in the shard and renames it over the session's file.
    /// The caller holds the shard lock.
    fn write(&self, shard: &Path, id: &SessionId, record: &Record) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(record).map_err(|e| StoreError::Unavailable {
            backend: BACKEND.into(),
            timed_out: false,
            message: format!("encoding a session file: {e}"),
        })?;
        // Concurrent writes can each pass the store's size check and together exceed it: a
        // file above the bound would read as corrupt, the session lost. Refused instead, as
        // a write of a session too large, the stored one left as it was.
        if bytes.len() as u64 > self.max_file_bytes() {
            let size = record.state.iter().map(|(k, v)| k.len() + v.len()).sum();
            return Err(StoreError::TooLarge {
                size,
                limit: self
                    .max_session_size
                    .unwrap_or(usize::try_from(MAX_FILE_BYTES).unwrap_or(usize::MAX)),
            });
        }
        // tempfile creates the file with mode 0600 and removes it if anything below fails.
        let mut temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempfile_in(shard)
            .map_err(|e| unavailable("creating a temp file", e))?;
        temp.write_all(&bytes)
            .map_err(|e| unavailable("writing a temp file", e))?;
        if self.fsync {
            temp.as_file()
                .sync_data()
                .map_err(|e| unavailable("flushing a temp file to disk", e))?;
        }
        temp.persist(self.path(id))
            .map_err(|e| unavailable("renaming a temp file over a session file", e.error))?;
        Ok(())
    }

    /// The directory of one index entry.
    fn index_entry(&self, index: &IndexName) -> PathBuf {
        self.root.join(INDEX_DIR).join(index.digest())
    }

    /// [`index_add`](Self::index_add) when the write has an entry to add to.
    fn index_add_first(&self, index: Option<&IndexName>, id: &SessionId) -> Result<(), StoreError> {
        match index {
            Some(index) => self.index_add(index, id),
            None => Ok(()),
        }
    }

    /// Locks the index entry directory `dir` until the returned file is dropped. `None` when
    /// the directory does not exist (so the entry holds no name).
    ///
    /// The file locked is checked to be still the one at `<dir>/.lock`: a removal of the
    /// entry ([`remove_entry_if_empty`](Self::remove_entry_if_empty)) unlinks the lock file
    /// while holding it, and a caller that opened it before and waited for it then holds a
    /// lock that excludes no one. It tries again with what is at the path now. Each try
    /// after the first follows a removal that another operation finished, so this does not
    /// spin; still, after [`ENTRY_TRIES`] it gives up with an error rather than loop on
    /// something this reasoning did not foresee.
    fn lock_entry(&self, dir: &Path) -> Result<Option<File>, StoreError> {
        let path = dir.join(LOCK_FILE);
        for _ in 0..ENTRY_TRIES {
            let Some(file) = lock_file(&path, self.lock_timeout, "an index entry lock")? else {
                return Ok(None);
            };
            if is_linked_at(&file, &path)
                .map_err(|e| unavailable("checking an index entry lock file", e))?
            {
                return Ok(Some(file));
            }
        }
        Err(entry_kept_going())
    }

    /// Writes `<entry>/<id>` holding the time now, atomically (a temp file renamed over it),
    /// so that a reader sees an old stamp or the new one, never a partial one. Under the
    /// entry's lock, like every index operation: a removal compares a stamp and removes the
    /// name in one step that no add can slip into, and the entry directory cannot be removed
    /// while the name is written.
    fn index_add(&self, index: &IndexName, id: &SessionId) -> Result<(), StoreError> {
        let dir = self.index_entry(index);
        let failed = |e| unavailable("adding to the session index", e);
        // The entry's last name may go, and the directory with it, between our creating the
        // directory and our taking its lock: then we create it again. The directory going
        // during `create_private_dir` makes it say NotFound (gone after its creation, before
        // its check) or AlreadyExists (there at the `mkdir`, gone at std's `is_dir` check):
        // we try again, unless something else than a directory is in the way.
        let mut tries = 0..ENTRY_TRIES;
        let _locked = loop {
            // A directory in the way that keeps going (a root that is a dangling link makes
            // `create_dir_all` answer AlreadyExists for ever) must not spin a blocking thread.
            if tries.next().is_none() {
                return Err(entry_kept_going());
            }
            match create_private_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    match fs::symlink_metadata(&dir) {
                        Ok(meta) if meta.is_dir() => continue,
                        Err(gone) if gone.kind() == io::ErrorKind::NotFound => continue,
                        _ => return Err(failed(e)),
                    }
                }
                Err(e) => return Err(failed(e)),
            }
            if let Some(locked) = self.lock_entry(&dir)? {
                break locked;
            }
        };
        let mut temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempfile_in(&dir)
            .map_err(failed)?;
        temp.write_all(now_ms().to_string().as_bytes())
            .map_err(failed)?;
        if self.fsync {
            temp.as_file().sync_data().map_err(failed)?;
        }
        temp.persist(dir.join(id.as_str()))
            .map_err(|e| failed(e.error))?;
        Ok(())
    }

    fn index_members(&self, index: &IndexName) -> Result<Vec<IndexMember>, StoreError> {
        let dir = self.index_entry(index);
        let failed = |e| unavailable("reading the session index", e);
        // No entry directory: no name. Locked, so no removal is half done while we read.
        let Some(_locked) = self.lock_entry(&dir)? else {
            return Ok(Vec::new());
        };
        let mut members = Vec::new();
        for entry in fs::read_dir(&dir).map_err(failed)? {
            let entry = entry.map_err(failed)?;
            // The lock file and temp files are not session ids: skipped.
            let Some(id) = entry
                .file_name()
                .to_str()
                .and_then(|name| SessionId::parse(name).ok())
            else {
                continue;
            };
            let added_ms = match read_stamp(&entry.path()) {
                Ok(Some(stamp)) => stamp,
                Ok(None) => continue,
                Err(e) => return Err(failed(e)),
            };
            members.push(IndexMember { id, added_ms });
        }
        Ok(members)
    }

    /// Removes each member whose stamp is unchanged (an add since the caller read it renewed
    /// the stamp, and the name stays), under the entry's lock; then the entry directory, if
    /// no name is left in it. With no members given, only the latter: that removes an entry
    /// left empty by a version that kept emptied entries (`sessionctl prune-index`).
    fn index_remove(&self, index: &IndexName, members: &[IndexMember]) -> Result<(), StoreError> {
        let dir = self.index_entry(index);
        let failed = |e| unavailable("removing from the session index", e);
        let Some(locked) = self.lock_entry(&dir)? else {
            return Ok(());
        };
        for member in members {
            let path = dir.join(member.id.as_str());
            let stamp = match read_stamp(&path) {
                Ok(Some(stamp)) => stamp,
                Ok(None) => continue,
                Err(e) => return Err(failed(e)),
            };
            if stamp == member.added_ms {
                remove_file(&path)?;
            }
        }
        self.remove_entry_if_empty(&dir, locked)
    }

    /// Removes the entry directory `dir` when it holds no name, with its lock (`locked`,
    /// taken through [`lock_entry`](Self::lock_entry)) held until the end. Without this,
    /// every value ever indexed (a user name a client typed) kept a directory for ever.
    ///
    /// Under the lock no add is writing (an add writes holding the lock at `<dir>/.lock`),
    /// so the temp files found were left by crashed adds. They go, then the lock file, then
    /// the directory. An add racing this, in this process or another, either
    ///
    /// * opened the old lock file before the unlink: it waits for our lock, then finds that
    ///   file no longer at the path and starts over, creating the directory again;
    /// * opens `<dir>/.lock` between the unlink and the directory's removal: it creates a new
    ///   lock file there, so the directory is not empty and stays, and the add writes its
    ///   name into it under that new lock;
    /// * comes after the removal: it finds no directory and creates it.
    ///
    /// So no add writes into a directory that is then removed, and none fails because the
    /// directory went. A file that is neither a name, a temp file nor the lock (not ours)
    /// keeps the directory.
    #[cfg(unix)]
    fn remove_entry_if_empty(&self, dir: &Path, locked: File) -> Result<(), StoreError> {
        let failed = |e| unavailable("removing an empty session index entry", e);
        let mut leftovers = Vec::new();
        for entry in fs::read_dir(dir).map_err(failed)? {
            let entry = entry.map_err(failed)?;
            let name = entry.file_name();
            if name == LOCK_FILE {
                continue;
            }
            if name.to_str().is_some_and(|n| n.starts_with(TEMP_PREFIX)) {
                leftovers.push(entry.path());
                continue;
            }
            return Ok(());
        }
        for path in leftovers {
            remove_file(&path)?;
        }
        remove_file(&dir.join(LOCK_FILE))?;
        match fs::remove_dir(dir) {
            Ok(()) => {}
            // An add created a lock file since the unlink (it stays, with its name), or
            // another removal got there first.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::DirectoryNotEmpty | io::ErrorKind::NotFound
                ) => {}
            Err(e) => return Err(failed(e)),
        }
        drop(locked);
        Ok(())
    }

    /// Elsewhere than on unix a lock file cannot be told from one that replaced it (no
    /// inode numbers to compare: [`is_linked_at`]), so the entry directory stays, as it
    /// always did.
    #[cfg(not(unix))]
    fn remove_entry_if_empty(&self, _dir: &Path, _locked: File) -> Result<(), StoreError> {
        Ok(())
    }

    fn cleanup(&self) -> Result<CleanupReport, StoreError> {
        let mut report = CleanupReport::default();
        let shards = match fs::read_dir(&self.root) {
            Ok(shards) => shards,
            Err(e) => return Err(unavailable("listing the session directory", e)),
        };
        for shard in shards {
            let shard = shard.map_err(|e| unavailable("listing the session directory", e))?;
            if shard
                .file_name()
                .to_str()
                .is_some_and(|name| name.starts_with(PROBE_PREFIX))
            {
                if is_stale(&shard) {
                    remove_leftover(&shard.path(), &mut report);
                }
                continue;
            }
            if let Some(name) = shard_name(&shard) {
                self.cleanup_shard(&shard.path(), &name, &mut report)?;
            }
        }
        if report.corrupt_found > 0 {
            tracing::warn!(
                corrupt_found = report.corrupt_found,
                root = %self.root.display(),
                "file session store holds corrupt session files; they are left in place for inspection"
            );
        }
        if report.unreadable > 0 {
            tracing::warn!(
                unreadable = report.unreadable,
                root = %self.root.display(),
                "file session store: the sweep could not read or remove some entries (permissions, I/O errors) and skipped them"
            );
        }
        Ok(report)
    }

    /// One shard's part of a sweep. An entry it cannot read or remove is counted
    /// ([`CleanupReport::unreadable`]) and skipped, so that it does not stop the sweep.
    fn cleanup_shard(
        &self,
        shard: &Path,
        shard_name: &str,
        report: &mut CleanupReport,
    ) -> Result<(), StoreError> {
        let entries = match fs::read_dir(shard) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(_) => {
                report.unreadable += 1;
                return Ok(());
            }
        };
        let now = now_ms();
        for entry in entries {
            let Ok(entry) = entry else {
                report.unreadable += 1;
                continue;
            };
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with(TEMP_PREFIX) {
                if is_stale(&entry) {
                    remove_leftover(&entry.path(), report);
                }
                continue;
            }
            if let Some(id) = marker_in(shard_name, name) {
                match read_marker(&entry.path()) {
                    Ok(Some(found)) if !found.is_live(now) => {
                        match self.remove_marker_if_ended(&id) {
                            Ok(true) => report.markers_removed += 1,
                            Ok(false) => {}
                            Err(_) => report.unreadable += 1,
                        }
                    }
                    Ok(_) => {}
                    Err(_) => report.unreadable += 1,
                }
                continue;
            }
            // A file in another shard than its id's is no session: not read.
            let Some(id) = session_in(shard_name, name) else {
                continue;
            };
            match read_expiry(&entry.path(), self.max_file_bytes()) {
                Ok(Some(expiry)) if !is_live(expiry, now) => match self.remove_if_expired(&id) {
                    Ok(true) => report.expired_removed += 1,
                    Ok(false) => {}
                    // Its header says expired, the rest is damaged: kept, as every corrupt file.
                    Err(StoreError::Corrupt { .. }) => report.corrupt_found += 1,
                    Err(_) => report.unreadable += 1,
                },
                Ok(_) => {}
                Err(StoreError::Corrupt { .. }) => report.corrupt_found += 1,
                Err(_) => report.unreadable += 1,
            }
        }
        Ok(())
    }
}

/// The most bytes a session file is read up to when no session size limit is set: four
/// times the largest session the configuration allows (512 MiB, Redis' limit for one value),
/// for JSON's escapes. A larger file is no session file of ours, and reading it whole could
/// exhaust memory.
const MAX_FILE_BYTES: u64 = 4 * 512 * 1024 * 1024;

/// What a session file holds besides its state's keys and values: the record's fields, the
/// braces, and an `expires_at_ms` of up to 20 digits (61 bytes), rounded up.
const RECORD_OVERHEAD: u64 = 256;

/// How many bytes of the file one byte of a session (of its keys and JSON values, as
/// `session_redis_max_session_size` counts them) takes at most: serde_json escapes a key's
/// control characters as `\u00XX` (6 bytes for 1), a value's only as `\t`, `\n` or `\r`
/// (2 for 1: a value is JSON text, which holds no other raw control character), and each
/// entry adds 6 bytes (`"":"",`) to a value of at least 1 byte: `6k + 2v + 6 <= 8 (k + v)`.
const ENCODED_PER_BYTE: u64 = 8;

/// The largest session file the store writes and reads for sessions of at most `limit`
/// bytes: the most such a session takes on disk, or [`MAX_FILE_BYTES`] without a limit.
fn max_file_bytes(limit: Option<usize>) -> u64 {
    match limit {
        Some(limit) => (limit as u64)
            .saturating_mul(ENCODED_PER_BYTE)
            .saturating_add(RECORD_OVERHEAD),
        None => MAX_FILE_BYTES,
    }
}

/// The most bytes an index member's file is read up to: it holds one Unix time in ms.
const MAX_STAMP_BYTES: u64 = 64;

/// What [`read_store_file`] found.
enum StoreFile {
    Bytes(Vec<u8>),
    Missing,
    /// Not a file the store wrote: why, without the data.
    Foreign(&'static str),
}

/// Why a file too large is no session file (see [`max_file_bytes`]).
const TOO_LARGE: &str =
    "is larger than any session file the store writes (see session_redis_max_session_size)";

/// Reads a file of the store whole, only when it is a regular file (not followed through a
/// link) of at most `max` bytes. `fs::read` opened anything: a FIFO named like a
/// session file blocked its reader for ever (the start-up migration, under its lock; the
/// sweeper), and a link to `/dev/zero` read without end (a review). A FIFO put in place
/// between the check and the open would still block: whoever can write the store's
/// directory owns its sessions anyway. The length is checked before anything is read, and
/// the read stops past `max` too, since the file can grow in between.
///
/// With `head`, only the first `head` bytes are read (or fewer, if the file is shorter),
/// after the same checks.
fn read_store_file(path: &Path, max: u64, head: Option<u64>) -> io::Result<StoreFile> {
    let regular = |meta: &fs::Metadata| {
        if !meta.is_file() {
            Some("is not a regular file (a directory, a link, a FIFO or a device)")
        } else if meta.len() > max {
            Some(TOO_LARGE)
        } else {
            None
        }
    };
    match fs::symlink_metadata(path) {
        Ok(meta) => {
            if let Some(why) = regular(&meta) {
                return Ok(StoreFile::Foreign(why));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(StoreFile::Missing),
        Err(e) => return Err(e),
    }
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(StoreFile::Missing),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if let Some(why) = regular(&meta) {
        return Ok(StoreFile::Foreign(why));
    }
    match head {
        Some(head) => read_capped(io::Read::take(file, head), head, head),
        None => read_capped(file, meta.len(), max),
    }
}

/// Reads `from` whole when it holds at most `max` bytes; `len`, what its metadata said, only
/// sizes the buffer. At most `max + 1` bytes are read, whatever `from` holds by then.
fn read_capped(from: impl io::Read, len: u64, max: u64) -> io::Result<StoreFile> {
    use std::io::Read as _;
    let mut bytes = Vec::with_capacity(usize::try_from(len.min(max)).unwrap_or(0));
    from.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    #[cfg(test)]
    tests::count_read(bytes.len());
    if bytes.len() as u64 > max {
        return Ok(StoreFile::Foreign(TOO_LARGE));
    }
    Ok(StoreFile::Bytes(bytes))
}

/// How every session file the store writes begins (serde writes [`Record`]'s fields in their
/// order, compactly), up to the value of `expires_at_ms`, ...
const HEADER_START: &[u8] = br#"{"version":1,"expires_at_ms":"#;
/// ... and how it goes on after that value.
const HEADER_END: &[u8] = br#","state":{"#;
/// The longest header: the two parts around an expiry of 20 digits (`u64::MAX`).
const HEADER_BYTES: u64 = (HEADER_START.len() + 20 + HEADER_END.len()) as u64;

/// The expiry a session file's header gives (`Some(None)`: no expiry); `None` when `head`
/// does not begin as the store writes a file, which only a full read can tell about.
fn expiry_of_header(head: &[u8]) -> Option<Option<u64>> {
    let rest = head.strip_prefix(HEADER_START)?;
    let value_len = rest.iter().position(|&b| b == b',')?;
    let (value, rest) = rest.split_at(value_len);
    if !rest.starts_with(HEADER_END) {
        return None;
    }
    if value == b"null" {
        return Some(None);
    }
    // Digits as serde_json writes (and reads) them: no sign, no leading zero.
    let canonical = value
        .first()
        .is_some_and(|&first| first != b'0' || value.len() == 1)
        && value.iter().all(u8::is_ascii_digit);
    if !canonical {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok().map(Some)
}

/// The expiry of the session file at `path` (`None` when there is none), for the sweep,
/// from the file's header when it is as the store writes it, else from the whole file
/// ([`read_record`]). A file whose header reads well is not checked further here (the sweep
/// read and parsed every session whole every time): a damage after the header is found by
/// the access that reads it, or, when the header says expired, by the removal, which reads
/// the whole file under the shard lock and removes no corrupt file.
fn read_expiry(path: &Path, max: u64) -> Result<Option<Option<u64>>, StoreError> {
    match read_store_file(path, max, Some(HEADER_BYTES)) {
        Ok(StoreFile::Bytes(head)) => {
            if let Some(expiry) = expiry_of_header(&head) {
                return Ok(Some(expiry));
            }
        }
        Ok(StoreFile::Missing) => return Ok(None),
        Ok(StoreFile::Foreign(why)) => return Err(corrupt(format!("session file {why}"))),
        Err(e) => return Err(unavailable("reading a session file", e)),
    }
    Ok(read_record(path, max)?.map(|record| record.expires_at_ms))
}

/// Whether a session expiring at `expires_at_ms` (`None`: never) is live at `now_ms`.
fn is_live(expires_at_ms: Option<u64>, now_ms: u64) -> bool {
    expires_at_ms.is_none_or(|at| at > now_ms)
}

/// Reads and checks the session file at `path`, of at most `max` bytes ([`max_file_bytes`]).
fn read_record(path: &Path, max: u64) -> Result<Option<Record>, StoreError> {
    let bytes = match read_store_file(path, max, None) {
        Ok(StoreFile::Bytes(bytes)) => bytes,
        Ok(StoreFile::Missing) => return Ok(None),
        Ok(StoreFile::Foreign(why)) => return Err(corrupt(format!("session file {why}"))),
        Err(e) => return Err(unavailable("reading a session file", e)),
    };
    let record: Record = serde_json::from_slice(&bytes).map_err(|e| {
        // serde_json's messages can quote the data, so only its category and position are kept.
        let what = match e.classify() {
            serde_json::error::Category::Data => {
                "does not have the expected shape {\"version\": 1, \"expires_at_ms\": integer or null, \"state\": object of strings}"
            }
            _ => "is not valid JSON",
        };
        corrupt(format!(
            "session file {what} (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    if record.version != FORMAT_VERSION {
        return Err(corrupt(format!(
            "session file has format version {}, expected {FORMAT_VERSION}",
            record.version
        )));
    }
    if record.state.is_empty() {
        return Err(corrupt("session file has no keys in `state`".into()));
    }
    check_values_are_json(&record.state)
        .map_err(|detail| corrupt(format!("session file: {detail}")))?;
    Ok(Some(record))
}

fn create_private_dir(path: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)?;
    if fs::metadata(path)?.is_dir() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::NotADirectory,
            "not a directory",
        ))
    }
}

/// Creates and removes a temp file in `dir`; returns the user id files of this process get
/// (on unix; `None` elsewhere), which is how we learn "who we are" without a libc call.
fn probe_writable(dir: &Path) -> io::Result<Option<u32>> {
    let mut probe = tempfile::Builder::new()
        .prefix(PROBE_PREFIX)
        .tempfile_in(dir)?;
    probe.write_all(b"ok")?;
    #[cfg(unix)]
    let owner = Some(std::os::unix::fs::MetadataExt::uid(
        &probe.as_file().metadata()?,
    ));
    #[cfg(not(unix))]
    let owner = None;
    probe.close()?;
    Ok(owner)
}

/// Refuses a file-store root that another local user could replace or fill with sessions of
/// their own: the root must belong to us and not be writable by others, and every directory
/// above it must belong to us or to root and, when others may write in it, have the sticky
/// bit (as `/tmp` has: there only an entry's owner may rename or remove it). The default path
/// falls back to the temp directory, where another user could otherwise create
/// `rust-web-sessions` first.
#[cfg(unix)]
fn refuse_shared(root: &Path, owner: Option<u32>) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let Some(me) = owner else { return Ok(()) };
    let root = fs::canonicalize(root).map_err(|e| format!("cannot resolve it: {e}"))?;
    let meta = fs::metadata(&root).map_err(|e| e.to_string())?;
    if meta.uid() != me {
        return Err(format!(
            "it belongs to user {}, not to this process's user {me}",
            meta.uid()
        ));
    }
    if meta.mode() & 0o002 != 0 {
        return Err("other users may write in it".into());
    }
    for dir in root.ancestors().skip(1) {
        let meta = fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if meta.uid() != me && meta.uid() != 0 {
            return Err(format!(
                "{} above it belongs to user {}, who could replace it",
                dir.display(),
                meta.uid()
            ));
        }
        if meta.mode() & 0o002 != 0 && meta.mode() & 0o1000 == 0 {
            return Err(format!(
                "{} above it is writable by every user without the sticky bit, so any of them could replace it",
                dir.display()
            ));
        }
    }
    Ok(())
}

/// The outcome of removing the file of a session found expired, for an operation whose
/// answer ("no session") that removal does not change. A failure (the shard lock held by a
/// hung process, a directory gone read-only) failed the operation: a load answered
/// "unavailable" where it knew the answer, while loads of live sessions went on working.
/// The sweep removes the file later; logged without the id.
fn forget_expired(removed: Result<bool, StoreError>) {
    if let Err(err) = removed {
        tracing::debug!(error = %err, "could not remove an expired session file yet; a later access or the sweep will");
    }
}

/// Removes a stale temp or probe file for a sweep, counting it in `report`. One that cannot
/// be removed is counted as unreadable and skipped, like any other entry the sweep cannot
/// handle: its error failed the whole sweep, every time, and expired sessions piled up
/// behind it.
fn remove_leftover(path: &Path, report: &mut CleanupReport) {
    match remove_file(path) {
        Ok(true) => report.temp_removed += 1,
        Ok(false) => {}
        Err(_) => report.unreadable += 1,
    }
}

/// True for a temp file old enough to have been left by a crash rather than being written now.
fn is_stale(entry: &fs::DirEntry) -> bool {
    entry
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|modified| modified.elapsed().ok())
        .is_some_and(|age| age > STALE_TEMP_AGE)
}

fn exists(path: &Path) -> Result<bool, StoreError> {
    path.try_exists()
        .map_err(|e| unavailable("looking up a session file", e))
}

/// Flushes `dir` itself to disk, so that the removal of a name from it survives a power loss
/// (an unlink is a change of the directory, which the file's own `fsync` does not cover).
/// Elsewhere than on unix a directory cannot be opened to flush it: nothing is done.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(test)]
    if let Some(err) = tests::dir_sync_hook(dir) {
        return Err(err);
    }
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

fn remove_file(path: &Path) -> Result<bool, StoreError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(unavailable("removing a session file", e)),
    }
}

/// The name of `entry` of the root when it is a shard directory (a directory of a
/// two-character name).
fn shard_name(entry: &fs::DirEntry) -> Option<String> {
    let name = entry.file_name().into_string().ok()?;
    (name.len() == 2 && entry.file_type().is_ok_and(|t| t.is_dir())).then_some(name)
}

/// The session whose marker `name` is, when it is one and belongs in `shard`.
fn marker_in(shard: &str, name: &str) -> Option<SessionId> {
    id_in(shard, name, MARKER_SUFFIX)
}

/// The most bytes a marker is read up to: it holds one Unix time in ms and a token.
const MAX_MARKER_BYTES: u64 = 64;

/// An operation on the items of one shard, under its lock ([`FileBackend::per_shard`]).
type ShardOp<T, R> = fn(&Dir, &[T]) -> Vec<Result<R, StoreError>>;

/// Whether a delete removes a marker of the id with its session file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Markers {
    Remove,
    Keep,
}

/// A marker as read (module docs, "Markers").
#[derive(Clone, Copy, Debug)]
struct Marker {
    /// When it ends, Unix ms.
    end: u64,
    /// The move's (or the logout's) token; `None` for a marker that holds no end and
    /// token (damaged, or no regular file), which counts as ended.
    token: Option<u64>,
}

impl Marker {
    fn is_live(&self, now_ms: u64) -> bool {
        self.token.is_some() && now_ms < self.end
    }
}

/// The marker at `path`; `None` when there is none. Read as session files are
/// ([`read_store_file`]): a FIFO opened as is blocked a logout for ever, under the shard
/// lock, and the sweep with it (a review); a link is not followed. What the store never
/// writes (no regular file, or not `<end> <16 hex digits>`) reads as ended: it only ever
/// turns a later retire's answer, a retire writes its own over it, and the sweep removes it.
fn read_marker(path: &Path) -> Result<Option<Marker>, StoreError> {
    let found = read_store_file(path, MAX_MARKER_BYTES, None)
        .map_err(|e| unavailable("reading a marker", e))?;
    let ended = Marker {
        end: 0,
        token: None,
    };
    Ok(match found {
        StoreFile::Missing => None,
        StoreFile::Foreign(_) => Some(ended),
        StoreFile::Bytes(bytes) => Some(
            std::str::from_utf8(&bytes)
                .ok()
                .and_then(|text| {
                    let (end, token) = text.split_once(' ')?;
                    (token.len() == 16).then_some(())?;
                    Some(Marker {
                        end: end.parse().ok()?,
                        token: Some(u64::from_str_radix(token, 16).ok()?),
                    })
                })
                .unwrap_or(ended),
        ),
    })
}

/// True when something has the name `path` (a link too, followed or not).
fn is_named(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

/// The session whose file `name` is, when it is one and belongs in the shard `shard`.
fn session_in(shard: &str, name: &str) -> Option<SessionId> {
    id_in(shard, name, SESSION_SUFFIX)
}

/// The id of a file `name` of the store's named `<id><suffix>`, when it belongs in `shard`.
fn id_in(shard: &str, name: &str, suffix: &str) -> Option<SessionId> {
    let id = SessionId::parse(name.strip_suffix(suffix)?).ok()?;
    (id.as_str()[..2] == *shard).then_some(id)
}

/// The `expires_at_ms` a write with `ttl` stores: at most [`MAX_TTL`](crate::MAX_TTL) from
/// now, as every backend caps it ([`millis`](crate::ttl::millis)). Saturated instead, an
/// absurd TTL (`Duration::MAX`) stored `2^64 - 1`, which the format promises converts
/// directly to Redis `PEXPIREAT` (Redis refuses it), and `load_with_ttl` answered hundreds of
/// millions of years.
fn deadline(ttl: Option<Duration>) -> Option<u64> {
    ttl.map(|ttl| now_ms().saturating_add(crate::ttl::millis(ttl)))
}

/// How many times an index operation starts over on an entry directory that went away
/// under it (`Dir::lock_entry`, `Dir::index_add`) before it fails: each start-over follows
/// another operation's removal of the entry, so more than a few mean something else is
/// wrong.
const ENTRY_TRIES: usize = 100;

/// The error of an index operation whose entry directory kept going away ([`ENTRY_TRIES`]).
fn entry_kept_going() -> StoreError {
    unavailable(
        "using a session index entry",
        io::Error::other(
            "its directory kept disappearing; is the store's directory a link that leads nowhere?",
        ),
    )
}

/// Whether the open `file` is the file at `path` now (same device and inode), and not one
/// that was unlinked (or replaced) since it was opened.
#[cfg(unix)]
fn is_linked_at(file: &File, path: &Path) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let held = file.metadata()?;
    match fs::symlink_metadata(path) {
        Ok(there) => Ok(there.dev() == held.dev() && there.ino() == held.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Elsewhere than on unix entry lock files are never removed
/// (`Dir::remove_entry_if_empty`), so the file opened is the one at the path.
#[cfg(not(unix))]
fn is_linked_at(_file: &File, _path: &Path) -> io::Result<bool> {
    Ok(true)
}

/// Takes the exclusive lock (`flock`) of the file at `path` (created, mode 0600, when
/// missing), waiting at most `timeout`, until the returned file is dropped; `what` names the
/// lock in errors ("a shard lock"). `None` when its directory does not exist.
fn lock_file(path: &Path, timeout: Duration, what: &str) -> Result<Option<File>, StoreError> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(unavailable(&format!("opening {what} file"), e)),
    };
    // `flock` itself has no timeout: try, and give up after `timeout`, so a process that
    // hangs while holding the lock cannot hang every caller (and a blocking thread) with it.
    // A timeout too large to add (Duration::MAX) means "no deadline".
    let deadline = Instant::now().checked_add(timeout);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Some(file)),
            Err(TryLockError::WouldBlock)
                if deadline.is_none_or(|deadline| Instant::now() < deadline) =>
            {
                std::thread::sleep(LOCK_RETRY)
            }
            Err(TryLockError::WouldBlock) => {
                return Err(StoreError::Unavailable {
                    backend: BACKEND.into(),
                    timed_out: true,
                    message: format!(
                        "{what} of the file store stayed taken for {timeout:?} (another process or thread holds it)"
                    ),
                })
            }
            Err(TryLockError::Error(e)) => {
                return Err(unavailable(&format!("locking {what} file"), e))
            }
        }
    }
}

/// An I/O failure. The message says what was being done, never which session.
fn unavailable(doing: &str, err: io::Error) -> StoreError {
    StoreError::Unavailable {
        backend: BACKEND.into(),
        timed_out: false,
        message: if doing.is_empty() {
            err.to_string()
        } else {
            format!("{doing}: {err}")
        },
    }
}

fn corrupt(detail: String) -> StoreError {
    StoreError::Corrupt {
        backend: BACKEND.into(),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};

    use super::*;

    thread_local! {
        /// The directories [`sync_dir`] was asked to flush on this thread.
        static DIR_SYNCS: RefCell<Vec<PathBuf>> = const { RefCell::new(Vec::new()) };
        /// Whether [`sync_dir`] fails on this thread, as a failing disk would make it.
        static FAIL_DIR_SYNC: Cell<bool> = const { Cell::new(false) };
        /// The bytes of store files read on this thread.
        static BYTES_READ: Cell<u64> = const { Cell::new(0) };
    }

    /// Counts `n` bytes read from a store file, for the tests.
    pub(super) fn count_read(n: usize) {
        BYTES_READ.set(BYTES_READ.get() + n as u64);
    }

    /// The sweep learns a file's expiry from its first bytes: it read every session whole
    /// (and parsed every value's JSON) every ten minutes. Here ten sessions of 10 KiB, one
    /// expired, cost it less than a kilobyte each.
    #[test]
    fn the_sweep_reads_the_header_of_a_session_file_only() {
        let root = tempfile::tempdir().unwrap();
        let dir = dir(root.path());
        let big = format!("\"{}\"", "x".repeat(10 * 1024));
        for n in 0..10 {
            let state = SessionState::from([("big".to_owned(), big.clone())]);
            let ttl = if n == 0 {
                Some(Duration::from_millis(1))
            } else {
                Some(Duration::from_secs(600))
            };
            assert!(dir.create(&SessionId::generate(), state, ttl).unwrap());
        }
        std::thread::sleep(Duration::from_millis(5));
        BYTES_READ.set(0);
        let report = dir.cleanup().unwrap();
        assert_eq!(report.expired_removed, 1, "{report:?}");
        // The expired one is read whole once more, under its lock, before its removal.
        let read = BYTES_READ.get();
        assert!(read < 10 * 1024 + 10 * 1024, "{read} bytes read");
    }

    /// The test side of [`sync_dir`]: records the call; `Some` error when this thread asked
    /// for one. The `Dir` operations run on the test's own thread here, so neither leaks
    /// into another test.
    pub(super) fn dir_sync_hook(dir: &Path) -> Option<io::Error> {
        DIR_SYNCS.with(|syncs| syncs.borrow_mut().push(dir.to_path_buf()));
        FAIL_DIR_SYNC
            .get()
            .then(|| io::Error::other("injected: the disk failed to flush"))
    }

    thread_local! {
        /// Run (once) by [`write_marker`](Dir::write_marker) on this thread just before it
        /// renames its marker into place.
        static MARKER_WRITE: RefCell<Option<Box<dyn FnOnce()>>> = const { RefCell::new(None) };
    }

    /// The test side of [`write_marker`](Dir::write_marker): runs what this thread set.
    pub(super) fn marker_write_hook() {
        if let Some(hook) = MARKER_WRITE.with(|hook| hook.borrow_mut().take()) {
            hook();
        }
    }

    /// Two retires of one session under a logout's token, in two processes sharing the
    /// directory (threads here: each takes the shard's lock through a file of its own): the
    /// second looked, without the lock, while the first had removed the session file and
    /// not yet put its marker in place, found neither, and answered `Absent` without
    /// waiting for the lock. Two deletes of one id then both answered by the writers'
    /// copy of a move in flight: a renew racing a logout kept a session.
    #[test]
    fn a_retire_during_another_ones_marker_write_waits_for_it() {
        let root = tempfile::tempdir().unwrap();
        let first = dir(root.path());
        let id = session(&first, Some(Duration::from_secs(600)));
        let second = std::sync::Arc::new(std::sync::Mutex::new(None));
        let (root2, id2, answer) = (root.path().to_path_buf(), id.clone(), second.clone());
        MARKER_WRITE.with(|hook| {
            *hook.borrow_mut() = Some(Box::new(move || {
                let handle = std::thread::spawn(move || {
                    dir(&root2).retire_in_shard(&[(id2, crate::backend::LOGGED_OUT_TOKEN)])
                });
                // Long enough for the second to look, and answer when it does not wait.
                std::thread::sleep(Duration::from_millis(200));
                *answer.lock().unwrap() = Some(handle);
            }));
        });
        let answers = first.retire_in_shard(&[(id.clone(), crate::backend::LOGGED_OUT_TOKEN)]);
        assert!(matches!(answers[..], [Ok(Retired::Now)]), "{answers:?}");
        let handle = second.lock().unwrap().take().expect("the hook ran");
        let answers = handle.join().unwrap();
        assert!(
            matches!(answers[..], [Ok(Retired::Before)]),
            "the second retire answered {answers:?}"
        );
    }

    fn syncs() -> Vec<PathBuf> {
        DIR_SYNCS.with(|syncs| std::mem::take(&mut *syncs.borrow_mut()))
    }

    fn dir(root: &Path) -> Dir {
        Dir {
            root: root.to_path_buf(),
            fsync: true,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            max_session_size: None,
        }
    }

    fn session(dir: &Dir, ttl: Option<Duration>) -> SessionId {
        let id = SessionId::generate();
        let state = SessionState::from([("user".to_owned(), "\"alice\"".to_owned())]);
        assert!(dir.create(&id, state, ttl).unwrap());
        id
    }

    /// The ids of the walk's store: `per_shard` sessions in each of `shards` shard
    /// directories (ids with a chosen prefix), written without `fsync`.
    fn sessions_in_shards(dir: &Dir, shards: usize, per_shard: usize) -> Vec<SessionId> {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let state = SessionState::from([("user".to_owned(), "\"alice\"".to_owned())]);
        let mut ids = Vec::new();
        for shard in 0..shards {
            let prefix = [ALPHABET[shard / 64], ALPHABET[shard % 64]];
            for _ in 0..per_shard {
                let generated = SessionId::generate();
                let text = format!(
                    "{}{}",
                    std::str::from_utf8(&prefix).unwrap(),
                    &generated.as_str()[2..]
                );
                let id = SessionId::parse(&text).unwrap();
                assert!(dir.create(&id, state.clone(), None).unwrap());
                ids.push(id);
            }
        }
        ids
    }

    /// The walk of the migration and of sessionctl over a store of many shards: every id
    /// once, the entries that are not the store's counted exactly, consecutive ids spread
    /// over the shards, and never more ids held than the batch asked for. It listed the
    /// whole directory first (every id in memory: about 1 GB per 10 million files).
    #[test]
    fn a_walk_hands_out_every_id_once_and_holds_one_batch_at_most() {
        let root = tempfile::tempdir().unwrap();
        let mut dir = dir(root.path());
        dir.fsync = false;
        let shards = 150;
        let ids = sessions_in_shards(&dir, shards, 12);
        // Not the store's: one at the root, one in a shard, a session file in another
        // shard than its id's, a name that is not UTF-8 (unix); the store's own (locks,
        // temp and probe files, the index) are not counted.
        fs::write(root.path().join("README"), b"x").unwrap();
        let first_shard = root.path().join(&ids[0].as_str()[..2]);
        fs::write(first_shard.join("notes.txt"), b"x").unwrap();
        let misplaced = format!("{}.json", ids.last().unwrap().as_str());
        fs::copy(dir.path(ids.last().unwrap()), first_shard.join(&misplaced)).unwrap();
        let mut unrecognised = 3;
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt as _;
            let name = std::ffi::OsStr::from_bytes(b"\xff.json");
            fs::write(first_shard.join(name), b"x").unwrap();
            unrecognised += 1;
        }
        fs::write(first_shard.join(".tmp-left"), b"x").unwrap();
        fs::write(root.path().join(".probe-left"), b"x").unwrap();
        fs::create_dir_all(root.path().join(INDEX_DIR).join("0123")).unwrap();
        fs::write(root.path().join(MIGRATION_LOCK), b"").unwrap();

        assert_eq!(WALK_SHARDS, 64, "as the docs say");
        let batch = 100;
        let mut walk = ShardWalk::new(dir.root.clone());
        let mut seen = std::collections::HashSet::new();
        let mut batches = 0;
        while let Some(ids) = walk.next(batch).unwrap() {
            assert!(!ids.is_empty() && ids.len() <= batch, "{}", ids.len());
            // While every lane has a shard to walk (the first batches), any run of
            // WALK_SHARDS ids spreads over as many shards: a batch waits on no shard lock.
            if batches < 3 {
                for window in ids.windows(WALK_SHARDS) {
                    let shards: std::collections::HashSet<_> =
                        window.iter().map(|id| &id.as_str()[..2]).collect();
                    assert_eq!(shards.len(), WALK_SHARDS, "batch {batches}");
                }
            }
            for id in ids {
                assert!(seen.insert(id), "an id handed out twice");
            }
            batches += 1;
        }
        assert_eq!(seen.len(), ids.len());
        assert!(ids.iter().all(|id| seen.contains(id)));
        assert_eq!(walk.unrecognised, unrecognised);
        assert_eq!((walk.shards_found, walk.shards_walked), (shards, shards));
        assert!(
            walk.most_held <= batch,
            "the walk held {} ids at once, for batches of {batch}",
            walk.most_held
        );
        assert_eq!(walk.next(batch).unwrap(), None, "a walk ends for good");
    }

    /// A logout unlinks the session file; with the directory not flushed after it, a power
    /// loss could bring the file back, and the logged-out session with it. Each removal
    /// that ends a session flushes its shard directory, once per shard and batch; removals
    /// of expired files do not (a file that comes back is still expired), nor does anything
    /// with `with_fsync(false)`.
    #[test]
    fn removals_that_end_a_session_flush_the_shard_directory() {
        let root = tempfile::tempdir().unwrap();
        let dir = dir(root.path());
        let _ = syncs();

        let id = session(&dir, None);
        assert!(dir.delete(&id).unwrap());
        assert_eq!(syncs(), vec![dir.shard(&id)], "a logout");
        assert!(!dir.delete(&id).unwrap());
        assert_eq!(syncs(), Vec::<PathBuf>::new(), "nothing was removed");

        let emptied = session(&dir, None);
        let _ = syncs();
        dir.update(&emptied, |record| record.state.clear()).unwrap();
        assert!(!dir.path(&emptied).exists());
        assert_eq!(syncs(), vec![dir.shard(&emptied)], "a session left empty");

        // Two ids of one shard: one flush for the batch.
        let first = session(&dir, None);
        let second = loop {
            let id = SessionId::generate();
            if id.as_str()[..2] == first.as_str()[..2] {
                let state = SessionState::from([("n".to_owned(), "1".to_owned())]);
                assert!(dir.create(&id, state, None).unwrap());
                break id;
            }
        };
        let _ = syncs();
        let answers = dir.delete_in_shard(&[first.clone(), second]);
        assert!(answers.iter().all(|a| matches!(a, Ok(true))), "{answers:?}");
        assert_eq!(
            syncs(),
            vec![dir.shard(&first)],
            "one flush per shard batch"
        );

        let expired = session(&dir, Some(Duration::from_millis(1)));
        std::thread::sleep(Duration::from_millis(5));
        let _ = syncs();
        assert!(dir.remove_if_expired(&expired).unwrap());
        let expired = session(&dir, Some(Duration::from_millis(1)));
        std::thread::sleep(Duration::from_millis(5));
        let _ = syncs();
        assert!(
            !dir.delete(&expired).unwrap(),
            "an expired session is no logout"
        );
        assert!(!dir.path(&expired).exists());
        assert_eq!(
            syncs(),
            Vec::<PathBuf>::new(),
            "expired files need no flush"
        );

        let unsynced = Dir {
            fsync: false,
            ..dir.clone()
        };
        let id = session(&unsynced, None);
        assert!(unsynced.delete(&id).unwrap());
        assert_eq!(syncs(), Vec::<PathBuf>::new(), "with_fsync(false)");
    }

    /// A flush that fails is the store's "unavailable" error, without the id, for a single
    /// delete and for each id of a batch whose file was removed; the batch's ids that had
    /// nothing to remove still answer `false`.
    #[test]
    fn a_failed_flush_of_a_removal_is_unavailable_without_the_id() {
        let root = tempfile::tempdir().unwrap();
        let dir = dir(root.path());
        let id = session(&dir, None);
        FAIL_DIR_SYNC.set(true);
        let err = dir.delete(&id).unwrap_err();
        let batched = session(&dir, None);
        let absent =
            SessionId::parse(&format!("{}{}", &batched.as_str()[..2], "A".repeat(41))).unwrap();
        let batch = [batched, absent];
        let answers = dir.delete_in_shard(&batch);
        FAIL_DIR_SYNC.set(false);
        let StoreError::Unavailable {
            backend, timed_out, ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!((backend.as_str(), *timed_out), (BACKEND, false));
        assert!(err.to_string().contains("injected"), "{err}");
        assert!(!format!("{err} {err:?}").contains(id.as_str()));
        assert!(
            matches!(&answers[0], Err(StoreError::Unavailable { .. })),
            "{answers:?}"
        );
        assert!(matches!(&answers[1], Ok(false)), "{answers:?}");
        assert!(!dir.path(&id).exists(), "the unlink itself stands");
    }

    /// A file that grew past the bound after its length was checked is read no further
    /// than one byte past it (here an endless reader whose metadata said 10 bytes).
    #[test]
    fn a_read_stops_one_byte_past_the_bound() {
        let endless = io::repeat(b' ');
        let mut counted = CountingReader(endless, 0);
        assert!(matches!(
            read_capped(&mut counted, 10, 1000),
            Ok(StoreFile::Foreign(TOO_LARGE))
        ));
        assert_eq!(counted.1, 1001);
        match read_capped(&b"{}"[..], 2, 2) {
            Ok(StoreFile::Bytes(bytes)) => assert_eq!(bytes, b"{}"),
            _ => panic!("a file at the bound is read"),
        }
    }

    struct CountingReader<R>(R, u64);

    impl<R: io::Read> io::Read for CountingReader<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.read(buf)?;
            self.1 += n as u64;
            Ok(n)
        }
    }

    /// The bound holds the worst case of the encoding at the limit: the empty key (7 bytes
    /// on disk for 1), and one-byte control characters as keys (13 for 2), of values of one
    /// byte, with the longest expiry.
    #[test]
    fn the_bound_holds_the_worst_encoding_of_a_session_at_the_limit() {
        for (limit, controls) in [(1usize, 0u8), (3, 1), (63, 31)] {
            let state: SessionState = std::iter::once(String::new())
                .chain((0..controls).map(|c| char::from(c).to_string()))
                .map(|key| (key, "0".to_owned()))
                .collect();
            let size: usize = state.iter().map(|(k, v)| k.len() + v.len()).sum();
            assert_eq!(size, limit);
            let record = Record {
                version: FORMAT_VERSION,
                expires_at_ms: Some(u64::MAX),
                state,
            };
            let bytes = serde_json::to_vec(&record).unwrap().len() as u64;
            assert!(bytes <= max_file_bytes(Some(limit)), "{limit}: {bytes}");
        }
    }

    /// Only a header exactly as the store writes it gives an expiry; anything else is left
    /// to the full read.
    #[test]
    fn a_header_gives_an_expiry_only_as_the_store_writes_it() {
        let record = Record {
            version: FORMAT_VERSION,
            expires_at_ms: Some(u64::MAX),
            state: SessionState::from([("a".to_owned(), "1".to_owned())]),
        };
        let written = serde_json::to_vec(&record).unwrap();
        let head = &written[..HEADER_BYTES as usize];
        assert_eq!(expiry_of_header(head), Some(Some(u64::MAX)));
        let cases: &[(&[u8], Option<Option<u64>>)] = &[
            (
                br#"{"version":1,"expires_at_ms":null,"state":{"a":"1"}}"#,
                Some(None),
            ),
            (
                br#"{"version":1,"expires_at_ms":0,"state":{"#,
                Some(Some(0)),
            ),
            (
                br#"{"version":1,"expires_at_ms":17,"state":{"#,
                Some(Some(17)),
            ),
            (br#"{"version":1,"expires_at_ms":17,"state":"#, None),
            (br#"{"version":1,"expires_at_ms":017,"state":{"#, None),
            (br#"{"version":1,"expires_at_ms":-1,"state":{"#, None),
            (br#"{"version":1,"expires_at_ms":1.5,"state":{"#, None),
            (br#"{"version":1,"expires_at_ms":"1","state":{"#, None),
            (
                br#"{"version":1,"expires_at_ms":18446744073709551616,"state":{"#,
                None,
            ),
            (br#"{"version":1,"expires_at_ms":,"state":{"#, None),
            (br#"{"version":2,"expires_at_ms":1,"state":{"#, None),
            (br#"{"expires_at_ms":1,"version":1,"state":{"#, None),
            (br#"{ "version":1,"expires_at_ms":1,"state":{"#, None),
            (br#"{"version":1,"expires_at_ms":1"#, None),
            (b"", None),
        ];
        for (head, expected) in cases {
            assert_eq!(
                expiry_of_header(head),
                *expected,
                "{}",
                String::from_utf8_lossy(head)
            );
        }
    }

    /// The real flush, on a directory that is gone: an I/O error, not a panic or a success.
    #[cfg(unix)]
    #[test]
    fn flushing_a_missing_directory_fails() {
        let root = tempfile::tempdir().unwrap();
        FAIL_DIR_SYNC.set(false);
        assert!(sync_dir(root.path()).is_ok());
        assert!(sync_dir(&root.path().join("gone")).is_err());
    }
}
