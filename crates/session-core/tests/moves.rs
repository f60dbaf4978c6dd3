//! A logout at the same instant as a move between stores stays a logout.
//!
//! Each test puts 300 sessions in a source store, then sends, for every session at once, a
//! load (which moves it into the target) and a delete (the logout), and counts what is left
//! anywhere afterwards: nothing may be. The races run inside one store (one process: moves
//! and deletes of one id also wait for each other) and across two stores over the same
//! servers and directory (two processes: only the order of the operations protects them).
//!
//! Before the fix, the same races left 174 of 300 (file-store migration) and 156 of 300
//! (multi-backend) sessions alive after their logout.

use std::{path::Path, sync::Arc};

use futures_util::future::join_all;
use session_core::{
    backends::file::FileBackend, SessionBackend, SessionConfig, SessionId, SessionState,
    SessionStore,
};
use session_testkit::RedisServer;

const SESSIONS: usize = 300;

fn state() -> SessionState {
    SessionState::from([("n".to_owned(), "1".to_owned())])
}

fn files(dir: &Path) -> FileBackend {
    FileBackend::new(dir.to_path_buf())
        .unwrap()
        .with_cleanup_interval(None)
}

/// `SESSIONS` sessions written straight into `source`.
async fn seed(source: &dyn SessionBackend) -> Vec<SessionId> {
    let mut ids = Vec::with_capacity(SESSIONS);
    for _ in 0..SESSIONS {
        let id = SessionId::generate();
        assert!(source.create(&id, &state(), None).await.unwrap());
        ids.push(id);
    }
    ids
}

/// For every id at once: a load on `reader` and a delete on `deleter` (the same store, or
/// two stores standing for two processes). Every call must succeed.
async fn race(reader: &SessionStore, deleter: &SessionStore, ids: &[SessionId]) {
    let pairs = ids.iter().map(|id| async move {
        let (loaded, deleted) = tokio::join!(reader.load(id), deleter.delete(id));
        loaded.expect("load");
        deleted.expect("delete");
    });
    join_all(pairs).await;
}

/// How many of `ids` any of `stores` still returns, and how many keys Redis holds.
async fn survivors(stores: &[&dyn SessionBackend], ids: &[SessionId]) -> usize {
    let mut alive = 0;
    for id in ids {
        for store in stores {
            if store.load(id, None).await.unwrap().is_some() {
                alive += 1;
            }
        }
    }
    alive
}

fn redis_keys(server: &RedisServer, pattern: &str) -> usize {
    server.cmd::<Vec<String>>(&["KEYS", pattern]).len()
}

fn migration_config(server: &RedisServer, dir: &Path) -> SessionConfig {
    SessionConfig::builder()
        .set("session_redis_url", &server.url())
        .set("session_filestore_path", dir.to_str().unwrap())
        .set("session_redis_migrate_from_filestore", "True")
        .set("session_redis_socket_timeout", "2")
        .build()
        .unwrap()
}

/// The issue's reproduction: the migration could not run at start-up (Redis down), Redis
/// came back, and every session is read and logged out at the same instant while it is
/// still in its file.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logout_racing_the_file_store_migration_sticks() {
    for two_processes in [false, true] {
        let server = RedisServer::start();
        let dir = tempfile::tempdir().unwrap();
        let source = files(dir.path());
        let ids = seed(&source).await;
        let config = migration_config(&server, dir.path());
        server.kill();
        let a = SessionStore::from_config(&config).await.unwrap();
        let b = if two_processes {
            SessionStore::from_config(&config).await.unwrap()
        } else {
            a.clone()
        };
        server.restart();

        race(&a, &b, &ids).await;

        let redis = session_core::backends::redis::RedisBackend::from_config(&SessionConfig {
            url: Some(server.url()),
            ..SessionConfig::default()
        })
        .unwrap();
        let left = survivors(&[&redis, &source], &ids).await;
        assert_eq!(
            left, 0,
            "{left} of {SESSIONS} logged-out sessions came back (two processes: {two_processes})"
        );
        assert_eq!(redis_keys(&server, "session:*"), 0);
    }
}

