//! `session_redis_migrate_from_filestore`: file-store sessions move into a real redis-server at
//! start-up, each id only if Redis does not have it yet.

use std::time::Duration;

use session_core::{
    backends::file::FileBackend, SessionBackend, SessionConfig, SessionId, SessionState,
    SessionStore,
};
use session_testkit::RedisServer;

fn state(pairs: &[(&str, &str)]) -> SessionState {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn config(server: &RedisServer, files: &std::path::Path) -> SessionConfig {
    SessionConfig::builder()
        .set("session_redis_url", &server.url())
        .set("session_filestore_path", files.to_str().unwrap())
        .set("session_redis_migrate_from_filestore", "True")
        .set("session_redis_socket_timeout", "0.5")
        .build()
        .unwrap()
}

/// A file store over `root` without background sweeper or flushes: only what a test writes
/// is there, and fast.
fn unswept_files(root: &std::path::Path) -> std::sync::Arc<FileBackend> {
    std::sync::Arc::new(
        FileBackend::new(root.to_path_buf())
            .unwrap()
            .with_cleanup_interval(None)
            .with_fsync(false),
    )
}

/// A shard directory's name that is not `id`'s: where a file named for `id` is misplaced.
fn another_shard(id: &SessionId) -> &'static str {
    if &id.as_str()[..2] == "AA" {
        "BB"
    } else {
        "AA"
    }
}

/// The Redis backend of `server`, with the default settings.
fn redis_of(server: &RedisServer) -> std::sync::Arc<dyn SessionBackend> {
    std::sync::Arc::new(
        session_core::backends::redis::RedisBackend::from_config(&SessionConfig {
            url: Some(server.url()),
            ..SessionConfig::default()
        })
        .unwrap(),
    )
}

