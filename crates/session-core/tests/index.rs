//! `session_redis_index_key`: the index of sessions by the value of one key ("log this user
//! out everywhere"), on every backend kind, against real servers: memory, file store, Redis
//! (standalone, Sentinel, Cluster), the weighted pool, the multi-backend while sessions move,
//! and the start-up migration from the file store.

use std::{
    collections::HashSet,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use session_core::{
    backends::{file::FileBackend, memory::MemoryBackend},
    Changes, IndexName, SessionBackend, SessionConfig, SessionId, SessionState, SessionStore,
};
use session_testkit::{ClusterTopology, RedisServer, SentinelTopology};

const TTL: Option<Duration> = Some(Duration::from_secs(600));

fn user(name: &str) -> SessionState {
    SessionState::from([
        ("user".to_owned(), format!("{name:?}")),
        ("n".to_owned(), "0".to_owned()),
    ])
}

fn set(key: &str, value: &str) -> Changes {
    let mut changes = Changes::default();
    changes.set(key, value);
    changes
}

/// `n` sessions of `name` in a file store that kept no index (a deployment before the
/// index), in a directory the caller keeps.
async fn in_unindexed_files(name: &str, n: usize) -> (tempfile::TempDir, Vec<SessionId>) {
    let dir = tempfile::tempdir().unwrap();
    let files = SessionStore::new(
        FileBackend::new(dir.path().to_path_buf())
            .unwrap()
            .with_cleanup_interval(None),
    );
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(files.create(&user(name), TTL).await.unwrap());
    }
    (dir, ids)
}

fn sorted(mut ids: Vec<SessionId>) -> Vec<String> {
    let mut out: Vec<String> = ids.drain(..).map(|id| id.as_str().to_owned()).collect();
    out.sort();
    out
}

fn config(pairs: &[(&str, &str)]) -> SessionConfig {
    let mut builder = SessionConfig::builder()
        .set("session_redis_index_key", "user")
        .set("session_redis_socket_timeout", "1");
    for (k, v) in pairs {
        builder = builder.set(k, v);
    }
    builder.build().unwrap()
}

/// The whole contract, through the store, on one backend: what counts as one of alice's
/// sessions (created, created with an id, logged in later), what does not (switched to
/// another user, logged out, replaced), the value compared as JSON, and the logout
/// everywhere that sticks.
async fn contract(store: &SessionStore, label: &str) {
    assert_eq!(store.index_key(), Some("user"), "{label}");
    let created = store.create(&user("alice"), TTL).await.unwrap();
    let with_id = SessionId::generate();
    assert!(store
        .create_with_id(&with_id, &user("alice"), TTL)
        .await
        .unwrap());
    // A session that logs in after it was made: the write that sets `user` indexes it.
    let later = store
        .create(&SessionState::from([("n".into(), "1".into())]), TTL)
        .await
        .unwrap();
    assert!(store
        .apply(&later, &set("user", "\"alice\""), TTL)
        .await
        .unwrap());
    let bob = store.create(&user("bob"), TTL).await.unwrap();
    let switched = store.create(&user("alice"), TTL).await.unwrap();
    assert!(store
        .apply(&switched, &set("user", "\"carol\""), TTL)
        .await
        .unwrap());
    let logged_out = store.create(&user("alice"), TTL).await.unwrap();
    assert!(store.delete(&logged_out).await.unwrap());
    let replaced = store.create(&user("alice"), TTL).await.unwrap();
    assert!(store.replace(&replaced, &user("dave"), TTL).await.unwrap());

    let alices = sorted(vec![created.clone(), with_id.clone(), later.clone()]);
    assert_eq!(
        sorted(store.find_indexed("\"alice\"").await.unwrap()),
        alices,
        "{label}"
    );
    // The same JSON value, spelled another way.
    assert_eq!(
        sorted(store.find_indexed(" \"al\\u0069ce\" ").await.unwrap()),
        alices,
        "{label}"
    );
    assert_eq!(
        store.find_indexed("\"carol\"").await.unwrap(),
        vec![switched.clone()],
        "{label}"
    );
    assert!(store.find_indexed("\"nobody\"").await.unwrap().is_empty());

    assert_eq!(
        store.delete_indexed("\"alice\"").await.unwrap(),
        3,
        "{label}"
    );
    for id in [&created, &with_id, &later] {
        assert_eq!(store.load(id).await.unwrap(), None, "{label}");
        // A request still holding the session cannot bring it back.
        assert!(!store.apply(id, &set("n", "9"), TTL).await.unwrap());
    }
    assert!(store.find_indexed("\"alice\"").await.unwrap().is_empty());
    assert_eq!(store.delete_indexed("\"alice\"").await.unwrap(), 0);
    for id in [&bob, &switched, &replaced] {
        assert!(store.load(id).await.unwrap().is_some(), "{label}");
    }
}