/// acs_redis_multi_sessions' move: Redis [read, write] first, `source` [read, delete].
fn multi_config(target: &RedisServer, source_setting: &str) -> SessionConfig {
    let literal = format!(
        r#"(
    {{"backend": "redis", "modes": ["read", "write"], "setting": {{
        'SESSION_REDIS_URL': '{}', 'SESSION_REDIS_PREFIX': 'new:', 'SESSION_REDIS_SOCKET_TIMEOUT': 2}}}},
    {{"backend": "old", "modes": ["read", "delete"], "setting": {{ {source_setting} }}}},
)"#,
        target.url()
    );
    SessionConfig::from_sources(None, [("ACS_SESSION_MULTISESSIONS_POOL", literal)]).unwrap()
}

async fn multi_race(config: &SessionConfig, source: Arc<dyn SessionBackend>, target: &RedisServer) {
    for two_processes in [false, true] {
        let ids = seed(source.as_ref()).await;
        let a = SessionStore::from_config(config).await.unwrap();
        let b = if two_processes {
            SessionStore::from_config(config).await.unwrap()
        } else {
            a.clone()
        };

        race(&a, &b, &ids).await;

        let left = survivors(&[source.as_ref()], &ids).await + redis_keys(target, "new:*");
        assert_eq!(
            left, 0,
            "{left} of {SESSIONS} logged-out sessions came back (two processes: {two_processes})"
        );
        for id in &ids {
            assert!(a.load(id).await.unwrap().is_none());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logout_racing_a_multi_backend_move_from_files_sticks() {
    let target = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let setting = format!(
        "'SESSION_REDIS_MODE': False, 'SESSION_FILESTORE_PATH': '{}'",
        dir.path().display()
    );
    let config = multi_config(&target, &setting);
    multi_race(&config, Arc::new(files(dir.path())), &target).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logout_racing_a_multi_backend_move_between_redis_servers_sticks() {
    let target = RedisServer::start();
    let old = RedisServer::start();
    let setting = format!(
        "'SESSION_REDIS_URL': '{}', 'SESSION_REDIS_PREFIX': 'old:'",
        old.url()
    );
    let config = multi_config(&target, &setting);
    let source = session_core::backends::redis::RedisBackend::from_config(&SessionConfig {
        url: Some(old.url()),
        prefix: "old:".into(),
        ..SessionConfig::default()
    })
    .unwrap();
    multi_race(&config, Arc::new(source), &target).await;
    assert_eq!(redis_keys(&old, "old:*"), 0);
}

/// Without a logout, a move keeps every session, once, in the target: the race tests above
/// would pass trivially if moves lost sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_loads_move_each_session_once() {
    let target = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let setting = format!(
        "'SESSION_REDIS_MODE': False, 'SESSION_FILESTORE_PATH': '{}'",
        dir.path().display()
    );
    let config = multi_config(&target, &setting);
    let source = files(dir.path());
    let ids = seed(&source).await;
    let store = SessionStore::from_config(&config).await.unwrap();
    let loads = ids.iter().map(|id| {
        let store = store.clone();
        async move {
            let (a, b) = tokio::join!(store.load(id), store.load(id));
            (a.unwrap(), b.unwrap())
        }
    });
    for (a, b) in join_all(loads).await {
        assert_eq!(a, Some(state()));
        assert_eq!(b, Some(state()));
    }
    assert_eq!(redis_keys(&target, "new:*"), SESSIONS);
    assert_eq!(source.session_ids().await.unwrap().len(), 0);
}

/// `session_core::mover`, as `sessionctl migrate` drives it (a batch with many moves in
/// flight, from another process than the application's): every session moved (or copied,
/// with `keep_source`) while the application logs each one out, source first as a
/// multi-backend does. None may survive. From one Redis server to another, and from the file
/// store (whose batch reads and deletes work shard by shard) to Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logout_racing_a_batch_of_the_mover_sticks() {
    use session_core::{backends::redis::RedisBackend, mover::Mover, TtlRule};
    for (keep_source, from_files) in [(false, false), (true, false), (false, true), (true, true)] {
        let a = (!from_files).then(RedisServer::start);
        let b = RedisServer::start();
        let dir = tempfile::tempdir().unwrap();
        let backend = |server: &RedisServer| -> Arc<dyn SessionBackend> {
            Arc::new(
                RedisBackend::from_config(&SessionConfig {
                    url: Some(server.url()),
                    ..SessionConfig::default()
                })
                .unwrap(),
            )
        };
        let source: Arc<dyn SessionBackend> = if from_files {
            Arc::new(files(dir.path()))
        } else {
            backend(a.as_ref().unwrap())
        };
        let target = backend(&b);
        let ids = seed(source.as_ref()).await;
        let mover = Mover::new(source.clone(), target.clone(), TtlRule::default())
            .keep_source(keep_source)
            .batch(64);
        let logouts = ids.iter().map(|id| {
            let (source, target) = (source.clone(), target.clone());
            async move {
                source.delete(id).await.expect("delete from the source");
                target.delete(id).await.expect("delete from the target");
            }
        });
        let (outcomes, _) = tokio::join!(mover.move_many(&ids), join_all(logouts));
        assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
        let left = survivors(&[source.as_ref(), target.as_ref()], &ids).await;
        assert_eq!(
            left, 0,
            "{left} of {SESSIONS} logged-out sessions came back (keep_source: {keep_source}, from files: {from_files})"
        );
    }
}

// Two moves of one session at once, and a move whose last request is answered twice
// (sixth review of the moves). A move's last step retires the source, leaving a moved
// marker: a plain delete there answered "not there" both to another process's move and to
// the move's own delete sent again after a lost reply, and the move took either for a
// logout and removed the only copy left. Before the markers, the first test lost 297 of
// 300 sessions, and every session of a batch whose retire reply was lost was gone.

/// Two processes (two stores over the same servers or directory) load every session at
/// the same instant, as a browser's parallel requests do when two workers take them on the
/// first visit after a switch. No logout anywhere: both loads find the session, and it is
/// in the target once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_moving_one_session_at_once_keep_it() {
    for from_files in [false, true] {
        let target = RedisServer::start();
        let old = (!from_files).then(RedisServer::start);
        let dir = tempfile::tempdir().unwrap();
        let (setting, source): (String, Arc<dyn SessionBackend>) = match &old {
            Some(old) => (
                format!(
                    "'SESSION_REDIS_URL': '{}', 'SESSION_REDIS_PREFIX': 'old:'",
                    old.url()
                ),
                Arc::new(
                    session_core::backends::redis::RedisBackend::from_config(&SessionConfig {
                        url: Some(old.url()),
                        prefix: "old:".into(),
                        ..SessionConfig::default()
                    })
                    .unwrap(),
                ),
            ),
            None => (
                format!(
                    "'SESSION_REDIS_MODE': False, 'SESSION_FILESTORE_PATH': '{}'",
                    dir.path().display()
                ),
                Arc::new(files(dir.path())),
            ),
        };
        let config = multi_config(&target, &setting);
        let ids = seed(source.as_ref()).await;
        let a = SessionStore::from_config(&config).await.unwrap();
        let b = SessionStore::from_config(&config).await.unwrap();
        let loads = ids.iter().map(|id| {
            let (a, b) = (a.clone(), b.clone());
            async move {
                let (x, y) = tokio::join!(a.load(id), b.load(id));
                (x.unwrap(), y.unwrap())
            }
        });
        let answers = join_all(loads).await;
        let missed = answers
            .iter()
            .filter(|(x, y)| x.as_ref() != Some(&state()) || y.as_ref() != Some(&state()))
            .count();
        assert_eq!(
            missed, 0,
            "{missed} of {SESSIONS} pairs of loads answered no session (from files: {from_files})"
        );
        let mut kept = 0;
        for id in &ids {
            kept += usize::from(a.load(id).await.unwrap() == Some(state()));
        }
        assert_eq!(kept, SESSIONS, "sessions lost (from files: {from_files})");
        assert_eq!(redis_keys(&target, "new:*"), SESSIONS);
        // What is left where they were is markers: no session to any reader.
        assert_eq!(survivors(&[source.as_ref()], &ids).await, 0);
        if from_files {
            assert_eq!(files(dir.path()).session_ids().await.unwrap().len(), 0);
        }
    }
}

/// The same race step by step, with a write in between: process 2's move takes process
/// 3's copy and retires the source; its request writes a key (acknowledged); process 3's
/// retire then finds the marker, not a logout, and keeps the copy with the write.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_acknowledged_write_survives_another_processs_move_of_the_session() {
    use session_core::{
        backends::multi::MultiBackend,
        testing::probe::{Op, ProbeBackend},
        BackendMode, Changes, TtlRule,
    };
    let source = ProbeBackend::memory();
    let target = ProbeBackend::memory();
    let process = || {
        MultiBackend::new(
            vec![
                (
                    "new".into(),
                    vec![BackendMode::Read, BackendMode::Write],
                    Arc::new(target.clone()) as Arc<dyn SessionBackend>,
                ),
                (
                    "old".into(),
                    vec![BackendMode::Read, BackendMode::Delete],
                    Arc::new(source.clone()) as Arc<dyn SessionBackend>,
                ),
            ],
            TtlRule::default(),
        )
    };
    let (p2, p3) = (process(), process());
    let id = SessionId::generate();
    assert!(source.create(&id, &state(), None).await.unwrap());
    // Process 2 has read the source and found no copy; its create waits.
    let p2_create = target.pause(Op::Create);
    let p2_load = tokio::spawn({
        let (p2, id) = (p2.clone(), id.clone());
        async move { p2.load(&id, None).await }
    });
    p2_create.reached().await;
    // Process 3 moves it all the way to its retire, which waits.
    let p3_retire = source.pause(Op::Delete);
    let p3_load = tokio::spawn({
        let (p3, id) = (p3.clone(), id.clone());
        async move { p3.load(&id, None).await }
    });
    p3_retire.reached().await;
    p2_create.release();
    assert_eq!(p2_load.await.unwrap().unwrap(), Some(state()));
    let mut changes = Changes::default();
    changes.set("cart", "[1]");
    assert!(
        p2.apply(&id, &changes, None).await.unwrap(),
        "the write is acknowledged"
    );
    p3_retire.release();
    assert_eq!(
        p3_load.await.unwrap().unwrap(),
        Some(state()),
        "no false logout"
    );
    let now = p2
        .load(&id, None)
        .await
        .unwrap()
        .expect("the session is kept");
    assert_eq!(
        now.get("cart").map(String::as_str),
        Some("[1]"),
        "with the write"
    );
}