fn key(id: &SessionId) -> String {
    format!("session:{}", id.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_move_into_redis_once_and_only_when_absent() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let files = FileBackend::new(dir.path().to_path_buf())
        .unwrap()
        .with_cleanup_interval(None);

    let with_ttl = SessionId::generate();
    let without_ttl = SessionId::generate();
    let expired = SessionId::generate();
    let taken = SessionId::generate();
    let corrupt = SessionId::generate();
    let alice = state(&[("user", "\"alice\""), ("n", "3")]);
    assert!(files
        .create(&with_ttl, &alice, Some(Duration::from_secs(600)))
        .await
        .unwrap());
    assert!(files
        .create(&without_ttl, &state(&[("user", "\"bob\"")]), None)
        .await
        .unwrap());
    assert!(files
        .create(
            &expired,
            &state(&[("n", "1")]),
            Some(Duration::from_millis(50))
        )
        .await
        .unwrap());
    assert!(files
        .create(&taken, &state(&[("user", "\"old\"")]), None)
        .await
        .unwrap());
    let corrupt_path = dir
        .path()
        .join(&corrupt.as_str()[..2])
        .join(format!("{}.json", corrupt.as_str()));
    std::fs::create_dir_all(corrupt_path.parent().unwrap()).unwrap();
    std::fs::write(&corrupt_path, b"{not json").unwrap();
    // Redis already has `taken`, with other data: it must stay as it is.
    let _: () = server.cmd(&["HSET", &key(&taken), "user", "\"new\""]);
    tokio::time::sleep(Duration::from_millis(100)).await;

    let store = SessionStore::from_config(&config(&server, dir.path()))
        .await
        .unwrap();

    assert_eq!(store.load(&with_ttl).await.unwrap(), Some(alice));
    let ttl: i64 = server.cmd(&["TTL", &key(&with_ttl)]);
    assert!((590..=600).contains(&ttl), "remaining TTL kept: {ttl}");
    assert_eq!(
        store.load(&without_ttl).await.unwrap(),
        Some(state(&[("user", "\"bob\"")]))
    );
    assert_eq!(server.cmd::<i64>(&["TTL", &key(&without_ttl)]), -1);
    assert!(store.load(&expired).await.unwrap().is_none());
    assert_eq!(server.cmd::<i64>(&["EXISTS", &key(&expired)]), 0);
    assert_eq!(
        store.load(&taken).await.unwrap(),
        Some(state(&[("user", "\"new\"")])),
        "an id Redis already has is not overwritten"
    );
    assert_eq!(server.cmd::<i64>(&["EXISTS", &key(&corrupt)]), 0);

    // Files: every handled one is gone, the corrupt one is kept for inspection.
    assert_eq!(files.session_ids().await.unwrap(), vec![corrupt.clone()]);
    assert!(corrupt_path.exists());

    // A logout in Redis sticks across the next start-up: nothing is migrated again.
    assert!(store.delete(&with_ttl).await.unwrap());
    let _again = SessionStore::from_config(&config(&server, dir.path()))
        .await
        .unwrap();
    assert_eq!(server.cmd::<i64>(&["EXISTS", &key(&with_ttl)]), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_at_start_up_migrates_once_it_is_back() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let files = FileBackend::new(dir.path().to_path_buf())
        .unwrap()
        .with_cleanup_interval(None);
    let carol = SessionId::generate();
    let dave = SessionId::generate();
    let erin = SessionId::generate();
    for (id, user) in [(&carol, "carol"), (&dave, "dave"), (&erin, "erin")] {
        let user = format!("\"{user}\"");
        assert!(files
            .create(id, &state(&[("user", &user)]), None)
            .await
            .unwrap());
    }
    let config = config(&server, dir.path());
    server.kill();

    // The application starts anyway; the sessions stay in their files meanwhile.
    let store = SessionStore::from_config(&config).await.unwrap();
    assert_eq!(files.session_ids().await.unwrap().len(), 3);

    server.restart();
    // Before the background retry: a session still in a file is moved on first use...
    assert_eq!(
        store.load(&erin).await.unwrap(),
        Some(state(&[("user", "\"erin\"")]))
    );
    assert_eq!(server.cmd::<i64>(&["EXISTS", &key(&erin)]), 1);
    // ...and a logout removes the file copy too, so the retry cannot bring it back.
    assert!(store.delete(&dave).await.unwrap());

    let deadline = std::time::Instant::now()
        + session_core::migration::RETRY_INTERVAL * 2
        + Duration::from_secs(2);
    // The background retry moves the rest (carol), without anyone loading it.
    while !files.session_ids().await.unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "migration was not retried after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(server.cmd::<i64>(&["EXISTS", &key(&carol)]), 1);
    assert_eq!(
        store.load(&carol).await.unwrap(),
        Some(state(&[("user", "\"carol\"")]))
    );
    assert_eq!(
        server.cmd::<i64>(&["EXISTS", &key(&dave)]),
        0,
        "logout stuck"
    );
    assert!(store.load(&dave).await.unwrap().is_none());
}

/// One session file the store cannot read as a session (a directory where the file should
/// be: as root, permissions would not stop a read) is skipped with a warning; the run
/// completes and moves the rest, instead of failing every retry forever. The directory
/// counted as unreadable (an I/O error) until the store read only regular files; it is a
/// corrupt session now, as a FIFO or a link there is
/// (`backends.rs` `foreign_files_named_like_sessions_block_nothing`). Permissions, which a
/// test run as root cannot deny, still count as unreadable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_file_is_skipped_and_the_rest_migrates() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let files = FileBackend::new(dir.path().to_path_buf())
        .unwrap()
        .with_cleanup_interval(None);
    let good = SessionId::generate();
    assert!(files
        .create(&good, &state(&[("user", "\"alice\"")]), None)
        .await
        .unwrap());
    let blocked = SessionId::generate();
    let blocked_path = dir
        .path()
        .join(&blocked.as_str()[..2])
        .join(format!("{}.json", blocked.as_str()));
    std::fs::create_dir_all(blocked_path.join("in-the-way")).unwrap();

    let report = session_core::migration::migrate_file_store(
        std::sync::Arc::new(
            FileBackend::new(dir.path().to_path_buf())
                .unwrap()
                .with_cleanup_interval(None),
        ),
        redis_of(&server),
        session_core::TtlRule::default(),
    )
    .await
    .expect("one unreadable file does not stop the run");
    assert_eq!((report.migrated, report.corrupt), (1, 1), "{report:?}");
    assert_eq!(server.cmd::<i64>(&["EXISTS", &key(&good)]), 1);
    assert!(blocked_path.exists(), "left in place");

    // With `migrate_from_filestore`, the start-up run completes (no pending mode, no retry).
    let again = SessionId::generate();
    assert!(files
        .create(&again, &state(&[("user", "\"bob\"")]), None)
        .await
        .unwrap());
    let store = SessionStore::from_config(&config(&server, dir.path()))
        .await
        .unwrap();
    assert_eq!(server.cmd::<i64>(&["EXISTS", &key(&again)]), 1);
    assert!(store.load(&again).await.unwrap().is_some());
}

/// Two processes that start together with one configuration sweep the same file store into
/// the same Redis: one after the other (a lock file in the store's directory), so nothing is
/// lost. Before, both moved every session, and the second to delete a file took the first
/// one's delete for a logout and removed the session from Redis (73 of 1,000 lost in one
/// run without the lock; found by a review).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_migrating_at_once_lose_nothing() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let files = || unswept_files(dir.path());
    let redis = || redis_of(&server);
    let data = state(&[("user", "\"alice\"")]);
    let writer = files();
    let mut ids = Vec::new();
    for _ in 0..1000 {
        let id = SessionId::generate();
        assert!(writer.create(&id, &data, None).await.unwrap());
        ids.push(id);
    }
    let sweeps: Vec<_> = (0..2)
        .map(|_| {
            let (from, to) = (files(), redis());
            tokio::spawn(async move {
                session_core::migration::migrate_file_store(
                    from,
                    to,
                    session_core::TtlRule::default(),
                )
                .await
                .unwrap()
            })
        })
        .collect();
    let mut migrated = 0;
    for sweep in sweeps {
        let report = sweep.await.unwrap();
        assert_eq!(report.logged_out, 0, "{report:?}");
        migrated += report.migrated;
    }
    assert_eq!(migrated, 1000);
    let target = redis();
    for id in &ids {
        assert_eq!(target.load(id, None).await.unwrap(), Some(data.clone()));
    }
    assert!(writer.session_ids().await.unwrap().is_empty());
}

