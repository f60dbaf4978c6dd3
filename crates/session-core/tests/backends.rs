//! The conformance suite against the in-memory, file and Redis backends (both Redis connection
//! strategies, on a real redis-server), plus file-store specifics:
//! on-disk format, atomic writes, corrupt files, unusable directories, cleanup, and two
//! processes sharing one directory.

use std::{
    fs,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
};

use session_core::{
    backends::{file::FileBackend, memory::MemoryBackend, redis::RedisBackend},
    testing::{
        conformance::{self, state, store_of, LONG, TTL},
        probe::{Fault, Op, ProbeBackend},
    },
    Changes, SessionBackend, SessionConfig, SessionId, SessionState, SessionStore, StoreError,
};
use session_testkit::RedisServer;

/// A file store whose lock waits a minute rather than the default 5 s: the tests that
/// serialise hundreds of fsynced writes on one shard lock would otherwise fail on a slow CI
/// disk (the last waiter waits for all the others), which says nothing about the store.
fn file_store(root: &Path) -> SessionStore {
    SessionStore::new(
        FileBackend::new(root.to_path_buf())
            .unwrap()
            .with_lock_timeout(Duration::from_secs(60)),
    )
}

/// A file store at `root` whose background sweeper never runs: the test sweeps (`cleanup`)
/// when it means to, or not at all.
fn unswept(root: &Path) -> FileBackend {
    FileBackend::new(root.to_path_buf())
        .unwrap()
        .with_cleanup_interval(None)
}

fn session_path(root: &Path, id: &SessionId) -> PathBuf {
    root.join(&id.as_str()[..2])
        .join(format!("{}.json", id.as_str()))
}