/// Writes hammer alice's sessions while she is logged out everywhere: once the logout has
/// returned, none of them exists, and none comes back.
async fn logout_racing_writes(store: &SessionStore, label: &str) {
    let mut ids = Vec::new();
    for _ in 0..16 {
        ids.push(store.create(&user("alice"), TTL).await.unwrap());
    }
    let ids = Arc::new(ids);
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (store, ids, stop) = (store.clone(), ids.clone(), stop.clone());
            tokio::spawn(async move {
                let mut round = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    round += 1;
                    for id in ids.iter() {
                        // Some set `user` again (a re-login on the same session): indexed again.
                        let changes = if round.is_multiple_of(3) {
                            set("user", "\"alice\"")
                        } else {
                            set(&format!("w{w}"), &round.to_string())
                        };
                        let _ = store.apply(id, &changes, TTL).await;
                        // The memory and file backends never wait: let the logout run.
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let deleted = store.delete_indexed("\"alice\"").await.unwrap();
    assert_eq!(deleted, ids.len(), "{label}");
    for id in ids.iter() {
        assert_eq!(store.load(id).await.unwrap(), None, "{label}");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    for id in ids.iter() {
        assert_eq!(store.load(id).await.unwrap(), None, "{label}: came back");
    }
    assert!(store.find_indexed("\"alice\"").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory() {
    let store = SessionStore::new(MemoryBackend::new().with_index_key("user"));
    contract(&store, "memory").await;
    logout_racing_writes(&store, "memory").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_store() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("sessions");
    let store = SessionStore::from_config(&config(&[
        ("session_redis_mode", "False"),
        ("session_filestore_path", root.to_str().unwrap()),
    ]))
    .await
    .unwrap();
    contract(&store, "file").await;
    logout_racing_writes(&store, "file").await;

    // Stale names older than the grace period are dropped by a lookup; a young one stays
    // (it may belong to a write in flight).
    let entry = IndexName::new("user", "\"erin\"");
    let names = root.join(".index").join(entry.digest());
    std::fs::create_dir_all(&names).unwrap();
    let (old, young) = (SessionId::generate(), SessionId::generate());
    std::fs::write(names.join(old.as_str()), "1000").unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    std::fs::write(names.join(young.as_str()), now.to_string()).unwrap();
    let live = store.create(&user("erin"), TTL).await.unwrap();
    assert_eq!(store.find_indexed("\"erin\"").await.unwrap(), vec![live]);
    assert!(!names.join(old.as_str()).exists());
    assert!(names.join(young.as_str()).exists());
    // The index directory is not a shard: no session is listed from it.
    let files = FileBackend::new(root.clone()).unwrap();
    for id in files.session_ids().await.unwrap() {
        assert_ne!(id.as_str(), old.as_str());
    }
}

/// The file store removes an index entry's directory, lock file included, with its last
/// name, whichever way the name goes: a logout everywhere, a prune or a lookup that finds it
/// stale. It kept them, so every value ever indexed (a user name a client typed) left a
/// directory behind for ever. A prune also removes a directory an earlier version left empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_store_removes_an_entry_with_its_last_name() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("sessions");
    let files = FileBackend::new(root.clone())
        .unwrap()
        .with_index_key("user")
        .with_cleanup_interval(None);
    let store = SessionStore::new(files);
    let entry = |value: &str| IndexName::new("user", value);
    let names = |value: &str| root.join(".index").join(entry(value).digest());
    // A name stamped long ago, past the grace period.
    let age = |value: &str, id: &SessionId| {
        std::fs::write(names(value).join(id.as_str()), "1000").unwrap();
    };

    // A logout everywhere.
    for _ in 0..2 {
        store.create(&user("alice"), TTL).await.unwrap();
    }
    assert!(names("\"alice\"").join(".lock").is_file());
    assert_eq!(store.delete_indexed("\"alice\"").await.unwrap(), 2);
    assert!(!names("\"alice\"").exists(), "a logout everywhere");

    // A logout, then a prune: the young name stays (it may be a write in flight), the
    // stale one goes, and the directory with it.
    let bob = store.create(&user("bob"), TTL).await.unwrap();
    assert!(store.delete(&bob).await.unwrap());
    assert_eq!(store.prune_index_entry(&entry("\"bob\"")).await.unwrap(), 1);
    assert!(names("\"bob\"").is_dir());
    age("\"bob\"", &bob);
    assert_eq!(store.prune_index_entry(&entry("\"bob\"")).await.unwrap(), 0);
    assert!(!names("\"bob\"").exists(), "a prune");

    // A lookup that finds the last name stale: the session is dave's now.
    let carol = store.create(&user("carol"), TTL).await.unwrap();
    assert!(store
        .apply(&carol, &set("user", "\"dave\""), TTL)
        .await
        .unwrap());
    age("\"carol\"", &carol);
    assert!(store.find_indexed("\"carol\"").await.unwrap().is_empty());
    assert!(!names("\"carol\"").exists(), "a lookup");
    assert!(names("\"dave\"").join(carol.as_str()).is_file());

    // Left empty by an earlier version, with a temp file of a crashed add: a prune removes
    // it. A file that is not ours keeps its directory.
    for (value, file) in [("\"erin\"", ".tmp-crashed"), ("\"frank\"", "notes.txt")] {
        std::fs::create_dir_all(names(value)).unwrap();
        std::fs::write(names(value).join(".lock"), "").unwrap();
        std::fs::write(names(value).join(file), "1").unwrap();
        assert_eq!(store.prune_index_entry(&entry(value)).await.unwrap(), 0);
    }
    assert!(!names("\"erin\"").exists(), "an entry left empty before");
    assert!(names("\"frank\"").join("notes.txt").is_file());

    // The next add creates the directory again.
    let again = store.create(&user("alice"), TTL).await.unwrap();
    assert_eq!(store.find_indexed("\"alice\"").await.unwrap(), vec![again]);
}

/// Adds and removals of one entry's names race from two file stores over one directory
/// (stand-ins for two processes: `flock` excludes between open files alike), so the entry
/// directory is removed and created again all the time: no add fails, no name is lost (each
/// is on disk and listed by the other store once its add returned), and the directory goes
/// with the last name.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_store_entry_removals_race_adds_from_two_processes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("sessions");
    let open = || {
        Arc::new(
            FileBackend::new(root.clone())
                .unwrap()
                .with_index_key("user")
                .with_fsync(false)
                .with_cleanup_interval(None),
        )
    };
    let (one, two) = (open(), open());
    let entry = IndexName::new("user", "\"alice\"");
    let names = root.join(".index").join(entry.digest());
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let (mine, other) = if t % 2 == 0 {
                (one.clone(), two.clone())
            } else {
                (two.clone(), one.clone())
            };
            let (entry, names) = (entry.clone(), names.clone());
            tokio::spawn(async move {
                let id = SessionId::generate();
                for round in 0..1000 {
                    if let Err(err) = mine.index_add(&entry, &id).await {
                        panic!("task {t}, round {round}: the add failed: {err}");
                    }
                    assert!(
                        names.join(id.as_str()).is_file(),
                        "task {t}, round {round}: the name is not on disk"
                    );
                    let members = match other.index_members(&entry, None).await {
                        Ok(members) => members,
                        Err(err) => panic!("task {t}, round {round}: the read failed: {err}"),
                    };
                    let Some(member) = members.into_iter().find(|m| m.id == id) else {
                        panic!("task {t}, round {round}: the other store does not list the name")
                    };
                    let remover = if round % 2 == 0 { &mine } else { &other };
                    if let Err(err) = remover.index_remove(&entry, &[member]).await {
                        panic!("task {t}, round {round}: the removal failed: {err}");
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert!(!names.exists(), "the last name went, the directory stayed");
    let left: Vec<_> = std::fs::read_dir(root.join(".index"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// The Redis key of an index entry under the default prefix.
fn entry_key(value: &str) -> String {
    let entry = IndexName::new("user", value);
    format!("session:index:user:{}", entry.digest())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_standalone() {
    let server = RedisServer::start();
    let store = SessionStore::from_config(&config(&[("session_redis_url", &server.url())]))
        .await
        .unwrap();
    contract(&store, "redis").await;
    logout_racing_writes(&store, "redis").await;

    // The entry is a sorted set of ids scored by the time of their add, under the prefix.
    let id = store.create(&user("frank"), TTL).await.unwrap();
    let members: Vec<String> = server.cmd(&["ZRANGE", &entry_key("\"frank\""), "0", "-1"]);
    assert_eq!(members, vec![id.as_str().to_owned()]);

    // Stale names: the old one goes, the young one stays.
    let (old, young) = (SessionId::generate(), SessionId::generate());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
    let key = entry_key("\"frank\"");
    let _: i64 = server.cmd(&["ZADD", &key, "1000", old.as_str(), &now, young.as_str()]);
    assert_eq!(
        store.find_indexed("\"frank\"").await.unwrap(),
        vec![id.clone()]
    );
    let score = |id: &SessionId| server.cmd::<Option<String>>(&["ZSCORE", &key, id.as_str()]);
    assert_eq!(score(&old), None);
    assert!(score(&young).is_some());

    // After SCRIPT FLUSH (a restart, a failover) the indexed write still lands, in one
    // pipeline: EVAL replaces the EVALSHA that met NOSCRIPT.
    let _: String = server.cmd(&["SCRIPT", "FLUSH"]);
    let again = store.create(&user("frank"), TTL).await.unwrap();
    assert_eq!(store.delete_indexed("\"frank\"").await.unwrap(), 2);
    assert_eq!(store.load(&again).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_sentinel() {
    let topology = SentinelTopology::start();
    let store = SessionStore::from_config(&config(&[
        ("session_redis_mode", "sentinel"),
        ("session_redis_host", &topology.sentinel_host_list()),
        ("session_redis_master", topology.master_name()),
    ]))
    .await
    .unwrap();
    contract(&store, "sentinel").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_cluster() {
    let cluster = ClusterTopology::start();
    let store = SessionStore::from_config(&config(&[
        ("session_redis_mode", "cluster"),
        ("session_redis_host", &cluster.seed_hosts()),
    ]))
    .await
    .unwrap();
    contract(&store, "cluster").await;
    logout_racing_writes(&store, "cluster").await;

    // Alice's sessions live on every master; her entry in one slot of its own.
    let mut ids = Vec::new();
    let mut masters = HashSet::new();
    while masters.len() < cluster.masters().len() || ids.len() < 12 {
        let id = store.create(&user("alice"), TTL).await.unwrap();
        masters
            .insert(cluster.master_of_slot(cluster.slot_of(&format!("session:{}", id.as_str()))));
        ids.push(id);
    }
    assert_eq!(
        sorted(store.find_indexed("\"alice\"").await.unwrap()),
        sorted(ids.clone())
    );
    assert_eq!(store.delete_indexed("\"alice\"").await.unwrap(), ids.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pool() {
    let servers = [RedisServer::start(), RedisServer::start()];
    let pool = RedisServer::pool_setting(&[&servers[0], &servers[1]]);
    let store = SessionStore::from_config(&config(&[("session_redis_pool", &pool)]))
        .await
        .unwrap();
    contract(&store, "pool").await;
    logout_racing_writes(&store, "pool").await;

    // Each member holds the entry of the sessions it owns. 64 random ids: all on one of two
    // equal members one run in 2^63, where 16 made it one in 32,768.
    let mut ids = Vec::new();
    for _ in 0..64 {
        ids.push(store.create(&user("alice"), TTL).await.unwrap());
    }
    // (The entry may also hold stale names from the racing writes above, added by writes
    // that then found no session: a superset, pruned by lookups after the grace period.)
    let on = |server: &RedisServer| -> HashSet<String> {
        let names: Vec<String> = server.cmd(&["ZRANGE", &entry_key("\"alice\""), "0", "-1"]);
        let ids: HashSet<String> = ids.iter().map(|id| id.as_str().to_owned()).collect();
        names
            .into_iter()
            .filter(|name| ids.contains(name))
            .collect()
    };
    let (first, second) = (on(&servers[0]), on(&servers[1]));
    assert_eq!(first.len() + second.len(), ids.len());
    assert!(first.is_disjoint(&second));
    assert!(!first.is_empty() && !second.is_empty());
    assert_eq!(store.delete_indexed("\"alice\"").await.unwrap(), ids.len());
}

/// Sessions moving from the file store into Redis through a multi-backend: found and logged
/// out everywhere whether they moved yet or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn multi_backend_while_sessions_move() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let multi = format!(
        r#"(
    {{"backend": "redis", "modes": ["read", "write"], "setting": {{'SESSION_REDIS_URL': '{}'}}}},
    {{"backend": "old", "modes": ["read", "delete"], "setting": {{'SESSION_REDIS_MODE': False, 'SESSION_FILESTORE_PATH': '{}'}}}},
)"#,
        server.url(),
        dir.path().display()
    );
    let store = SessionStore::from_config(&config(&[("session_redis_multi_backends", &multi)]))
        .await
        .unwrap();
    contract(&store, "multi").await;

    // Sessions written by the old deployment, which kept the same index in its files.
    let old = SessionStore::new(
        FileBackend::new(dir.path().to_path_buf())
            .unwrap()
            .with_cleanup_interval(None)
            .with_index_key("user"),
    );
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(old.create(&user("alice"), TTL).await.unwrap());
    }
    // Half of them are used (and so move into Redis) before the logout.
    for id in &ids[..3] {
        assert!(store.load(id).await.unwrap().is_some());
    }
    assert_eq!(
        sorted(store.find_indexed("\"alice\"").await.unwrap()),
        sorted(ids.clone())
    );
    assert_eq!(store.delete_indexed("\"alice\"").await.unwrap(), ids.len());
    for id in &ids {
        assert_eq!(store.load(id).await.unwrap(), None);
        assert_eq!(old.load(id).await.unwrap(), None);
    }
}

/// Sessions the start-up migration moves from the file store (which kept no index) are
/// indexed by the creates that move them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrated_sessions_are_indexed() {
    let server = RedisServer::start();
    let (dir, ids) = in_unindexed_files("alice", 5).await;
    let store = SessionStore::from_config(&config(&[
        ("session_redis_url", &server.url()),
        ("session_filestore_path", dir.path().to_str().unwrap()),
        ("session_redis_migrate_from_filestore", "True"),
    ]))
    .await
    .unwrap();
    assert_eq!(
        sorted(store.find_indexed("\"alice\"").await.unwrap()),
        sorted(ids)
    );
}

#[tokio::test]
async fn without_an_index_lookups_say_how_to_get_one() {
    let err = SessionStore::memory()
        .find_indexed("\"alice\"")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("session_redis_index_key"), "{err}");
    assert!(!err.to_string().contains("alice"), "{err}");
}

#[test]
fn index_keys_are_checked() {
    let err = SessionConfig::builder()
        .set("session_redis_index_key", "user name")
        .build()
        .and_then(|c| c.plan().map(|_| ()))
        .unwrap_err();
    assert_eq!(err.key, "session_redis_index_key", "{err}");
    assert!(err.expected.contains("1 to 64"), "{err}");
    // One index for the whole store: not per backend.
    let multi = r#"({"backend": "a", "modes": ["read", "write"], "setting": {'SESSION_REDIS_INDEX_KEY': 'user'}},)"#;
    let err = SessionConfig::builder()
        .set("session_redis_multi_backends", multi)
        .build()
        .and_then(|c| c.plan().map(|_| ()))
        .unwrap_err();
    assert!(err.key.ends_with("session_redis_index_key"), "{err}");
    // Set, it reaches every storing backend of the plan.
    let config = SessionConfig::builder()
        .set("session_redis_index_key", "user")
        .set("session_redis_mode", "False")
        .build()
        .unwrap();
    let backend = session_core::backends::build(&config.plan().unwrap().backend).unwrap();
    assert_eq!(backend.index_key(), Some("user"));
}

/// An entry with many stale names (a value many sessions share, a burst of logins): the
/// background prune of a write looks at a bounded number of the oldest names, never the whole
/// entry, and removes the stale ones among them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn background_prunes_are_bounded() {
    let server = RedisServer::start();
    let store = SessionStore::from_config(&config(&[("session_redis_url", &server.url())]))
        .await
        .unwrap();
    let key = entry_key("\"guest\"");
    let stale = 5_000;
    {
        let mut conn = server.client().get_connection().unwrap();
        let mut pipe = redis::pipe();
        for n in 0..stale {
            // Ids of sessions that do not exist, added long ago.
            pipe.cmd("ZADD")
                .arg(&key)
                .arg(1_000 + n)
                .arg(SessionId::generate().as_str())
                .ignore();
        }
        let () = pipe.query(&mut conn).unwrap();
    }
    let _: () = server.cmd(&["CONFIG", "RESETSTAT"]);
    // One in 16 indexed writes prunes: 200 writes miss every prune with probability 2.5e-6.
    for _ in 0..200 {
        store.create(&user("guest"), TTL).await.unwrap();
    }
    let left = |server: &RedisServer| server.cmd::<usize>(&["ZCARD", &key]);
    let mut waited = 0;
    while left(&server) >= stale + 200 && waited < 100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (prunes, reads) = (server.calls("zrange"), server.calls("get"));
    assert!(prunes >= 1, "no background prune ran");
    assert!(
        reads <= prunes * 256,
        "{reads} session reads for {prunes} prunes: not bounded"
    );
    let removed = stale + 200 - left(&server);
    assert!(
        removed >= 256,
        "a prune removes the stale names it checked: {removed}"
    );
    assert!(removed as u64 <= prunes * 256);
    // The 200 live sessions are all still found.
    assert_eq!(store.find_indexed("\"guest\"").await.unwrap().len(), 200);
}

/// The promise "a session that holds the value is in the index" when adding to the index
/// fails (here an ACL user without `ZADD`): the write fails and stores nothing, single or
/// batched (the mover's `create_many`), instead of storing a session the index misses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_index_add_fails_the_write() {
    let server = RedisServer::start();
    let _: () = server.cmd(&[
        "ACL",
        "SETUSER",
        "nozadd",
        "on",
        ">index-test-pw",
        "~*",
        "+@all",
        "-zadd",
    ]);
    let config = config(&[
        ("session_redis_url", &server.url()),
        ("session_redis_username", "nozadd"),
        ("session_redis_password", "index-test-pw"),
    ]);
    let store = SessionStore::from_config(&config).await.unwrap();
    // A write that does not set the indexed key needs no ZADD.
    let plain = SessionState::from([("n".to_owned(), "1".to_owned())]);
    let id = store.create(&plain, TTL).await.unwrap();

    assert!(store.create(&user("alice"), TTL).await.is_err());
    assert!(store
        .create_with_id(&SessionId::generate(), &user("alice"), TTL)
        .await
        .is_err());
    assert!(store
        .apply(&id, &set("user", "\"alice\""), TTL)
        .await
        .is_err());
    assert!(store.replace(&id, &user("alice"), TTL).await.is_err());
    assert_eq!(store.load(&id).await.unwrap(), Some(plain));
    let backend = session_core::backends::build(&config.plan().unwrap().backend).unwrap();
    let answers = backend
        .create_many(&[(SessionId::generate(), user("alice"), TTL)])
        .await;
    assert!(answers[0].is_err());

    let keys: Vec<String> = server.cmd(&["KEYS", "*"]);
    assert_eq!(keys, vec![format!("session:{}", id.as_str())]);
}

/// Redis was down at start-up, so the start-up migration is still pending when Redis comes
/// back: a logout everywhere finds the sessions still in their files (through the file
/// store's own index, kept while the application ran on the file store) as well as those in
/// Redis, and once the background retry has moved the rest, none of them comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_migration_is_searched_too() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    // The application on the file store, with the index.
    let on_files = SessionStore::from_config(&config(&[
        ("session_redis_mode", "False"),
        ("session_filestore_path", root),
    ]))
    .await
    .unwrap();
    let mut in_files = Vec::new();
    for _ in 0..4 {
        in_files.push(on_files.create(&user("alice"), TTL).await.unwrap());
    }
    let bob = on_files.create(&user("bob"), TTL).await.unwrap();

    // Then on Redis, migrating from the files; Redis is down at start-up.
    let on_redis = config(&[
        ("session_redis_url", &server.url()),
        ("session_filestore_path", root),
        ("session_redis_migrate_from_filestore", "True"),
    ]);
    server.kill();
    let store = SessionStore::from_config(&on_redis).await.unwrap();
    server.restart();
    // A new login lands in Redis while the old ones still sit in files (the retry comes
    // RETRY_INTERVAL after start-up; this runs well before).
    let in_redis = store.create(&user("alice"), TTL).await.unwrap();
    let files = FileBackend::new(dir.path().to_path_buf()).unwrap();
    assert_eq!(
        files.session_ids().await.unwrap().len(),
        5,
        "nothing moved yet"
    );

    let mut all = in_files.clone();
    all.push(in_redis.clone());
    assert_eq!(store.delete_indexed("\"alice\"").await.unwrap(), all.len());

    // The retry moves what is left (bob); alice's sessions stay logged out.
    let deadline = std::time::Instant::now()
        + session_core::migration::RETRY_INTERVAL * 2
        + Duration::from_secs(2);
    while !files.session_ids().await.unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the retry did not run"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for id in &all {
        assert_eq!(store.load(id).await.unwrap(), None, "came back");
    }
    assert!(store.load(&bob).await.unwrap().is_some());
    assert_eq!(store.find_indexed("\"bob\"").await.unwrap(), vec![bob]);
}

/// An entry directory that cannot be made and is not there (the index directory a link
/// whose target went away) ends an add with an error, where the start-over on a directory
/// that went away (an entry removed by its last name) looped for ever on a blocking thread.
#[cfg(unix)]
#[tokio::test]
async fn file_store_index_add_under_a_dangling_link_fails_instead_of_spinning() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("sessions");
    let files = FileBackend::new(root.clone())
        .unwrap()
        .with_index_key("user")
        .with_cleanup_interval(None);
    std::os::unix::fs::symlink(dir.path().join("gone"), root.join(".index")).unwrap();
    let added = tokio::time::timeout(
        Duration::from_secs(10),
        files.index_add(&IndexName::new("user", "\"alice\""), &SessionId::generate()),
    )
    .await
    .expect("the add gives up");
    let err = added.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
}

/// Sessions a move copies into a Redis Cluster are indexed by the create that copies them,
/// as on one server: the start-up migration from a file store that kept no index, and a
/// multi-backend whose write backend is the cluster. A move's create is sent at most once,
/// by a path of its own, which on a cluster left the index out: the sessions were stored
/// holding `user` and no lookup found them, so a logout everywhere left them logged in.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessions_moved_into_a_cluster_are_indexed() {
    let cluster = ClusterTopology::start();
    let (dir, ids) = in_unindexed_files("alice", 6).await;
    let store = SessionStore::from_config(&config(&[
        ("session_redis_mode", "cluster"),
        ("session_redis_host", &cluster.seed_hosts()),
        ("session_filestore_path", dir.path().to_str().unwrap()),
        ("session_redis_migrate_from_filestore", "True"),
    ]))
    .await
    .unwrap();
    assert_eq!(
        sorted(store.find_indexed("\"alice\"").await.unwrap()),
        sorted(ids.clone()),
        "migrated"
    );
    assert_eq!(store.delete_indexed("\"alice\"").await.unwrap(), ids.len());

    // A multi-backend moving sessions from a file store without an index into the cluster.
    let (old, ids) = in_unindexed_files("bob", 6).await;
    let multi = format!(
        r#"(
    {{"backend": "cluster", "modes": ["read", "write"], "setting": {{'SESSION_REDIS_MODE': 'cluster', 'SESSION_REDIS_HOST': '{}'}}}},
    {{"backend": "old", "modes": ["read", "delete"], "setting": {{'SESSION_REDIS_MODE': False, 'SESSION_FILESTORE_PATH': '{}'}}}},
)"#,
        cluster.seed_hosts(),
        old.path().display()
    );
    let store = SessionStore::from_config(&config(&[("session_redis_multi_backends", &multi)]))
        .await
        .unwrap();
    for id in &ids {
        assert!(store.load(id).await.unwrap().is_some(), "moved on use");
    }
    assert_eq!(
        sorted(store.find_indexed("\"bob\"").await.unwrap()),
        sorted(ids.clone()),
        "moved by a multi-backend"
    );
    assert_eq!(store.delete_indexed("\"bob\"").await.unwrap(), ids.len());
    for id in &ids {
        assert_eq!(store.load(id).await.unwrap(), None);
    }
}

/// Values are JSON text, so a lookup of text that is not JSON (`alice` for the string
/// `"alice"`) can match no session: an error, not "0 sessions", which read as "logged out
/// everywhere" while every one of that user's sessions stayed. The error does not quote the
/// value (user data).
#[tokio::test]
async fn a_lookup_by_a_value_that_is_not_json_is_an_error_not_zero_sessions() {
    let store = SessionStore::new(MemoryBackend::new().with_index_key("user"));
    let alice = store.create(&user("alice"), TTL).await.unwrap();
    for value in ["alice", "", "{unclosed", "\"alice"] {
        let found = store.find_indexed(value).await.unwrap_err();
        let deleted = store.delete_indexed(value).await.unwrap_err();
        for err in [found, deleted] {
            let shown = err.to_string();
            assert!(shown.contains("not JSON text"), "{value:?}: {shown}");
            if !value.is_empty() {
                assert!(!shown.contains(value), "{value:?}: {shown}");
            }
        }
    }
    assert_eq!(store.find_indexed("\"alice\"").await.unwrap(), vec![alice]);
}

/// A logout everywhere racing a renew (a login, or a stolen cookie's request that renews)
/// of one of the user's sessions, in another process: the logout everywhere reads the
/// user's sessions, the renew creates its new id (indexed under the user) and deletes the
/// old one, finding it, then the logout everywhere deletes the old id and finds nothing.
/// The renew kept its new id, which the logout everywhere never read: a session of the user
/// outlived the "log out everywhere" it raced, under an id born of one the logout had
/// listed. It now reads the entry again after its deletes, until a read finds no session it
/// has not deleted. The probe holds the logout everywhere's first delete while the renew
/// runs, on a real `redis-server`.
#[tokio::test]
async fn a_logout_everywhere_racing_a_renew_leaves_no_session() {
    use session_core::{
        backends::redis::RedisBackend,
        testing::probe::{Op, ProbeBackend},
    };
    let redis = RedisServer::start();
    let config = config(&[("session_redis_url", &redis.url())]);
    let probe = ProbeBackend::new(RedisBackend::from_config(&config).unwrap());
    let everywhere = SessionStore::new(probe.clone());
    let other_process = SessionStore::from_config(&config).await.unwrap();
    let old = everywhere.create(&user("alice"), TTL).await.unwrap();
    let held = probe.pause(Op::Delete);
    let logout = {
        let everywhere = everywhere.clone();
        tokio::spawn(async move { everywhere.delete_indexed("\"alice\"").await })
    };
    held.reached().await;
    // The renew, as both framework layers make it: the new id first, then the old one.
    let renewed = other_process.create(&user("alice"), TTL).await.unwrap();
    assert!(
        other_process.delete(&old).await.unwrap(),
        "the renew found its session"
    );
    held.release();
    let deleted = logout.await.unwrap().unwrap();
    assert_eq!(
        other_process.load(&renewed).await.unwrap(),
        None,
        "the renew's new id outlived the logout everywhere it raced (deleted {deleted})"
    );
    assert_eq!(other_process.load(&old).await.unwrap(), None);
    assert!(other_process
        .find_indexed("\"alice\"")
        .await
        .unwrap()
        .is_empty());
}