/// While the start-up migration waits for Redis, the store answers `load_with_ttl` (the
/// tower-sessions adapter's load, `sessionctl show`) with each session's lifetime left: a
/// session still in its file moves with it, one already in Redis reports Redis' own. The
/// store in that state used to take the trait's default, a plain load that knows no
/// lifetime, and answered "no expiry" for both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_migration_reports_each_sessions_lifetime() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let files = FileBackend::new(dir.path().to_path_buf())
        .unwrap()
        .with_cleanup_interval(None);
    let hour = Duration::from_secs(3600);
    let in_file = SessionId::generate();
    assert!(files
        .create(&in_file, &state(&[("user", "\"erin\"")]), Some(hour))
        .await
        .unwrap());
    let config = config(&server, dir.path());
    server.kill();
    let store = SessionStore::from_config(&config).await.unwrap();
    server.restart();

    let within_the_hour = |left: Option<Duration>| {
        let left = left.expect("a session with an expiry reports it");
        assert!(
            left <= hour && left > hour - Duration::from_secs(60),
            "{left:?}"
        );
    };
    let (moved, left) = store.load_with_ttl(&in_file).await.unwrap().unwrap();
    assert_eq!(moved, state(&[("user", "\"erin\"")]));
    within_the_hour(left);
    assert_eq!(server.cmd::<i64>(&["EXISTS", &key(&in_file)]), 1);

    let in_redis = store
        .create(&state(&[("n", "1")]), Some(hour / 2))
        .await
        .unwrap();
    let (_, left) = store.load_with_ttl(&in_redis).await.unwrap().unwrap();
    let left = left.expect("Redis' own expiry");
    assert!(left <= hour / 2 && left > hour / 2 - Duration::from_secs(60));
}