fn temp_files(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for shard in fs::read_dir(root).unwrap().flatten() {
        if shard.path().is_dir() {
            for entry in fs::read_dir(shard.path()).unwrap().flatten() {
                if entry.file_name().to_string_lossy().starts_with(".tmp-") {
                    found.push(entry.path());
                }
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_backend_conforms() {
    let backend: Arc<dyn SessionBackend> = Arc::new(MemoryBackend::new());
    conformance::run_all(|| backend.clone()).await;
}

/// The suite again, one test per check (what a third-party backend crate would write).
mod memory_backend_per_check {
    use super::*;

    session_core::conformance_tests!({
        let backend: Arc<dyn SessionBackend> = Arc::new(MemoryBackend::new());
        move || backend.clone()
    });
}

/// A backend that breaks one rule fails the suite with the name of the check that caught it.
#[test]
fn a_broken_backend_fails_naming_the_check() {
    let probe = ProbeBackend::memory();
    probe.fail(Op::Touch, Some(Fault::Unavailable));
    let shared: Arc<dyn SessionBackend> = Arc::new(probe);
    let failure = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        conformance::run_one("touch_only_if_present", || shared.clone())
    }))
    .expect_err("a backend whose touch fails passed the touch check");
    let message = failure.downcast_ref::<String>().unwrap();
    assert!(
        message.starts_with("conformance check `touch_only_if_present` failed: "),
        "{message}"
    );
}

/// The probe forwards `load_with_ttl` (a move out of a backend behind it keeps each session's
/// expiry) and records it as a load without a touch; it used to take the trait's default, a
/// plain load that knows no lifetime.
#[tokio::test]
async fn the_probe_reports_the_lifetime_of_the_backend_behind_it() {
    let probe = ProbeBackend::memory();
    let store = store_of(&(Arc::new(probe.clone()) as Arc<dyn SessionBackend>));
    let data = state(&[("a", "1")]);
    let expiring = store.create(&data, Some(LONG)).await.unwrap();
    let lasting = store.create(&data, None).await.unwrap();
    probe.reset();
    let (loaded, left) = store.load_with_ttl(&expiring).await.unwrap().unwrap();
    assert_eq!(loaded, data);
    let left = left.expect("the memory backend knows the expiry");
    assert!(
        left <= LONG && left > LONG - Duration::from_secs(60),
        "{left:?}"
    );
    assert_eq!(
        store.load_with_ttl(&lasting).await.unwrap(),
        Some((data, None))
    );
    assert_eq!(probe.count(Op::Load), 2);
    probe.fail(Op::Load, Some(Fault::Unavailable));
    assert!(store
        .load_with_ttl(&expiring)
        .await
        .unwrap_err()
        .is_unavailable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_backend_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("sessions");
    // Every call opens a new handle on the same directory, as separate workers would.
    conformance::run_all(|| {
        Arc::new(FileBackend::new(root.clone()).unwrap()) as Arc<dyn SessionBackend>
    })
    .await;
    assert!(temp_files(&root).is_empty(), "temp files left behind");
}

/// The suite against a real redis-server, once per connection strategy; every call makes a
/// new backend on the same server, as separate workers would. Corrupt data is planted as a
/// key of the wrong type.
async fn redis_conforms(single_connection_client: bool) {
    let server = RedisServer::start();
    let config = SessionConfig {
        url: Some(server.url()),
        single_connection_client,
        max_connections: Some(8),
        ..SessionConfig::default()
    };
    conformance::run_all(|| {
        Arc::new(RedisBackend::from_config(&config).unwrap()) as Arc<dyn SessionBackend>
    })
    .await;
    let store = SessionStore::new(RedisBackend::from_config(&config).unwrap());
    let id = SessionId::generate();
    let _: () = server.cmd(&["SET", &format!("session:{}", id.as_str()), "not a hash"]);
    conformance::corrupt_session_is_reported(&store, &id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_single_connection_conforms() {
    redis_conforms(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_pool_conforms() {
    redis_conforms(false).await;
}

#[tokio::test]
async fn file_format_and_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("a/b/sessions");
    let store = file_store(&root);
    let data = state(&[("user", "\"alice\""), ("n", "3")]);
    let before = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let id = store.create(&data, Some(LONG)).await.unwrap();
    let path = session_path(&root, &id);
    let json: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(json["version"], 1);
    let expires = json["expires_at_ms"].as_u64().unwrap();
    assert!(expires >= before + LONG.as_millis() as u64);
    assert!(expires <= before + LONG.as_millis() as u64 + 60_000);
    assert_eq!(json["state"]["user"], "\"alice\"");
    assert_eq!(json["state"]["n"], "3");

    assert!(store.touch(&id, None).await.unwrap());
    let json: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert!(json["expires_at_ms"].is_null());

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(mode(&path), 0o600);
    }

    // An apply that empties the session removes its file.
    let mut changes = Changes::default();
    changes.remove("user");
    changes.remove("n");
    assert!(store.apply(&id, &changes, None).await.unwrap());
    assert!(!path.exists());
}

/// Readers hammering a session while it is rewritten with states of very different sizes
/// only ever see a complete state, and no temp file survives.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_are_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let store = SessionStore::new(FileBackend::new(root.clone()).unwrap().with_fsync(false));
    let small = state(&[("v", "\"small\"")]);
    let big_value = serde_json::to_string(&"x".repeat(200_000)).unwrap();
    let big = state(&[("v", big_value.as_str())]);
    let id = store.create(&small, None).await.unwrap();
    let path = session_path(&root, &id);

    let writer = {
        let (store, id, small, big) = (store.clone(), id.clone(), small.clone(), big.clone());
        tokio::spawn(async move {
            for i in 0..150 {
                let next = if i % 2 == 0 { &big } else { &small };
                assert!(store.replace(&id, next, None).await.unwrap());
            }
        })
    };
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (store, id, small, big, path) = (
                store.clone(),
                id.clone(),
                small.clone(),
                big.clone(),
                path.clone(),
            );
            tokio::spawn(async move {
                for _ in 0..150 {
                    let loaded = store.load(&id).await.unwrap().expect("session vanished");
                    assert!(loaded == small || loaded == big, "partial state seen");
                    let raw = tokio::fs::read(&path).await.unwrap();
                    serde_json::from_slice::<serde_json::Value>(&raw).expect("partial file seen");
                }
            })
        })
        .collect();
    writer.await.unwrap();
    for reader in readers {
        reader.await.unwrap();
    }
    assert!(temp_files(&root).is_empty(), "temp files left behind");
}

/// Several backend instances on one directory, used from many threads, lose no update.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn independent_instances_share_one_directory() {
    let dir = tempfile::tempdir().unwrap();
    let stores: Vec<_> = (0..4).map(|_| file_store(dir.path())).collect();
    let id = stores[0]
        .create(&state(&[("base", "0")]), Some(LONG))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let (store, id) = (stores[i % 4].clone(), id.clone());
            tokio::spawn(async move {
                let mut changes = Changes::default();
                changes.set(format!("k{i}"), i.to_string());
                assert!(store.apply(&id, &changes, Some(LONG)).await.unwrap());
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(stores[3].load(&id).await.unwrap().unwrap().len(), 101);
}

const CHILD_DIR: &str = "SESSION_FILESTORE_CHILD_DIR";
const CHILD_ID: &str = "SESSION_FILESTORE_CHILD_ID";
const CHILD_TAG: &str = "SESSION_FILESTORE_CHILD_TAG";
const APPLIES_PER_PROCESS: usize = 100;

/// Helper run in child processes by `second_process_applies_are_serialised`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper: run as a child process by second_process_applies_are_serialised"]
async fn cross_process_child() {
    let (Ok(dir), Ok(id), Ok(tag)) = (
        std::env::var(CHILD_DIR),
        std::env::var(CHILD_ID),
        std::env::var(CHILD_TAG),
    ) else {
        return;
    };
    let store = file_store(Path::new(&dir));
    apply_many(&store, &SessionId::parse(&id).unwrap(), &tag).await;
}

async fn apply_many(store: &SessionStore, id: &SessionId, tag: &str) {
    let tasks: Vec<_> = (0..APPLIES_PER_PROCESS)
        .map(|i| {
            let (store, id) = (store.clone(), id.clone());
            let key = format!("{tag}-{i}");
            tokio::spawn(async move {
                let mut changes = Changes::default();
                changes.set(key, i.to_string());
                assert!(store.apply(&id, &changes, Some(LONG)).await.unwrap());
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

/// Two child processes and this one apply changes to one session in one directory at the
/// same time; the shard lock serialises them, so no update is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_process_applies_are_serialised() {
    let dir = tempfile::tempdir().unwrap();
    let store = file_store(dir.path());
    let id = store
        .create(&state(&[("base", "0")]), Some(LONG))
        .await
        .unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = ["child1", "child2"]
        .iter()
        .map(|tag| {
            tokio::process::Command::new(&exe)
                .args(["cross_process_child", "--exact", "--ignored", "--quiet"])
                .env(CHILD_DIR, dir.path())
                .env(CHILD_ID, id.as_str())
                .env(CHILD_TAG, tag)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    apply_many(&store, &id, "parent").await;
    for child in children {
        let output = child.wait_with_output().await.unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "child failed: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        // Make sure the helper really ran rather than being filtered out.
        assert!(stdout.contains("1 passed"), "child did not run: {stdout}");
    }
    let loaded = store.load(&id).await.unwrap().unwrap();
    assert_eq!(
        loaded.len(),
        1 + 3 * APPLIES_PER_PROCESS,
        "lost updates across processes"
    );
    for tag in ["parent", "child1", "child2"] {
        for i in 0..APPLIES_PER_PROCESS {
            assert_eq!(loaded.get(&format!("{tag}-{i}")), Some(&i.to_string()));
        }
    }
}

#[tokio::test]
async fn corrupt_files_are_reported_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let backend = Arc::new(FileBackend::new(root.clone()).unwrap());
    let shared: Arc<dyn SessionBackend> = backend.clone();
    let store = store_of(&shared);
    let cases: &[&[u8]] = &[
        b"",
        b"{not json",
        b"\xff\xfe binary",
        b"[1,2,3]",
        br#"{"version":1,"expires_at_ms":null}"#,
        br#"{"version":1,"expires_at_ms":"soon","state":{"a":"1"}}"#,
        br#"{"version":1,"expires_at_ms":null,"state":{"a":1}}"#,
        br#"{"version":1,"expires_at_ms":null,"state":{"secret":"{not json text"}}"#,
        br#"{"version":2,"expires_at_ms":null,"state":{"a":"1"}}"#,
        br#"{"version":1,"expires_at_ms":null,"state":{}}"#,
    ];
    for (n, content) in cases.iter().enumerate() {
        let id = store.create(&state(&[("a", "1")]), None).await.unwrap();
        let path = session_path(&root, &id);
        fs::write(&path, content).unwrap();

        let err = store.load(&id).await.unwrap_err();
        assert!(err.is_corrupt(), "case {n}: {err:?}");
        assert!(
            !err.to_string().contains("not json text"),
            "case {n}: data leaked: {err}"
        );
        // Writes refuse to overwrite it, and create treats the id as taken.
        for result in [
            store.replace(&id, &state(&[("b", "2")]), None).await,
            store
                .apply(
                    &id,
                    &Changes {
                        set: [("b".into(), "2".into())].into(),
                        remove: vec![],
                    },
                    None,
                )
                .await,
            store.touch(&id, Some(LONG)).await,
        ] {
            assert!(
                matches!(result, Err(StoreError::Corrupt { .. })),
                "case {n}: {result:?}"
            );
        }
        assert!(!shared
            .create(&id, &state(&[("c", "3")]), None)
            .await
            .unwrap());
        assert_eq!(
            fs::read(&path).unwrap(),
            *content,
            "case {n}: corrupt file changed"
        );

        // The sweep reads a file's header only: a damage after a header that reads as live
        // is found by the accesses above, not by the sweep.
        let header_is_live = content.starts_with(br#"{"version":1,"expires_at_ms":null,"state":{"#);
        let report = backend.cleanup().await.unwrap();
        assert_eq!(
            report.corrupt_found,
            usize::from(!header_is_live),
            "case {n}"
        );
        assert!(path.exists(), "case {n}: cleanup removed a corrupt file");

        conformance::corrupt_session_is_reported(&store, &id).await;
        assert!(!path.exists());
    }
}

#[test]
fn unusable_directory_is_a_clear_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    fs::write(&file, b"x").unwrap();
    for root in [file.clone(), file.join("sessions")] {
        let err = FileBackend::new(root.clone()).unwrap_err();
        assert_eq!(err.key, "session_filestore_path");
        let message = err.to_string();
        assert!(message.contains("session_filestore_path"), "{message}");
        assert!(message.contains(&root.display().to_string()), "{message}");
        assert!(message.contains("cannot create"), "{message}");
    }
}

/// When the directory disappears under a running store, operations fail with a typed
/// Unavailable error that does not name the session, and health says down.
#[tokio::test]
async fn io_failures_are_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("sessions");
    let store = file_store(&root);
    assert!(store.health().await[0].up);
    fs::remove_dir_all(&root).unwrap();
    fs::write(&root, b"not a directory").unwrap();

    let err = store.create(&state(&[("a", "1")]), None).await.unwrap_err();
    match &err {
        StoreError::Unavailable {
            backend, message, ..
        } => {
            assert_eq!(backend, "file");
            assert!(!message.is_empty());
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    // The first check's answer is shared for `HEALTH_REUSE`.
    tokio::time::sleep(session_core::HEALTH_REUSE).await;
    let health = store.health().await;
    assert_eq!(health.len(), 1);
    assert_eq!(health[0].name, "file");
    assert!(!health[0].up);
    assert!(health[0].error.is_some());

    let id = SessionId::generate();
    for err in [
        store.load(&id).await.unwrap_err(),
        store
            .apply(&id, &Changes::default(), Some(LONG))
            .await
            .unwrap_err(),
        store
            .replace(&id, &state(&[("a", "1")]), None)
            .await
            .unwrap_err(),
        store.delete(&id).await.unwrap_err(),
    ] {
        assert!(err.is_unavailable(), "{err:?}");
        assert!(!err.to_string().contains(id.as_str()), "{err}");
    }
}

#[tokio::test]
async fn unreadable_session_file_is_unavailable_without_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = file_store(dir.path());
    let id = store.create(&state(&[("a", "1")]), None).await.unwrap();
    let path = session_path(dir.path(), &id);
    // A file where the shard's directory should be: reading the session file is an I/O
    // error (not a directory) even for root, who may read any file. (A directory where
    // the file should be was this test's stand-in: it is no session now, `Corrupt`, as
    // every entry that is not a regular file: `foreign_files_named_like_sessions_block_nothing`.)
    let shard = path.parent().unwrap();
    fs::remove_dir_all(shard).unwrap();
    fs::write(shard, b"not a directory").unwrap();
    let err = store.load(&id).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert!(!err.to_string().contains(id.as_str()), "{err}");
}

#[tokio::test]
async fn expired_files_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let backend = unswept(&root);
    let shared: Arc<dyn SessionBackend> = Arc::new(backend);
    let store = store_of(&shared);
    let data = state(&[("a", "1")]);
    let accessed = store.create(&data, Some(TTL)).await.unwrap();
    let swept: Vec<_> = create_many(&store, &data, 5).await;
    let kept = store.create(&data, Some(LONG)).await.unwrap();
    let forever = store.create(&data, None).await.unwrap();

    // Stray temp files: one stale (left by a crash), one fresh (a write in progress).
    let shard = root.join(&kept.as_str()[..2]);
    let stale = shard.join(".tmp-stale");
    fs::write(&stale, b"{").unwrap();
    fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    let fresh = shard.join(".tmp-fresh");
    fs::write(&fresh, b"{").unwrap();

    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(store.load(&accessed).await.unwrap(), None);
    assert!(
        !session_path(&root, &accessed).exists(),
        "access did not remove the file"
    );
    for id in &swept {
        assert!(session_path(&root, id).exists());
    }

    let cleaner = FileBackend::new(root.clone()).unwrap();
    let report = cleaner.cleanup().await.unwrap();
    assert_eq!(report.expired_removed, swept.len());
    assert_eq!(report.temp_removed, 1);
    assert_eq!(report.corrupt_found, 0);
    for id in &swept {
        assert!(
            !session_path(&root, id).exists(),
            "cleanup left an expired file"
        );
    }
    assert!(!stale.exists());
    assert!(
        fresh.exists(),
        "cleanup removed a temp file that may be in use"
    );
    assert!(store.load(&kept).await.unwrap().is_some());
    assert!(store.load(&forever).await.unwrap().is_some());
}

async fn create_many(
    store: &SessionStore,
    data: &session_core::SessionState,
    n: usize,
) -> Vec<SessionId> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(store.create(data, Some(TTL)).await.unwrap());
    }
    ids
}

/// The background sweeper, started by the first operation, removes expired files that are
/// never accessed again.
#[tokio::test]
async fn background_sweeper_removes_expired_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let store = SessionStore::new(
        FileBackend::new(root.clone())
            .unwrap()
            .with_cleanup_interval(Some(Duration::from_millis(200))),
    );
    let id = store
        .create(&state(&[("a", "1")]), Some(TTL))
        .await
        .unwrap();
    let path = session_path(&root, &id);
    assert!(path.exists());
    until_swept(&path, Duration::from_secs(3)).await;
}

/// Waits until the background sweeper has removed `path`, failing after `within`.
async fn until_swept(path: &Path, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    while path.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no sweeper removed the expired file"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A process that hangs while holding a shard lock costs callers an "unavailable, timed out"
/// answer after the lock timeout, not a request that never returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_elsewhere_times_out_as_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let backend = unswept(dir.path()).with_lock_timeout(Duration::from_millis(200));
    let store = SessionStore::new(backend);
    let id = store.create(&state(&[("n", "1")]), None).await.unwrap();
    // The shard's lock file, taken by "another process" (another open file description).
    let lock_path = session_path(dir.path(), &id)
        .parent()
        .unwrap()
        .join(".lock");
    let held = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&lock_path)
        .unwrap();
    held.lock().unwrap();

    let started = std::time::Instant::now();
    let mut changes = session_core::Changes::default();
    changes.set("n", "2");
    let err = store.apply(&id, &changes, None).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(err.to_string().contains("timed out"), "{err}");
    assert!(!err.to_string().contains(id.as_str()), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "bounded by the lock timeout"
    );

    // Released: the same store works again.
    held.unlock().unwrap();
    assert!(store.apply(&id, &changes, None).await.unwrap());
}

/// A file-store root another local user could replace (an ancestor writable by everyone
/// without the sticky bit, or owned by someone else) is refused at start-up, naming the
/// option; `/tmp`-like sticky directories are fine.
#[cfg(unix)]
#[test]
fn a_root_others_could_replace_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = FileBackend::new(shared.join("sessions")).unwrap_err();
    assert_eq!(err.key, "session_filestore_path");
    assert!(err.expected.contains("without the sticky bit"), "{err}");

    // With the sticky bit, as /tmp has, only an entry's owner may rename it: accepted.
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    FileBackend::new(shared.join("sessions")).unwrap();

    // Writable by others itself: refused.
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = FileBackend::new(open.clone()).unwrap_err();
    assert!(
        err.expected.contains("other users may write in it"),
        "{err}"
    );

    // Owned by another user (a directory someone created first in a shared place).
    let theirs = dir.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    let err = FileBackend::new(theirs.join("sessions")).unwrap_err();
    assert!(err.expected.contains("belongs to user 65534"), "{err}");
}

/// Entries of the store's directory that the store never writes, named like session files:
/// a FIFO, a link to `/dev/zero`, a directory. Each is no session (corrupt, counted by the
/// sweep, left in place), and none blocks: a load, a sweep and the migration each finish.
/// `fs::read` opened anything: a FIFO blocked its reader for ever (the start-up migration,
/// under its lock; the sweeper), a link to `/dev/zero` read without end, and the directory
/// stopped every sweep, leaving expired sessions behind it (a review). A `TTL` too long for
/// an `Instant` does not panic the in-memory store either.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_files_named_like_sessions_block_nothing() {
    use session_core::{migration::migrate_file_store, TtlRule};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let backend = unswept(root);
    for _ in 0..20 {
        let id = SessionId::generate();
        let short = Some(Duration::from_millis(1));
        assert!(backend
            .create(&id, &state(&[("a", "1")]), short)
            .await
            .unwrap());
    }
    let (fifo, link, directory) = (
        SessionId::generate(),
        SessionId::generate(),
        SessionId::generate(),
    );
    for id in [&fifo, &link, &directory] {
        fs::create_dir_all(session_path(root, id).parent().unwrap()).unwrap();
    }
    let made = std::process::Command::new("mkfifo")
        .arg(session_path(root, &fifo))
        .status()
        .unwrap();
    assert!(made.success());
    std::os::unix::fs::symlink("/dev/zero", session_path(root, &link)).unwrap();
    fs::create_dir(session_path(root, &directory)).unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let within = Duration::from_secs(10);
    for id in [&fifo, &link, &directory] {
        let loaded = tokio::time::timeout(within, backend.load(id, None))
            .await
            .expect("a load finishes");
        assert!(
            matches!(loaded, Err(StoreError::Corrupt { .. })),
            "{loaded:?}"
        );
    }
    let report = tokio::time::timeout(within, backend.cleanup())
        .await
        .expect("the sweep finishes")
        .unwrap();
    assert_eq!(report.expired_removed, 20, "{report:?}");
    assert_eq!(report.corrupt_found, 3, "{report:?}");
    let from = Arc::new(unswept(root));
    let migrated = tokio::time::timeout(
        within,
        migrate_file_store(from, Arc::new(MemoryBackend::new()), TtlRule::default()),
    )
    .await
    .expect("the migration finishes")
    .unwrap();
    assert_eq!(migrated.migrated, 0, "{migrated:?}");
    assert_eq!(migrated.corrupt, 3, "{migrated:?}");

    let memory = MemoryBackend::new();
    let id = SessionId::generate();
    assert!(memory
        .create(&id, &state(&[("a", "1")]), Some(Duration::MAX))
        .await
        .unwrap());
    assert!(memory.load(&id, None).await.unwrap().is_some());
}