/// A Redis source behind a proxy that loses one reply: the source's requests go through
/// it, the target's do not.
fn source_behind(proxy: &session_testkit::Proxy, timeout: Option<f64>) -> Arc<dyn SessionBackend> {
    Arc::new(
        session_core::backends::redis::RedisBackend::from_config(&SessionConfig {
            url: Some(format!("redis://{}", proxy.addr())),
            socket_timeout: timeout,
            ..SessionConfig::default()
        })
        .unwrap(),
    )
}

fn redis_at(server: &RedisServer) -> Arc<dyn SessionBackend> {
    Arc::new(
        session_core::backends::redis::RedisBackend::from_config(&SessionConfig {
            url: Some(server.url()),
            ..SessionConfig::default()
        })
        .unwrap(),
    )
}

/// The reply to a move's retire is lost after Redis ran it (the client sends it again on a
/// new connection), or comes after the socket timeout (the move asks again): the move stands
/// and every session is in the target. One move, a load through a multi-backend, and a
/// batch of 200 (one pipeline, as `sessionctl migrate` sends).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_or_late_reply_to_a_moves_retire_keeps_the_sessions() {
    use session_core::{
        backends::multi::MultiBackend,
        mover::{MoveOutcome, Mover},
        testing::probe::{Op, ProbeBackend},
        BackendMode, TtlRule,
    };
    const BATCH: usize = 200;
    for (late, count) in [(false, 1), (false, BATCH), (true, BATCH)] {
        let old = RedisServer::start();
        let new = RedisServer::start();
        let proxy = Arc::new(session_testkit::Proxy::start(old.addr()));
        // With a timeout, the reply comes a second after the client gave up on it.
        let source = source_behind(&proxy, late.then_some(0.3));
        // The target's creates are held: the proxy is armed there, when the next reply
        // through it is the retire's.
        let target = ProbeBackend::wrap(redis_at(&new));
        let mut ids = Vec::new();
        for _ in 0..count {
            let id = SessionId::generate();
            assert!(source.create(&id, &state(), None).await.unwrap());
            ids.push(id);
        }
        let held = target.pause(Op::Create);
        let mover =
            Mover::new(source.clone(), Arc::new(target.clone()), TtlRule::default()).batch(BATCH);
        let moving = tokio::spawn({
            let ids = ids.clone();
            async move { mover.move_many(&ids).await }
        });
        held.reached().await;
        proxy.lose_next_reply(move || {
            if late {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        });
        held.release();
        let outcomes = moving.await.unwrap();
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, Ok(MoveOutcome::Created))),
            "late: {late}, {count} sessions: {:?}",
            &outcomes[..3.min(count)]
        );
        let kept = survivors(&[&target], &ids).await;
        assert_eq!(kept, count, "late: {late}: sessions lost");
        assert_eq!(survivors(&[source.as_ref()], &ids).await, 0);
    }

    // Through a multi-backend's load, the reply of its retire lost.
    let old = RedisServer::start();
    let new = RedisServer::start();
    let proxy = session_testkit::Proxy::start(old.addr());
    let source = ProbeBackend::wrap(source_behind(&proxy, None));
    let target = redis_at(&new);
    let multi = MultiBackend::new(
        vec![
            (
                "new".into(),
                vec![BackendMode::Read, BackendMode::Write],
                target.clone(),
            ),
            (
                "old".into(),
                vec![BackendMode::Read, BackendMode::Delete],
                Arc::new(source.clone()),
            ),
        ],
        TtlRule::default(),
    );
    let id = SessionId::generate();
    assert!(source.create(&id, &state(), None).await.unwrap());
    let retire = source.pause(Op::Delete);
    let loading = tokio::spawn({
        let (multi, id) = (multi.clone(), id.clone());
        async move { multi.load(&id, None).await }
    });
    retire.reached().await;
    proxy.lose_next_reply(|| {});
    retire.release();
    assert_eq!(loading.await.unwrap().unwrap(), Some(state()));
    assert_eq!(target.load(&id, None).await.unwrap(), Some(state()));
}

/// The moved-marker checks on each backend that keeps markers (the pool and the cluster
/// run them in their own tests); markers expire on Redis and the file store never lists
/// them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_backend_retires_with_a_marker_a_logout_removes() {
    use session_core::{backends::memory::MemoryBackend, testing::conformance};
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let file: Arc<dyn SessionBackend> = Arc::new(files(dir.path()));
    for backend in [
        Arc::new(MemoryBackend::new()),
        file.clone(),
        redis_at(&server),
    ] {
        conformance::moved_markers(&backend).await;
    }
    let id = SessionId::generate();
    for b in [&file, &redis_at(&server)] {
        assert!(b.create(&id, &state(), None).await.unwrap());
        b.retire_many(std::slice::from_ref(&id)).await[0]
            .as_ref()
            .unwrap();
    }
    let ttl: i64 = server.cmd(&["PTTL", &format!("session:{}", id.as_str())]);
    assert!(ttl > 0 && ttl <= session_core::MOVED_MARKER_TTL.as_millis() as i64);
    assert_eq!(files(dir.path()).session_ids().await.unwrap().len(), 0);
}