/// Entries of the store's directory that are not session files where the store keeps them:
/// a session file under another shard than its id's (the store never reads it there), and
/// files of no session's name. Each run counted the misplaced one as expired (its id read
/// as absent, and the "removal" of what was left removed nothing), every run again. They
/// are counted as unrecognised, left in place and never moved.
#[tokio::test]
async fn misplaced_and_foreign_files_are_unrecognised_not_expired() {
    use session_core::{backends::memory::MemoryBackend, migration::migrate_file_store, TtlRule};
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let files = unswept_files(root);
    let live = SessionId::generate();
    assert!(files
        .create(&live, &state(&[("user", "\"alice\"")]), None)
        .await
        .unwrap());
    let stray = SessionId::generate();
    let elsewhere = another_shard(&stray);
    std::fs::create_dir_all(root.join(elsewhere)).unwrap();
    let misplaced = root
        .join(elsewhere)
        .join(format!("{}.json", stray.as_str()));
    std::fs::write(
        &misplaced,
        br#"{"version":1,"expires_at_ms":null,"state":{"user":"\"mallory\""}}"#,
    )
    .unwrap();
    let notes = root.join(&live.as_str()[..2]).join("notes.txt");
    std::fs::write(&notes, b"x").unwrap();
    let readme = root.join("README");
    std::fs::write(&readme, b"x").unwrap();

    let target = Arc::new(MemoryBackend::new());
    for run in 0..2 {
        let report = migrate_file_store(files.clone(), target.clone(), TtlRule::default())
            .await
            .unwrap();
        assert_eq!(report.expired, 0, "run {run}: {report:?}");
        assert_eq!(report.unrecognised, 3, "run {run}: {report:?}");
        assert_eq!(
            report.migrated,
            usize::from(run == 0),
            "run {run}: {report:?}"
        );
    }
    assert!(target.load(&live, None).await.unwrap().is_some());
    assert!(target.load(&stray, None).await.unwrap().is_none());
    for path in [&misplaced, &notes, &readme] {
        assert!(path.exists(), "{} left in place", path.display());
    }
}

/// The start-up migration logs the unrecognised entries once per run, as a count: never a
/// file's name, which for a misplaced session file is a session id.
#[tokio::test]
async fn unrecognised_entries_are_logged_once_without_their_names() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let stray = SessionId::generate();
    let elsewhere = another_shard(&stray);
    std::fs::create_dir_all(dir.path().join(elsewhere)).unwrap();
    std::fs::write(
        dir.path()
            .join(elsewhere)
            .join(format!("{}.json", stray.as_str())),
        br#"{"version":1,"expires_at_ms":null,"state":{"a":"1"}}"#,
    )
    .unwrap();

    let (logs, _logging) = Logs::capture(tracing::Level::TRACE);
    let _store = SessionStore::from_config(&config(&server, dir.path()))
        .await
        .unwrap();
    let text = logs.text();
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("not session files"))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(lines[0].contains("unrecognised=1"), "{text}");
    assert!(!text.contains(stray.as_str()), "the id leaked: {text}");
}

/// A store spread over thousands of shard directories (random ids: about one shard in
/// three holds two or more), with entries that are not the store's: every session moves,
/// once, and the count of the others is exact. The walk reads a few dozen shards at a time
/// and holds a batch of ids at most (the unit test
/// `a_walk_hands_out_every_id_once_and_holds_one_batch_at_most` checks that bound); the
/// progress lines say how many shards are walked, and never name a session.
#[tokio::test]
async fn a_store_spread_over_many_shards_migrates_every_session() {
    use session_core::{migration::migrate_file_store, TtlRule};

    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let files = unswept_files(dir.path());
    let data = state(&[("user", "\"alice\"")]);
    let mut ids = Vec::new();
    for _ in 0..3000 {
        let id = SessionId::generate();
        assert!(files.create(&id, &data, None).await.unwrap());
        ids.push(id);
    }
    let shards = std::fs::read_dir(dir.path()).unwrap().count();
    assert!(shards > 1000, "{shards} shards");
    std::fs::write(dir.path().join("README"), b"x").unwrap();
    std::fs::write(
        dir.path().join(&ids[0].as_str()[..2]).join("notes.txt"),
        b"x",
    )
    .unwrap();

    let (logs, _logging) = Logs::capture(tracing::Level::INFO);
    let redis = redis_of(&server);
    let report = migrate_file_store(files.clone(), redis.clone(), TtlRule::default())
        .await
        .unwrap();
    assert_eq!(report.migrated, 3000, "{report:?}");
    assert_eq!(report.unrecognised, 2, "{report:?}");
    assert_eq!(
        (report.expired, report.already_present, report.logged_out),
        (0, 0, 0),
        "{report:?}"
    );
    for id in &ids {
        assert_eq!(redis.load(id, None).await.unwrap(), Some(data.clone()));
    }
    assert!(files.session_ids().await.unwrap().is_empty());

    let text = logs.text();
    let progress: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("migrating file-store sessions"))
        .collect();
    assert_eq!(progress.len(), 2, "{text}");
    assert!(progress[0].contains("done=1000"), "{text}");
    assert!(
        progress[0].contains(&format!("shards={}", shards)),
        "{text}"
    );
    for id in &ids {
        assert!(!text.contains(id.as_str()), "an id leaked: {text}");
    }
}