/// A value that is not JSON text is refused before anything is written, as Redis refuses
/// it: the file store wrote it, and the whole session read as corrupt from then on (every
/// other key of it lost, and every later write refused) for one bad value (a review).
#[tokio::test]
async fn file_values_that_are_not_json_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let backend: Arc<dyn SessionBackend> = Arc::new(unswept(root));
    let id = SessionId::generate();
    let sneaky = state(&[("a", r#"1,"b":2"#)]);
    assert!(backend
        .create(&id, &sneaky, None)
        .await
        .unwrap_err()
        .is_corrupt());
    assert!(!session_path(root, &id).exists());

    let good = state(&[("a", "1"), ("user", "\"alice\"")]);
    assert!(backend.create(&id, &good, None).await.unwrap());
    let before = fs::read(session_path(root, &id)).unwrap();
    let mut bad = Changes::default();
    bad.set("a", "{not json");
    let err = backend.apply(&id, &bad, None).await.unwrap_err();
    assert!(err.is_corrupt() && err.to_string().contains("`a`"), "{err}");
    assert!(!err.to_string().contains("not json"), "{err}");
    assert!(backend
        .replace(&id, &sneaky, None)
        .await
        .unwrap_err()
        .is_corrupt());
    assert_eq!(fs::read(session_path(root, &id)).unwrap(), before);
    assert_eq!(backend.load(&id, None).await.unwrap(), Some(good));
}

/// A stale temp or probe entry that cannot be removed (here a directory with such a name:
/// `unlink` refuses it) is counted as unreadable and skipped: it failed the whole sweep,
/// every time, and expired sessions piled up behind it (a review).
#[tokio::test]
async fn a_stale_temp_entry_that_cannot_be_removed_does_not_stop_the_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let backend = unswept(root);
    let mut expired = Vec::new();
    for _ in 0..5 {
        let id = SessionId::generate();
        let short = Some(Duration::from_millis(1));
        assert!(backend
            .create(&id, &state(&[("a", "1")]), short)
            .await
            .unwrap());
        expired.push(id);
    }
    let shard = session_path(root, &expired[0])
        .parent()
        .unwrap()
        .to_path_buf();
    let old = SystemTime::now() - Duration::from_secs(3600);
    for stuck in [shard.join(".tmp-stuck"), root.join(".probe-stuck")] {
        fs::create_dir(&stuck).unwrap();
        fs::write(stuck.join("inside"), b"x").unwrap();
        fs::File::open(&stuck).unwrap().set_modified(old).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(10)).await;

    let report = backend.cleanup().await.unwrap();
    assert_eq!(report.expired_removed, expired.len(), "{report:?}");
    assert_eq!(report.unreadable, 2, "{report:?}");
    for id in &expired {
        assert!(!session_path(root, id).exists());
    }
}

/// The background sweeper runs on the runtime of the first operation. When that runtime
/// shuts down (a start-up check run in a runtime of its own, an actix-web worker restarted
/// after a panic: each worker has its own runtime), the task went with it, and no other
/// was ever started: expired sessions that were never accessed again stayed for good (a
/// review). The next operation in a live runtime starts it again.
#[test]
fn the_sweeper_starts_again_when_its_runtime_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let store = SessionStore::new(
        FileBackend::new(root.clone())
            .unwrap()
            .with_cleanup_interval(Some(Duration::from_millis(200))),
    );
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    first.block_on(async {
        assert_eq!(store.load(&SessionId::generate()).await.unwrap(), None);
    });
    drop(first);

    let next = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    next.block_on(async {
        let id = store
            .create(&state(&[("a", "1")]), Some(TTL))
            .await
            .unwrap();
        until_swept(&session_path(&root, &id), Duration::from_secs(30)).await;
    });
}

/// A load that finds a session expired answers "no session" even when it cannot remove the
/// file now (its shard lock held by a hung process, a directory gone read-only): it failed
/// as unavailable, a 503 for a request whose answer was known, while loads of live sessions
/// went on working (a review). The sweep removes the file later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_loads_as_none_when_its_file_cannot_be_removed_now() {
    let dir = tempfile::tempdir().unwrap();
    let backend = unswept(dir.path()).with_lock_timeout(Duration::from_millis(100));
    let id = SessionId::generate();
    let short = Some(Duration::from_millis(1));
    assert!(backend
        .create(&id, &state(&[("n", "1")]), short)
        .await
        .unwrap());
    tokio::time::sleep(Duration::from_millis(10)).await;
    let path = session_path(dir.path(), &id);
    let held = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path.parent().unwrap().join(".lock"))
        .unwrap();
    held.lock().unwrap();

    assert_eq!(backend.load(&id, None).await.unwrap(), None);
    assert_eq!(backend.load(&id, Some(LONG)).await.unwrap(), None);
    assert!(path.exists());

    held.unlock().unwrap();
    assert_eq!(backend.cleanup().await.unwrap().expired_removed, 1);
    assert!(!path.exists());
}

/// A TTL beyond `MAX_TTL` (a framework's `Duration::MAX`) is capped to it, as the Redis
/// backend caps it: the file store saturated it to `expires_at_ms = 2^64 - 1`, which its
/// format says converts directly to Redis `PEXPIREAT` (Redis refuses that), and
/// `load_with_ttl` answered 584 million years (a review).
#[tokio::test]
async fn file_ttls_are_capped_to_max_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let backend = unswept(root);
    let now_ms = || {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    };
    let max_ms = session_core::MAX_TTL.as_millis() as u64;
    let id = SessionId::generate();
    let expires_at = |id: &SessionId| -> u64 {
        let json: serde_json::Value =
            serde_json::from_slice(&fs::read(session_path(root, id)).unwrap()).unwrap();
        json["expires_at_ms"].as_u64().unwrap()
    };
    let huge = Some(Duration::MAX);
    assert!(backend
        .create(&id, &state(&[("a", "1")]), huge)
        .await
        .unwrap());
    assert!(expires_at(&id) <= now_ms() + max_ms);
    let (_, left) = backend.load_with_ttl(&id).await.unwrap().unwrap();
    assert!(left.unwrap() <= session_core::MAX_TTL, "{left:?}");

    let mut changes = Changes::default();
    changes.set("b", "2");
    assert!(backend.apply(&id, &changes, huge).await.unwrap());
    assert!(expires_at(&id) <= now_ms() + max_ms);
    assert!(backend.touch(&id, huge).await.unwrap());
    assert!(expires_at(&id) <= now_ms() + max_ms);
    assert!(backend.load(&id, huge).await.unwrap().is_some());
    assert!(expires_at(&id) <= now_ms() + max_ms);
}