/// Sessions written into the file store while a migration walks it (by a process still on
/// the file store) are seen by the walk or missed, as keys written during a `SCAN`: none is
/// lost either way. Each is in Redis or still in its file afterwards, and the next run
/// moves those left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_written_during_the_walk_are_moved_or_left_for_the_next_run() {
    use session_core::{migration::migrate_file_store, TtlRule};

    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let files = || unswept_files(dir.path());
    let redis = redis_of(&server);
    let data = state(&[("user", "\"alice\"")]);
    let writer = files();
    let mut ids = Vec::new();
    for _ in 0..2000 {
        let id = SessionId::generate();
        assert!(writer.create(&id, &data, None).await.unwrap());
        ids.push(id);
    }
    let writing = {
        let (writer, data) = (writer.clone(), data.clone());
        tokio::spawn(async move {
            let mut written = Vec::new();
            for _ in 0..500 {
                let id = SessionId::generate();
                assert!(writer.create(&id, &data, None).await.unwrap());
                written.push(id);
                tokio::task::yield_now().await;
            }
            written
        })
    };
    let first = migrate_file_store(files(), redis.clone(), TtlRule::default())
        .await
        .unwrap();
    ids.extend(writing.await.unwrap());
    assert_eq!(first.logged_out, 0, "{first:?}");
    assert!(first.migrated >= 2000, "{first:?}");
    for id in &ids {
        let in_redis = redis.load(id, None).await.unwrap().is_some();
        let in_file = writer.load(id, None).await.unwrap().is_some();
        assert!(
            in_redis != in_file,
            "in Redis: {in_redis}, in its file: {in_file}"
        );
    }
    let second = migrate_file_store(files(), redis.clone(), TtlRule::default())
        .await
        .unwrap();
    assert_eq!(first.migrated + second.migrated, ids.len(), "{second:?}");
    for id in &ids {
        assert_eq!(redis.load(id, None).await.unwrap(), Some(data.clone()));
    }
    assert!(writer.session_ids().await.unwrap().is_empty());
}

/// The log lines of this thread's code while the guard of [`Logs::capture`] lives.
#[derive(Clone, Default)]
struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Logs {
    fn capture(level: tracing::Level) -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Self::default();
        let guard = tracing::subscriber::set_default(
            tracing_subscriber::fmt()
                .with_writer(logs.clone())
                .with_ansi(false)
                .with_max_level(level)
                .finish(),
        );
        (logs, guard)
    }

    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

/// A walk skips the store's logout markers (`<id>.ended` in its id's shard) and only them:
/// a marker in another shard than its id's, or a file of no id's name that ends in
/// `.ended`, is no entry of the store and counts as unrecognised, as a misplaced session
/// file and any other name do. Every name ending in `.ended` was skipped, uncounted.
#[tokio::test]
async fn only_the_stores_own_logout_markers_are_skipped_by_a_walk() {
    use session_core::{backends::memory::MemoryBackend, migration::migrate_file_store, TtlRule};
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let files = unswept_files(root);
    let live = SessionId::generate();
    assert!(files
        .create(&live, &state(&[("user", "\"alice\"")]), None)
        .await
        .unwrap());
    let shard = root.join(&live.as_str()[..2]);
    let ended = SessionId::generate();
    std::fs::create_dir_all(root.join(&ended.as_str()[..2])).unwrap();
    std::fs::write(
        root.join(&ended.as_str()[..2])
            .join(format!("{}.ended", ended.as_str())),
        b"1",
    )
    .unwrap();
    let stray = SessionId::generate();
    let elsewhere = another_shard(&stray);
    std::fs::create_dir_all(root.join(elsewhere)).unwrap();
    std::fs::write(
        root.join(elsewhere)
            .join(format!("{}.ended", stray.as_str())),
        b"1",
    )
    .unwrap();
    std::fs::write(shard.join("notes.ended"), b"x").unwrap();

    let mut walk = files.walk();
    let mut found = Vec::new();
    while let Some(batch) = walk.next_batch(100).await.unwrap() {
        found.extend(batch);
    }
    assert_eq!(found, vec![live.clone()]);
    assert_eq!(walk.unrecognised(), 2, "{walk:?}");
    let report = migrate_file_store(files, Arc::new(MemoryBackend::new()), TtlRule::default())
        .await
        .unwrap();
    assert_eq!(report.unrecognised, 2, "{report:?}");
    assert_eq!(report.migrated, 1, "{report:?}");
}