/// The session file of `id` replaced by a valid record of `state` padded with whitespace to
/// `bytes`: JSON that reads as the session, but larger than the store would write it.
fn pad_session_file(root: &Path, id: &SessionId, bytes: usize) {
    let record = serde_json::json!({"version": 1, "expires_at_ms": null, "state": {"a": "1"}});
    let mut text = record.to_string().into_bytes();
    text.resize(bytes, b' ');
    fs::write(session_path(root, id), text).unwrap();
}

/// A session file larger than any the configured `session_redis_max_session_size` lets the
/// store write (a disk error, an operator's mistake, a local user's write) is corrupt: no
/// session, and not read (a load read any file up to 2 GiB whole, whatever the limit).
#[tokio::test]
async fn a_file_larger_than_the_configured_limit_allows_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("sessions");
    let config = SessionConfig::builder()
        .set("session_redis_mode", "False")
        .set("session_filestore_path", root.to_str().unwrap())
        .set("session_redis_max_session_size", "1024")
        .build()
        .unwrap();
    let store = SessionStore::from_config(&config).await.unwrap();
    let id = store.create(&state(&[("a", "1")]), None).await.unwrap();
    pad_session_file(&root, &id, 8 * 1024 + 256);
    assert_eq!(
        store.load(&id).await.unwrap(),
        Some(state(&[("a", "1")])),
        "within what the store may write"
    );
    pad_session_file(&root, &id, 1 << 20);
    let err = store.load(&id).await.unwrap_err();
    assert!(err.is_corrupt(), "{err:?}");
    assert!(!err.to_string().contains(id.as_str()), "{err}");
    assert!(session_path(&root, &id).exists(), "kept for inspection");
    assert!(
        store.delete(&id).await.unwrap(),
        "a logout still removes it"
    );
}

/// The same bound on a backend built by hand: a larger file is corrupt for loads and is
/// counted by the sweep (which keeps it); the backend never writes a file above its own
/// bound (concurrent writes can each pass the store's check and together exceed it), so
/// what it wrote it can read. Without a limit, the bound is the old one.
#[tokio::test]
async fn the_file_store_reads_and_writes_files_up_to_the_bound_of_its_limit() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let limited = Arc::new(unswept(&root).with_max_session_size(Some(64)));
    let id = SessionId::generate();
    assert!(limited
        .create(&id, &state(&[("a", "1")]), None)
        .await
        .unwrap());
    pad_session_file(&root, &id, 8 * 64 + 257);
    assert!(matches!(
        limited.load(&id, None).await,
        Err(StoreError::Corrupt { .. })
    ));
    let report = limited.cleanup().await.unwrap();
    assert_eq!(report.corrupt_found, 1, "{report:?}");
    assert!(session_path(&root, &id).exists());

    // The worst case of the encoding: a one-byte control character as key (six bytes
    // escaped) per one-byte value, up to the limit, is written and read back.
    let worst: SessionState = (0u8..32)
        .map(|n| (format!("{}", char::from(n)), "0".to_owned()))
        .collect();
    let fits = SessionId::generate();
    assert!(limited.create(&fits, &worst, None).await.unwrap());
    assert_eq!(limited.load(&fits, None).await.unwrap(), Some(worst));
    // Above it, the backend refuses the write and leaves the stored session as it was.
    let over: SessionState = [("big".to_owned(), format!("\"{}\"", "x".repeat(1024)))].into();
    let err = limited.replace(&fits, &over, None).await.unwrap_err();
    assert!(err.is_too_large(), "{err:?}");
    assert!(limited.load(&fits, None).await.unwrap().is_some());

    let unlimited = unswept(&root);
    assert_eq!(
        unlimited.load(&id, None).await.unwrap(),
        Some(state(&[("a", "1")]))
    );
}