/// A logout's marker (`backends::file`, "Markers") outlives the migration's clean-up of a
/// session that was gone when the migration came to it. The walk lists session files, and
/// one it listed may be retired by a logout (in an application process sharing the
/// directory) before the migration's move reads it: the move finds nothing (here: the
/// file expired beside the logout's marker, which the move reads the same way), and the
/// migration's clean-up delete removed the marker with it. A renew racing that logout
/// during a move in flight then found no marker, took the move's copy in the new store
/// for the session and kept it under a new id after the logout.
#[tokio::test]
async fn the_migrations_clean_up_of_a_gone_session_keeps_a_logouts_marker() {
    use session_core::{
        backends::memory::MemoryBackend, migration::migrate_file_store, Retired, TtlRule,
    };
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let files = Arc::new(
        FileBackend::new(dir.path().to_path_buf())
            .unwrap()
            .with_cleanup_interval(None),
    );
    let id = SessionId::generate();
    let alice = state(&[("user", "\"alice\"")]);
    assert!(files.create(&id, &alice, None).await.unwrap());
    // The logout (token 0: `backend::LOGGED_OUT_TOKEN`).
    let retired = files.retire_many(&[(id.clone(), 0)]).await;
    assert!(matches!(retired[..], [Ok(Retired::Now)]), "{retired:?}");
    assert!(files
        .create(&id, &alice, Some(Duration::from_millis(1)))
        .await
        .unwrap());
    tokio::time::sleep(Duration::from_millis(10)).await;

    let report = migrate_file_store(
        Arc::clone(&files),
        Arc::new(MemoryBackend::new()),
        TtlRule::default(),
    )
    .await
    .unwrap();
    assert_eq!(report.expired, 1, "{report:?}");
    let again = files.retire_many(&[(id.clone(), 0)]).await;
    assert!(
        matches!(again[..], [Ok(Retired::Before)]),
        "a second logout after the migration answered {again:?}: the logout's marker is gone"
    );
}

/// A logout by clearing the session (a write that leaves no key) while the start-up
/// migration is pending ends the file copy under a logout's marker, as a delete does
/// (`backends::multi`, "A logout during a move"). The clearing's own load moved the session
/// (its move's marker in the file store), and the clearing went to Redis alone, leaving
/// that move's marker: a renew whose delete came while a stale move in flight (another
/// process's, which read the file before that retire) had made its copy found the move's
/// marker, took that copy for the session and kept it under a new id after the logout.
/// The stale move's copy is made by hand here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_by_clearing_during_a_pending_migration_leaves_a_logouts_marker() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let files = unswept_files(dir.path());
    let id = SessionId::generate();
    let alice = state(&[("user", "\"alice\"")]);
    assert!(files.create(&id, &alice, None).await.unwrap());
    let config = config(&server, dir.path());
    server.kill();
    let store = SessionStore::from_config(&config).await.unwrap();
    server.restart();

    // The logout's request loads the session (which moves it) and clears it.
    let (loaded, version) = store.load_versioned(&id).await.unwrap().unwrap();
    assert_eq!(loaded, alice);
    let mut clear = session_core::Changes::default();
    for key in loaded.keys() {
        clear.remove(key.clone());
    }
    store
        .apply_versioned(&id, version, &[], &clear, None)
        .await
        .unwrap();
    assert_eq!(server.cmd::<i64>(&["EXISTS", &key(&id)]), 0);

    // A stale move's copy, then a renew's delete before that move's retire.
    assert!(redis_of(&server).create(&id, &alice, None).await.unwrap());
    assert!(
        !store.delete(&id).await.unwrap(),
        "the renew's delete found the session after the logout by clearing: it keeps it under a new id"
    );
    assert!(store.load(&id).await.unwrap().is_none(), "the copy stayed");
}