/// The sweep learns expiries from the files' headers, and stays right where a header is not
/// as the store writes it or the rest of the file is damaged: an expired file written
/// differently (fields reordered, spaces) is still found by reading it whole; one whose
/// header says expired but whose rest is damaged is counted as corrupt and kept, as is a
/// damaged one whose header says live; a live session is kept.
#[tokio::test]
async fn the_sweep_decides_by_the_header_and_removes_no_corrupt_or_live_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let backend = unswept(&root);
    let files: [&[u8]; 5] = [
        br#"{"expires_at_ms":1,"version":1,"state":{"a":"1"}}"#,
        br#"{ "version": 1, "expires_at_ms": 1, "state": {"a": "1"} }"#,
        br#"{"version":1,"expires_at_ms":1,"state":{"a":"{not json"}}"#,
        br#"{"version":1,"expires_at_ms":null,"state":{"a":"{not json"}}"#,
        br#"{"version":1,"expires_at_ms":null,"state":{"a":"1"}}"#,
    ];
    let mut ids = Vec::new();
    for content in files {
        let id = SessionId::generate();
        assert!(backend
            .create(&id, &state(&[("a", "1")]), None)
            .await
            .unwrap());
        fs::write(session_path(&root, &id), content).unwrap();
        ids.push(id);
    }
    let report = backend.cleanup().await.unwrap();
    assert_eq!(report.expired_removed, 2, "{report:?}");
    assert_eq!(report.corrupt_found, 1, "{report:?}");
    assert_eq!(report.unreadable, 0, "{report:?}");
    let left: Vec<bool> = ids
        .iter()
        .map(|id| session_path(&root, id).exists())
        .collect();
    assert_eq!(left, [false, false, true, true, true]);
    assert!(matches!(
        backend.load(&ids[3], None).await,
        Err(StoreError::Corrupt { .. })
    ));
    assert_eq!(
        backend.load(&ids[4], None).await.unwrap(),
        Some(state(&[("a", "1")]))
    );
}
