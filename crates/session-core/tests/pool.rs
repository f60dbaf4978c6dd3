//! `session_redis_pool` (weighted rendezvous partitioning) and `session_redis_multi_backends`
//! (read / write / delete modes) against real `redis-server` processes.

mod common;

use std::{collections::HashMap, sync::Arc};

use common::{new_first, old_first};
use session_core::{
    backends::{file::FileBackend, multi::MultiBackend, pool::PoolBackend},
    testing::{
        conformance,
        probe::{Op, ProbeBackend},
    },
    Changes, SessionBackend, SessionConfig, SessionId, SessionState, SessionStore,
};
use session_testkit::RedisServer;

fn state(pairs: &[(&str, &str)]) -> SessionState {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// One member in django-redis-sessions' literal form.
fn member(port: u16, weight: u32) -> String {
    format!(
        "{{'SESSION_REDIS_HOST': '127.0.0.1', 'SESSION_REDIS_PORT': {port}, 'SESSION_REDIS_DB': 0, 'SESSION_REDIS_PASSWORD': None, 'SESSION_REDIS_UNIX_DOMAIN_SOCKET_PATH': None, 'SESSION_REDIS_URL': None, 'SESSION_REDIS_WEIGHT': {weight}}}"
    )
}

fn pool_config(members: &[(u16, u32)]) -> SessionConfig {
    let list: Vec<String> = members.iter().map(|(p, w)| member(*p, *w)).collect();
    let env = vec![
        (
            "SESSION_REDIS_POOL".to_string(),
            format!("[\n    {},\n]", list.join(",\n    ")),
        ),
        (
            "SESSION_REDIS_SOCKET_TIMEOUT".to_string(),
            "0.5".to_string(),
        ),
        (
            "SESSION_REDIS_SOCKET_CONNECT_TIMEOUT".to_string(),
            "0.5".to_string(),
        ),
    ];
    SessionConfig::from_sources(None, env).unwrap()
}

fn three() -> [RedisServer; 3] {
    [
        RedisServer::start(),
        RedisServer::start(),
        RedisServer::start(),
    ]
}

fn weights(servers: &[RedisServer; 3]) -> Vec<(u16, u32)> {
    vec![
        (servers[0].port(), 1),
        (servers[1].port(), 1),
        (servers[2].port(), 2),
    ]
}

fn exists(server: &RedisServer, id: &SessionId) -> bool {
    server.cmd::<i64>(&["EXISTS", &format!("session:{}", id.as_str())]) == 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pool_passes_the_conformance_suite() {
    let servers = three();
    let config = pool_config(&weights(&servers));
    let backend =
        || Arc::new(PoolBackend::from_config(&config).unwrap()) as Arc<dyn SessionBackend>;
    conformance::run_all(backend).await;
    conformance::moved_markers(&backend()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_follows_the_weights_and_sessions_live_on_their_member() {
    let servers = three();
    let config = pool_config(&weights(&servers));
    let pool = PoolBackend::from_config(&config).unwrap();
    let ids = pool
        .identities()
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    assert_eq!(ids[0], format!("127.0.0.1:{}/0", servers[0].port()));

    let mut counts: HashMap<String, usize> = HashMap::new();
    for _ in 0..2000 {
        *counts
            .entry(pool.route(&SessionId::generate()).to_owned())
            .or_default() += 1;
    }
    for (identity, share) in ids.iter().zip([0.25, 0.25, 0.5]) {
        let got = counts.get(identity).copied().unwrap_or(0) as f64 / 2000.0;
        assert!(
            (got - share).abs() < 0.05,
            "{identity}: {got} of the sessions, expected about {share}"
        );
    }

    let pool: Arc<dyn SessionBackend> = Arc::new(pool);
    let store = conformance::store_of(&pool);
    let routing = PoolBackend::from_config(&config).unwrap();
    for _ in 0..40 {
        let id = store.create(&state(&[("k", "1")]), None).await.unwrap();
        let home = ids.iter().position(|i| i == routing.route(&id)).unwrap();
        for (i, server) in servers.iter().enumerate() {
            assert_eq!(exists(server, &id), i == home, "member {i}");
        }
        assert_eq!(store.load(&id).await.unwrap(), Some(state(&[("k", "1")])));
    }
}

#[test]
fn adding_a_member_moves_only_its_share() {
    // Routing needs no connection: ports of servers that do not run are fine here.
    let before =
        PoolBackend::from_config(&pool_config(&[(7001, 1), (7002, 1), (7003, 2)])).unwrap();
    let after =
        PoolBackend::from_config(&pool_config(&[(7001, 1), (7002, 1), (7003, 2), (7004, 1)]))
            .unwrap();
    // Reordering members moves nothing: routing follows identities, not positions.
    let reordered =
        PoolBackend::from_config(&pool_config(&[(7003, 2), (7001, 1), (7002, 1)])).unwrap();
    let mut moved = 0;
    for _ in 0..2000 {
        let id = SessionId::generate();
        assert_eq!(before.route(&id), reordered.route(&id));
        if before.route(&id) != after.route(&id) {
            assert_eq!(
                after.route(&id),
                "127.0.0.1:7004/0",
                "moves only to the new member"
            );
            moved += 1;
        }
    }
    let share = f64::from(moved) / 2000.0;
    assert!(
        (0.13..0.27).contains(&share),
        "{share} of the sessions moved, expected about 1/5"
    );
}

#[test]
fn pool_config_from_toml_equals_the_env_form() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("session.toml");
    std::fs::write(
        &path,
        r#"
session_redis_socket_timeout = 0.5
session_redis_socket_connect_timeout = 0.5

[[SESSION_REDIS_POOL]]
SESSION_REDIS_HOST = "127.0.0.1"
SESSION_REDIS_PORT = 7001
SESSION_REDIS_DB = 0
SESSION_REDIS_WEIGHT = 1

[[SESSION_REDIS_POOL]]
SESSION_REDIS_HOST = "127.0.0.1"
SESSION_REDIS_PORT = 7002
SESSION_REDIS_WEIGHT = 2
SESSION_REDIS_PASSWORD = "s3cret"
"#,
    )
    .unwrap();
    let config = SessionConfig::from_file(&path).unwrap();
    let env = pool_config(&[(7001, 1), (7002, 2)]);
    assert_eq!(config.pool.len(), 2);
    assert_eq!(config.pool[0], env.pool[0]);
    assert_eq!(config.pool[1].weight, 2);
    let shown = format!("{config:?} {config}");
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(shown.contains("<redacted>"));
    // The member's configuration inherits the top level and overrides the address.
    let m = config.pool[1].member_config(&config);
    assert_eq!(m.socket_timeout, Some(0.5));
    assert_eq!(m.host[0].to_string(), "127.0.0.1:7002");
    assert_eq!(m.password.as_deref(), Some("s3cret"));
}

#[test]
fn pool_config_errors_name_the_member_and_key() {
    let env =
        |k: &str, v: &str| SessionConfig::from_sources(None, [(k.to_string(), v.to_string())]);
    let e = env(
        "SESSION_REDIS_POOL",
        "[{'SESSION_REDIS_HOST': 'a', 'SESSION_REDIS_PASSWORD': 'hunter2'}, {'SESSION_REDIS_HOST': 'b', 'SESSION_REDIS_PORT': 'x', 'SESSION_REDIS_PASSWORD': 'hunter2'}]",
    )
    .unwrap_err();
    assert_eq!(e.key, "SESSION_REDIS_POOL[1].SESSION_REDIS_PORT");
    assert!(!e.to_string().contains("hunter2"));
    let e = env(
        "SESSION_REDIS_POOL",
        "[{'SESSION_REDIS_HOST': 'a', 'SESSION_REDIS_WEIGHT': 0}]",
    )
    .unwrap_err();
    assert_eq!(e.key, "SESSION_REDIS_POOL[0].SESSION_REDIS_WEIGHT");
    let e = env("SESSION_REDIS_POOL", "[{'SESSION_REDIS_PORT': 1}]").unwrap_err();
    assert!(e.key.starts_with("session_redis_pool[0]"), "{e}");
    let e = env("SESSION_REDIS_WEIGHT", "2").unwrap_err();
    assert!(e.to_string().contains("inside a member"), "{e}");
    let e = SessionConfig::from_sources(
        None,
        [
            (
                "SESSION_REDIS_POOL".to_string(),
                "[{'SESSION_REDIS_HOST': 'a'}]".to_string(),
            ),
            ("SESSION_REDIS_MODE".to_string(), "sentinel".to_string()),
        ],
    )
    .unwrap_err();
    assert_eq!(e.key, "session_redis_mode");
    let e = env(
        "SESSION_REDIS_POOL",
        "[{'SESSION_REDIS_HOST': 'a'}, {'SESSION_REDIS_HOST': 'a', 'SESSION_REDIS_PORT': 6379}]",
    )
    .unwrap_err();
    assert_eq!(e.key, "session_redis_pool[1]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_member_down_fails_only_its_sessions() {
    let servers = three();
    let config = pool_config(&weights(&servers));
    let routing = PoolBackend::from_config(&config).unwrap();
    let down = routing.identities()[2].to_owned();
    let store = SessionStore::from_config(&config).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..30 {
        ids.push(store.create(&state(&[("k", "1")]), None).await.unwrap());
    }
    servers[2].kill();
    let (mut failed, mut worked) = (0, 0);
    for id in &ids {
        let got = store.load(id).await;
        if routing.route(id) == down {
            let e = got.unwrap_err();
            assert!(e.is_unavailable(), "{e}");
            assert!(e.to_string().contains(&down), "{e}");
            failed += 1;
        } else {
            assert_eq!(got.unwrap(), Some(state(&[("k", "1")])));
            let mut changes = Changes::default();
            changes.set("k", "2");
            assert!(store.apply(id, &changes, None).await.unwrap());
            worked += 1;
        }
    }
    assert!(failed > 0 && worked > 0, "{failed} failed, {worked} worked");
    let health = store.health().await;
    assert_eq!(health.len(), 3);
    assert_eq!(health.iter().filter(|h| !h.up).count(), 1);
}

// ---------------------------------------------------------------------------------------------
// Multi-backend

/// acs_redis_multi_sessions' "moving sessions from one engine to another": Redis [read, write] first, the
/// file store [read, delete] second.
fn move_config(redis: &RedisServer, dir: &std::path::Path) -> SessionConfig {
    let literal = format!(
        r#"(
    {{
        "backend": "0",
        "modes": ["read", "write"],
        "setting": {{
            'SESSION_REDIS_HOST': '127.0.0.1',
            'SESSION_REDIS_PORT': {},
            'SESSION_REDIS_DB': 0,
            'SESSION_REDIS_PASSWORD': '',
            'SESSION_REDIS_PREFIX': 'ds_',
            'SESSION_REDIS_SOCKET_TIMEOUT': 0.5,
            'SESSION_REDIS_SOCKET_CONNECT_TIMEOUT': 0.5,
        }},
    }},
    {{
        "backend": "files",
        "modes": ["read", "delete"],
        "setting": {{
            'SESSION_REDIS_MODE': False,
            'SESSION_FILESTORE_PATH': '{}',
        }},
    }},
)"#,
        redis.port(),
        dir.display()
    );
    SessionConfig::from_sources(None, [("ACS_SESSION_MULTISESSIONS_POOL", literal)]).unwrap()
}

fn in_redis(server: &RedisServer, id: &SessionId) -> bool {
    server.cmd::<i64>(&["EXISTS", &format!("ds_{}", id.as_str())]) == 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_moves_sessions_from_files_into_redis() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = move_config(&redis, dir.path());
    let store = SessionStore::from_config(&config).await.unwrap();
    let files = FileBackend::new(dir.path().to_path_buf())
        .unwrap()
        .with_cleanup_interval(None);

    // An old session in the file store moves into Redis on its first load.
    let old = SessionId::generate();
    assert!(files
        .create(&old, &state(&[("user", "\"alice\"")]), None)
        .await
        .unwrap());
    assert_eq!(
        store.load(&old).await.unwrap(),
        Some(state(&[("user", "\"alice\"")]))
    );
    assert!(in_redis(&redis, &old));
    assert_eq!(files.load(&old, None).await.unwrap(), None);
    let mut changes = Changes::default();
    changes.set("n", "1");
    assert!(store.apply(&old, &changes, None).await.unwrap());
    assert_eq!(
        store.load(&old).await.unwrap(),
        Some(state(&[("user", "\"alice\""), ("n", "1")]))
    );

    // A miss writes nothing anywhere.
    let unknown = SessionId::generate();
    assert_eq!(store.load(&unknown).await.unwrap(), None);
    assert!(!in_redis(&redis, &unknown));

    // A new session goes to Redis only.
    let new = store.create(&state(&[("k", "\"v\"")]), None).await.unwrap();
    assert!(in_redis(&redis, &new));
    assert_eq!(files.load(&new, None).await.unwrap(), None);

    // Delete removes it from both (write implies delete).
    assert!(files
        .create(&new, &state(&[("k", "\"stale\"")]), None)
        .await
        .unwrap());
    assert!(store.delete(&new).await.unwrap());
    assert!(!in_redis(&redis, &new));
    assert_eq!(files.load(&new, None).await.unwrap(), None);
    assert_eq!(store.load(&new).await.unwrap(), None);

    // Redis down: a session only in Redis is an error, not "no session"; so is create.
    let only_redis = store.create(&state(&[("k", "\"v\"")]), None).await.unwrap();
    redis.kill();
    let e = store.load(&only_redis).await.unwrap_err();
    assert!(e.is_unavailable(), "{e}");
    assert!(e.to_string().contains("multi[0]"), "{e}");
    assert!(store.create(&state(&[("k", "\"v\"")]), None).await.is_err());
    let health = store.health().await;
    assert_eq!(health.len(), 2);
    assert!(!health[0].up && health[1].up, "{health:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_load_touch_sets_the_copy_ttl() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::from_config(&move_config(&redis, dir.path()))
        .await
        .unwrap();
    let files = FileBackend::new(dir.path().to_path_buf())
        .unwrap()
        .with_cleanup_interval(None);
    let id = SessionId::generate();
    assert!(files
        .create(&id, &state(&[("a", "1")]), None)
        .await
        .unwrap());
    store
        .load_and_touch(&id, Some(std::time::Duration::from_secs(100)))
        .await
        .unwrap()
        .unwrap();
    let ttl: i64 = redis.cmd(&["TTL", &format!("ds_{}", id.as_str())]);
    assert!((90..=100).contains(&ttl), "{ttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn multi_of_two_redis_passes_the_conformance_suite() {
    let (a, b) = (RedisServer::start(), RedisServer::start());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("session.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[[session_redis_multi_backends]]
backend = "a"
modes = ["read", "write", "delete"]
setting = {{ SESSION_REDIS_HOST = "127.0.0.1", SESSION_REDIS_PORT = {}, SESSION_REDIS_SOCKET_TIMEOUT = 0.5 }}

[[session_redis_multi_backends]]
backend = "b"
modes = ["read", "write", "delete"]
[session_redis_multi_backends.setting]
SESSION_REDIS_URL = "redis://127.0.0.1:{}/1"
"#,
            a.port(),
            b.port()
        ),
    )
    .unwrap();
    let config = SessionConfig::from_file(&path).unwrap();
    assert_eq!(
        config.multi_backends[1].config.url.as_deref(),
        Some(&*format!("redis://127.0.0.1:{}/1", b.port()))
    );
    conformance::run_all(|| {
        Arc::new(MultiBackend::from_config(&config).unwrap()) as Arc<dyn SessionBackend>
    })
    .await;
    // Both servers hold every session written.
    let store = SessionStore::from_config(&config).await.unwrap();
    let id = store.create(&state(&[("k", "\"v\"")]), None).await.unwrap();
    let key = format!("session:{}", id.as_str());
    assert_eq!(a.cmd::<i64>(&["EXISTS", &key]), 1);
    let mut c = b.connection();
    redis::cmd("SELECT").arg(1).exec(&mut c).unwrap();
    let in_b: i64 = redis::cmd("EXISTS").arg(&key).query(&mut c).unwrap();
    assert_eq!(in_b, 1);
}

#[test]
fn multi_config_errors() {
    let env = |v: &str| {
        SessionConfig::from_sources(
            None,
            [("ACS_SESSION_MULTISESSIONS_POOL".to_string(), v.to_string())],
        )
    };
    let e = env(r#"({"backend": "x", "modes": ["read", "writ"], "setting": {}},)"#).unwrap_err();
    assert!(e.key.contains("\"x\"") && e.key.ends_with("modes"), "{e}");
    let e = env(r#"({"backend": "x", "modes": ["read", "delete"], "setting": {}},)"#).unwrap_err();
    assert!(e.to_string().contains("\"write\""), "{e}");
    let e = env(r#"({"backend": "x", "modes": ["write", "delete"], "setting": {}}, {"backend": "y", "modes": ["read"], "setting": {}})"#).unwrap_err();
    assert!(e.key.contains("\"y\""), "{e}");
    let e = env(r#"({"backend": "x", "modes": ["read", "write", "delete"], "setting": {'SESSION_REDIS_PORT': 'no', 'SESSION_REDIS_PASSWORD': 'hunter2'}},)"#).unwrap_err();
    assert!(
        e.key.contains("\"x\"") && e.key.contains("SESSION_REDIS_PORT"),
        "{e}"
    );
    assert!(!e.to_string().contains("hunter2"));
    let ok = env(r#"({"backend": "x", "modes": ["read", "write", "delete"], "setting": {'SESSION_REDIS_PASSWORD': 'hunter2'}},)"#).unwrap();
    assert!(!format!("{ok:?} {ok}").contains("hunter2"));
    let e = SessionConfig::from_sources(
        None,
        [
            (
                "ACS_SESSION_MULTISESSIONS_POOL".to_string(),
                r#"({"backend": "x", "modes": ["read", "write", "delete"], "setting": {}},)"#
                    .to_string(),
            ),
            (
                "SESSION_REDIS_POOL".to_string(),
                "[{'SESSION_REDIS_HOST': 'a'}]".to_string(),
            ),
        ],
    )
    .unwrap_err();
    assert_eq!(e.key, "session_redis_pool");
}

/// A pool's members: port and weight.
type Members = Vec<(u16, u32)>;

/// A pool of the first two servers, and the same pool grown by the third (weights 1).
fn grown(servers: &[RedisServer; 3]) -> (Members, Members) {
    let members: Vec<(u16, u32)> = servers.iter().map(|s| (s.port(), 1)).collect();
    (members[..2].to_vec(), members)
}

/// A pool's members as the `SESSION_REDIS_POOL` list of a multi-backend's `setting`.
fn pool_setting(members: &[(u16, u32)]) -> String {
    let list: Vec<String> = members.iter().map(|(p, w)| member(*p, *w)).collect();
    format!(
        "'SESSION_REDIS_POOL': [{}], 'SESSION_REDIS_SOCKET_TIMEOUT': 2",
        list.join(", ")
    )
}

/// Growing a pool: the sessions of the old pool move into the new one, which has one member
/// more, by a multi-backend (new pool `read`, `write`; old pool `read`, `delete`) or by the
/// mover (`sessionctl migrate`). Most sessions keep their member, where the old and the new
/// pool's key is one and the same: the move must find the session already there and leave
/// it, not delete "the old copy", which is the session itself. In either order of the two
/// backends (the old one first made every load delete the session it had just found, before
/// the fix), and by the mover, moving or copying; only the new member's share moves, and a
/// logout afterwards removes every session.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn growing_a_pool_moves_only_the_new_members_share_and_loses_nothing() {
    use session_core::{mover::Mover, TtlRule};
    let servers = three();
    let (old, new) = grown(&servers);
    let old_pool: Arc<dyn SessionBackend> =
        Arc::new(PoolBackend::from_config(&pool_config(&old)).unwrap());
    let new_pool: Arc<dyn SessionBackend> =
        Arc::new(PoolBackend::from_config(&pool_config(&new)).unwrap());
    let data = state(&[("n", "1")]);
    let entry = |name: &str, modes: &str, members: &[(u16, u32)]| {
        format!(
            r#"{{"backend": "{name}", "modes": {modes}, "setting": {{ {} }}}}"#,
            pool_setting(members)
        )
    };
    let (old_entry, new_entry) = (
        entry("old", r#"["read", "delete"]"#, &old),
        entry("new", r#"["read", "write"]"#, &new),
    );
    enum How {
        Multi { old_first: bool },
        Mover { keep_source: bool },
    }
    for how in [
        How::Multi { old_first: true },
        How::Multi { old_first: false },
        How::Mover { keep_source: false },
        How::Mover { keep_source: true },
    ] {
        let mut ids = Vec::new();
        for _ in 0..150 {
            let id = SessionId::generate();
            assert!(old_pool.create(&id, &data, None).await.unwrap());
            ids.push(id);
        }
        let label = match how {
            How::Multi { old_first } => {
                let entries = if old_first {
                    [&old_entry, &new_entry]
                } else {
                    [&new_entry, &old_entry]
                };
                let literal = format!("({}, {},)", entries[0], entries[1]);
                let config = SessionConfig::from_sources(
                    None,
                    [("ACS_SESSION_MULTISESSIONS_POOL", literal)],
                )
                .unwrap();
                let multi = SessionStore::from_config(&config).await.unwrap();
                for id in &ids {
                    assert_eq!(multi.load(id).await.unwrap(), Some(data.clone()));
                }
                format!("multi-backend, old pool first: {old_first}")
            }
            How::Mover { keep_source } => {
                let mover = Mover::new(old_pool.clone(), new_pool.clone(), TtlRule::default())
                    .keep_source(keep_source)
                    .batch(32);
                for outcome in mover.move_many(&ids).await {
                    outcome.unwrap();
                }
                format!("mover, keep source: {keep_source}")
            }
        };
        let mut on_new_member = 0;
        for id in &ids {
            assert_eq!(
                new_pool.load(id, None).await.unwrap(),
                Some(data.clone()),
                "a session lost in the move ({label})"
            );
            if exists(&servers[2], id) {
                on_new_member += 1;
            }
        }
        // About a third of them; the two others' sessions stayed where they were.
        assert!(
            (25..=75).contains(&on_new_member),
            "{on_new_member} of 150 on the new member ({label})"
        );
        for id in &ids {
            assert!(new_pool.delete(id).await.unwrap());
            old_pool.delete(id).await.unwrap();
        }
        for server in &servers {
            assert_eq!(
                server.cmd::<Vec<String>>(&["KEYS", "*"]).len(),
                0,
                "{label}"
            );
        }
    }
}

/// `SessionBackend::place`, which the moves compare: one server, db and prefix is one place
/// however many configurations name it; another db, prefix or server is another; a pool
/// answers its owning member's place; one directory is one place, however it is spelled.
#[test]
fn places_tell_one_stored_copy_from_two() {
    use session_core::backends::redis::RedisBackend;
    let redis = |url: String, prefix: &str| -> Arc<dyn SessionBackend> {
        Arc::new(
            RedisBackend::from_config(&SessionConfig {
                url: Some(url),
                prefix: prefix.into(),
                ..SessionConfig::default()
            })
            .unwrap(),
        )
    };
    let id = SessionId::generate();
    let place = |b: &Arc<dyn SessionBackend>| b.place(&id).expect("a known place");
    let a = place(&redis("redis://127.0.0.1:7001/0".into(), "session:"));
    assert_eq!(
        a,
        place(&redis("redis://127.0.0.1:7001".into(), "session:"))
    );
    assert!(a.ends_with(&format!("session:{}", id.as_str())), "{a}");
    for other in [
        redis("redis://127.0.0.1:7001/1".into(), "session:"),
        redis("redis://127.0.0.1:7001/0".into(), "other:"),
        redis("redis://127.0.0.1:7002/0".into(), "session:"),
    ] {
        assert_ne!(place(&other), a);
    }
    // Nothing is connected: the members need not run.
    let pool = PoolBackend::from_config(&pool_config(&[(7001, 1), (7002, 1)])).unwrap();
    // `127.0.0.1:7001/0`: the member's identity, its port between the colon and the slash.
    let port = pool.route(&id).split([':', '/']).nth(1).unwrap().to_owned();
    let pool: Arc<dyn SessionBackend> = Arc::new(pool);
    assert_eq!(
        place(&pool),
        place(&redis(format!("redis://127.0.0.1:{port}/0"), "session:"))
    );
    // One Sentinel deployment, its sentinels listed in two orders.
    let sentinel = |hosts: &str| -> Arc<dyn SessionBackend> {
        let config = SessionConfig::builder()
            .set("session_redis_mode", "sentinel")
            .set("session_redis_sentinel_list", hosts)
            .set("session_redis_master", "mymaster")
            .build()
            .unwrap();
        Arc::new(RedisBackend::from_config(&config).unwrap())
    };
    assert_eq!(
        place(&sentinel("[('127.0.0.1', 26379), ('127.0.0.2', 26380)]")),
        place(&sentinel("[('127.0.0.2', 26380), ('127.0.0.1', 26379)]"))
    );
    let dir = tempfile::tempdir().unwrap();
    let files = |path: std::path::PathBuf| -> Arc<dyn SessionBackend> {
        Arc::new(FileBackend::new(path).unwrap())
    };
    assert_eq!(
        place(&files(dir.path().to_path_buf())),
        place(&files(dir.path().join(".")))
    );
    let memory = |b: &Arc<dyn SessionBackend>| b.place(&id);
    let one: Arc<dyn SessionBackend> =
        Arc::new(session_core::backends::memory::MemoryBackend::new());
    assert_eq!(memory(&one), memory(&one.clone()));
    assert_ne!(
        memory(&one),
        memory(
            &(Arc::new(session_core::backends::memory::MemoryBackend::new())
                as Arc<dyn SessionBackend>)
        )
    );
}

/// A logout that lands while a move into the same key is under way (after the move read the
/// session in the old pool, before it looked at the new pool, which keeps it under the same
/// key) stays a logout: the move must not create the session again where the logout just
/// deleted it. Before the check, the move found no copy in the new pool, created one, and
/// the session was back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_logout_during_a_move_into_the_same_key_sticks() {
    use session_core::BackendMode;
    let servers = three();
    let (old_pool, new_pool) = old_and_probed_new(&servers);
    let data = state(&[("n", "1")]);
    for touch in [None, Some(std::time::Duration::from_secs(60))] {
        let id = an_id_that_stays(&*old_pool, &new_pool);
        assert!(old_pool.create(&id, &data, None).await.unwrap());
        // Write only: a new pool that loads also read is asked for the session instead of
        // the old pool (same key), and no move happens at all.
        let multi = Arc::new(old_first(
            old_pool.clone(),
            Arc::new(new_pool.clone()),
            vec![BackendMode::Write],
        ));
        // The move's look at the new pool waits until the logout is done.
        let loaded = load_during_a_logout(multi, &new_pool, &old_pool, &id, touch).await;
        assert_eq!(loaded, None, "touch: {touch:?}");
        assert_eq!(old_pool.load(&id, None).await.unwrap(), None);
        for server in &servers {
            assert_eq!(server.cmd::<Vec<String>>(&["KEYS", "*"]).len(), 0);
        }
    }
}

/// With the old pool listed first, a session that kept its member is read through the new
/// pool (the same key), as a plain load: the old pool is asked only for the sessions that
/// moved to the new member, which go through the move.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_old_pool_is_asked_only_for_sessions_that_change_member() {
    use session_core::BackendMode;
    let servers = three();
    let (old, new) = grown(&servers);
    let old_pool = ProbeBackend::new(PoolBackend::from_config(&pool_config(&old)).unwrap());
    let new_pool: Arc<dyn SessionBackend> =
        Arc::new(PoolBackend::from_config(&pool_config(&new)).unwrap());
    let multi = old_first(
        Arc::new(old_pool.clone()),
        new_pool.clone(),
        vec![BackendMode::Read, BackendMode::Write],
    );
    let data = state(&[("n", "1")]);
    let mut changing = 0;
    for _ in 0..60 {
        let id = SessionId::generate();
        assert!(old_pool.create(&id, &data, None).await.unwrap());
        if old_pool.place(&id) != new_pool.place(&id) {
            changing += 1;
        }
        old_pool.reset();
        assert_eq!(multi.load(&id, None).await.unwrap(), Some(data.clone()));
        assert_eq!(new_pool.load(&id, None).await.unwrap(), Some(data.clone()));
        let asked = old_pool.count(Op::Load);
        if old_pool.place(&id) == new_pool.place(&id) {
            assert_eq!(asked, 0, "a session that kept its member");
        } else {
            assert!(asked >= 1, "a session that changed member");
        }
    }
    assert!(
        (5..=40).contains(&changing),
        "{changing} of 60 changed member"
    );
}

/// The pool of the first two servers, and the pool grown by the third behind a probe.
fn old_and_probed_new(servers: &[RedisServer; 3]) -> (Arc<dyn SessionBackend>, ProbeBackend) {
    let (old, new) = grown(servers);
    (
        Arc::new(PoolBackend::from_config(&pool_config(&old)).unwrap()),
        ProbeBackend::new(PoolBackend::from_config(&pool_config(&new)).unwrap()),
    )
}

/// A session id that keeps its member from the pool `old` to the pool `new`: the same key
/// in both.
fn an_id_that_stays(old: &dyn SessionBackend, new: &dyn SessionBackend) -> SessionId {
    loop {
        let id = SessionId::generate();
        if old.place(&id) == new.place(&id) {
            return id;
        }
    }
}

/// `multi`'s load of `id`, with another process's logout (a delete through `old_pool`; this
/// process's own would wait for the load) done while the load's look at `new_pool` waits.
async fn load_during_a_logout(
    multi: Arc<MultiBackend>,
    new_pool: &ProbeBackend,
    old_pool: &Arc<dyn SessionBackend>,
    id: &SessionId,
    touch: Option<std::time::Duration>,
) -> Option<SessionState> {
    let pause = new_pool.pause(Op::Load);
    let loading = tokio::spawn({
        let id = id.clone();
        async move { multi.load(&id, touch).await }
    });
    pause.reached().await;
    assert!(old_pool.delete(id).await.unwrap());
    pause.release();
    loading.await.unwrap().unwrap()
}

/// Growing a pool while a mirror (another engine, `write` only) is filled for a later
/// switch, the old pool listed first: every session reaches the mirror, those that kept
/// their member too (a load that read them through the new pool alone, skipping the move,
/// left the mirror without them: a review found it), and the new pool keeps them all. A
/// logout racing a load that reads through the new pool sticks, and a logout afterwards
/// removes every copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mirror_gets_every_session_of_a_growing_pool() {
    use session_core::BackendMode;
    let servers = three();
    let (old_pool, new_pool) = old_and_probed_new(&servers);
    let mirror = memory();
    let new: Arc<dyn SessionBackend> = Arc::new(new_pool.clone());
    let multi = with_mirror(&old_pool, &new, mirror.clone(), false);
    let data = state(&[("n", "1")]);
    let (mut stayed, mut moved) = (0, 0);
    let mut ids = Vec::new();
    for _ in 0..60 {
        let id = SessionId::generate();
        assert!(old_pool.create(&id, &data, None).await.unwrap());
        if old_pool.place(&id) == new_pool.place(&id) {
            stayed += 1;
        } else {
            moved += 1;
        }
        assert_eq!(multi.load(&id, None).await.unwrap(), Some(data.clone()));
        assert_eq!(
            mirror.load(&id, None).await.unwrap(),
            Some(data.clone()),
            "the mirror has every session"
        );
        assert_eq!(new_pool.load(&id, None).await.unwrap(), Some(data.clone()));
        ids.push(id);
    }
    assert!(stayed >= 5 && moved >= 5, "{stayed} stayed, {moved} moved");
    for id in &ids {
        assert!(multi.delete(id).await.unwrap());
        assert_eq!(mirror.load(id, None).await.unwrap(), None);
    }
    for server in &servers {
        common::only_markers(server, "*");
    }

    // Without a mirror, a session that kept its member is read through the new pool alone;
    // a logout while that read waits sticks.
    let multi = Arc::new(old_first(
        old_pool.clone(),
        Arc::new(new_pool.clone()),
        vec![BackendMode::Read, BackendMode::Write],
    ));
    let id = an_id_that_stays(&*old_pool, &new_pool);
    assert!(old_pool.create(&id, &data, None).await.unwrap());
    let loaded = load_during_a_logout(multi, &new_pool, &old_pool, &id, None).await;
    assert_eq!(loaded, None);
    for server in &servers {
        common::only_markers(server, "*");
    }
}

/// A multi-backend of `old` (`read`, `delete`), `new` (`read`, `write`) and `mirror`
/// (`write`, listed before `new` when `mirror_first`). With one memory store as both `old`
/// and `new`, every session keeps its place, as in a grown pool.
fn with_mirror(
    old: &Arc<dyn SessionBackend>,
    new: &Arc<dyn SessionBackend>,
    mirror: Arc<dyn SessionBackend>,
    mirror_first: bool,
) -> Arc<MultiBackend> {
    use session_core::{BackendMode, TtlRule};
    let new = (
        "new".into(),
        vec![BackendMode::Read, BackendMode::Write],
        new.clone(),
    );
    let mirror = ("mirror".into(), vec![BackendMode::Write], mirror);
    let old = (
        "old".into(),
        vec![BackendMode::Read, BackendMode::Delete],
        old.clone(),
    );
    let backends = if mirror_first {
        vec![old, mirror, new]
    } else {
        vec![old, new, mirror]
    };
    Arc::new(MultiBackend::new(backends, TtlRule::default()))
}

fn memory() -> Arc<dyn SessionBackend> {
    Arc::new(session_core::backends::memory::MemoryBackend::new())
}

/// A write that lands while a move copies a session into the mirror (writes take no lock)
/// reaches the new pool and not the mirror, whose copy, made from the state read before,
/// is then stale. The load and every later one answer the new pool's copy, where later
/// loads read the session, in either order of the two: before, the copy of the writer
/// listed last won, and with the mirror last every later load answered its stale copy,
/// hiding the acknowledged write (found by a review). And a mirror filled apart, which
/// missed a write made through the old pool alone (a process still on the old
/// configuration), neither answers a load nor seeds the new pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_load_answers_the_readable_writers_copy_over_a_stale_mirror() {
    for mirror_first in [false, true] {
        let shared = memory();
        let mirror = ProbeBackend::wrap(memory());
        let multi = with_mirror(&shared, &shared, Arc::new(mirror.clone()), mirror_first);
        let id = SessionId::generate();
        assert!(shared
            .create(&id, &state(&[("n", "1")]), None)
            .await
            .unwrap());
        // The move's look at the mirror waits while another request writes.
        let pause = mirror.pause(Op::Load);
        let loading = tokio::spawn({
            let (multi, id) = (multi.clone(), id.clone());
            async move { multi.load(&id, None).await }
        });
        pause.reached().await;
        let mut changes = Changes::default();
        changes.set("n", "2");
        assert!(multi.apply(&id, &changes, None).await.unwrap());
        pause.release();
        // The load ran alongside the write: it answers the state before it or after it.
        let answered = loading.await.unwrap().unwrap().unwrap();
        assert!(["1", "2"].contains(&answered["n"].as_str()));
        let now = Some(state(&[("n", "2")]));
        assert_eq!(shared.load(&id, None).await.unwrap(), now);
        for _ in 0..2 {
            let loaded = multi.load(&id, None).await.unwrap();
            assert_eq!(loaded, now, "mirror first: {mirror_first}");
        }

        // The old pool and the new one apart: the session is only in the old pool, with a
        // write the mirror (filled before it) missed.
        let (old, new, mirror) = (memory(), memory(), memory());
        let multi = with_mirror(&old, &new, mirror.clone(), mirror_first);
        assert!(mirror
            .create(&id, &state(&[("n", "1")]), None)
            .await
            .unwrap());
        assert!(old.create(&id, &state(&[("n", "2")]), None).await.unwrap());
        assert_eq!(multi.load(&id, None).await.unwrap(), now);
        assert_eq!(new.load(&id, None).await.unwrap(), now);
        assert_eq!(multi.load(&id, None).await.unwrap(), now);
    }
}

/// When the mirror reports the session there (another process's move made its copy) and
/// that copy is gone when the move reads it (expired), the move creates it there again and
/// goes on: the session moves, whether the source is the new pool's own key (a grown pool)
/// or another store. Before, the move answered no session and deleted the source, which in
/// the grown pool was the live session (found by a review). Gone a second time, the load
/// fails with an error to retry and the source keeps the session; a logout racing all this
/// still sticks.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mirror_copy_gone_during_a_move_never_takes_the_session_with_it() {
    let data = state(&[("n", "1")]);
    for (shared, vanishes, logout) in [
        (true, 1, false),
        (false, 1, false),
        (true, 2, false),
        (false, 2, false),
        (false, 1, true),
    ] {
        let label = format!("shared place {shared}, gone {vanishes} times, logout {logout}");
        let old = memory();
        let new = if shared { old.clone() } else { memory() };
        let mirror_store = memory();
        let mirror = ProbeBackend::wrap(mirror_store.clone());
        let multi = with_mirror(&old, &new, Arc::new(mirror.clone()), true);
        let id = SessionId::generate();
        assert!(old.create(&id, &data, None).await.unwrap());
        let mut creating = mirror.pause(Op::Create);
        let loading = tokio::spawn({
            let (multi, id) = (multi.clone(), id.clone());
            async move { multi.load(&id, None).await }
        });
        for time in 1..=vanishes {
            creating.reached().await;
            // Another process's move copies the session into the mirror first...
            assert!(mirror_store.create(&id, &data, None).await.unwrap());
            let reading = mirror.pause(Op::Load);
            let next = mirror.pause(Op::Create);
            creating.release();
            reading.reached().await;
            // ...and that copy expires (or a logout removes the source, then the copy)
            // before this move reads it.
            if logout && time == 1 {
                assert!(old.delete(&id).await.unwrap());
            }
            assert!(mirror_store.delete(&id).await.unwrap());
            reading.release();
            creating = next;
        }
        creating.release();
        let loaded = loading.await.unwrap();
        let everywhere = [&old, &new, &mirror_store];
        if logout {
            assert_eq!(loaded.unwrap(), None, "{label}");
            for b in everywhere {
                assert_eq!(b.load(&id, None).await.unwrap(), None, "{label}");
            }
        } else if vanishes == 2 {
            assert!(loaded.unwrap_err().is_unavailable(), "{label}");
            assert_eq!(old.load(&id, None).await.unwrap(), Some(data.clone()));
            assert_eq!(multi.load(&id, None).await.unwrap(), Some(data.clone()));
        } else {
            assert_eq!(loaded.unwrap(), Some(data.clone()), "{label}");
            assert_eq!(new.load(&id, None).await.unwrap(), Some(data.clone()));
            assert_eq!(
                mirror_store.load(&id, None).await.unwrap(),
                Some(data.clone())
            );
            let in_old = old.load(&id, None).await.unwrap();
            assert_eq!(in_old.is_some(), shared, "{label}");
        }
    }
}

/// A move whose request is dropped midway (a client gone, a timeout layer) still runs to its
/// end, so a logout that another process made meanwhile stays a logout: the move's last step
/// is what tells it. Here the move created its copy in the new store after the logout had
/// deleted the session from both, and the request is dropped before the move's look at the
/// old store: before, the copy stayed and every later load answered the session again
/// (found by a review).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_logout_sticks_when_the_moving_request_is_dropped() {
    use session_core::BackendMode;
    let (old, new) = (ProbeBackend::wrap(memory()), ProbeBackend::wrap(memory()));
    let process = || {
        old_first(
            Arc::new(old.clone()),
            Arc::new(new.clone()),
            vec![BackendMode::Read, BackendMode::Write],
        )
    };
    let (this, other) = (Arc::new(process()), process());
    let id = SessionId::generate();
    assert!(old.create(&id, &state(&[("n", "1")]), None).await.unwrap());
    // The move's look at the new store waits while another process logs out.
    let look = new.pause(Op::Load);
    let loading = tokio::spawn({
        let (this, id) = (this.clone(), id.clone());
        async move { this.load(&id, None).await }
    });
    look.reached().await;
    assert!(other.delete(&id).await.unwrap());
    // The move creates its copy, then waits at the old store, where the request is dropped.
    let last_step = old.pause(Op::Delete);
    look.release();
    last_step.reached().await;
    loading.abort();
    assert!(loading.await.unwrap_err().is_cancelled());
    last_step.release();
    let mut waited = 0;
    while new.load(&id, None).await.unwrap().is_some() && waited < 100 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        waited += 1;
    }
    assert_eq!(
        new.load(&id, None).await.unwrap(),
        None,
        "the logout was undone"
    );
    assert_eq!(this.load(&id, None).await.unwrap(), None);
    assert_eq!(old.load(&id, None).await.unwrap(), None);
}

/// An id given twice in one batch of the mover (its public API does not forbid it) is moved
/// once and both get its answer. Before, the two moves each created it in a Redis target (a
/// create that finds exactly its own value reports success), then took the other's delete
/// of the source for a logout and deleted the session everywhere (found by a review).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_given_twice_to_the_mover_moves_once() {
    use session_core::{
        mover::{MoveOutcome, Mover},
        TtlRule,
    };
    let server = RedisServer::start();
    let target: Arc<dyn SessionBackend> =
        Arc::new(PoolBackend::from_config(&pool_config(&[(server.port(), 1)])).unwrap());
    let source = memory();
    let id = SessionId::generate();
    let data = state(&[("n", "1")]);
    assert!(source.create(&id, &data, None).await.unwrap());
    let mover = Mover::new(source.clone(), target.clone(), TtlRule::default());
    let moved: Vec<MoveOutcome> = mover
        .move_many(&[id.clone(), id.clone()])
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(moved, [MoveOutcome::Created, MoveOutcome::Created]);
    assert_eq!(target.load(&id, None).await.unwrap(), Some(data));
    assert_eq!(source.load(&id, None).await.unwrap(), None);
}

/// With write-only backends alone (reads from another backend), a writer that keeps the
/// session in the source's own place holds the live copy: a move answers it over a mirror's
/// listed first, which missed a write (found by a review).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_in_the_sources_place_wins_over_a_mirror_listed_first() {
    use session_core::{BackendMode, TtlRule};
    let (live, mirror) = (memory(), memory());
    let multi = MultiBackend::new(
        vec![
            (
                "reads".into(),
                vec![BackendMode::Read, BackendMode::Delete],
                live.clone(),
            ),
            ("mirror".into(), vec![BackendMode::Write], mirror.clone()),
            ("writes".into(), vec![BackendMode::Write], live.clone()),
        ],
        TtlRule::default(),
    );
    let id = SessionId::generate();
    assert!(mirror
        .create(&id, &state(&[("n", "1")]), None)
        .await
        .unwrap());
    assert!(live.create(&id, &state(&[("n", "2")]), None).await.unwrap());
    for _ in 0..2 {
        assert_eq!(
            multi.load(&id, None).await.unwrap(),
            Some(state(&[("n", "2")]))
        );
    }
}

/// A logout deletes the `read`, `write` backends before the write-only ones (mirrors): a copy
/// into a mirror out of the new store (`sessionctl migrate --from NEW --to MIRROR`, keeping
/// the source), with the mirror listed first, has the new store as its source, and rule 1
/// must hold for it too. Here the copy runs while the logout waits at the new store: before,
/// the mirror had been deleted already, the copy created it there again, and the logged-out
/// session stayed in the mirror (found by a review).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_logout_sticks_in_a_mirror_being_copied_into_from_the_new_store() {
    use session_core::{mover::Mover, TtlRule};
    let (old, mirror) = (memory(), memory());
    let new = ProbeBackend::wrap(memory());
    let app = with_mirror(&old, &(Arc::new(new.clone()) as _), mirror.clone(), true);
    let id = SessionId::generate();
    assert!(new.create(&id, &state(&[("n", "1")]), None).await.unwrap());
    let reaching_new = new.pause(Op::Delete);
    let logout = tokio::spawn({
        let (app, id) = (app.clone(), id.clone());
        async move { app.delete(&id).await }
    });
    reaching_new.reached().await;
    let copier =
        Mover::new(Arc::new(new.clone()), mirror.clone(), TtlRule::default()).keep_source(true);
    copier.move_one(&id).await.unwrap();
    reaching_new.release();
    assert!(logout.await.unwrap().unwrap());
    for b in [&old, &mirror] {
        assert_eq!(b.load(&id, None).await.unwrap(), None);
    }
    assert_eq!(new.load(&id, None).await.unwrap(), None);
}

/// A logout by clearing the session reaches a multi-backend as a write that leaves no key,
/// not as a delete; it removes the copies of the backends sessions move from too, first, as
/// a delete does. Here the sessions were copied (the old store kept its copies): before, the
/// next load found the old copy and moved it back (found by a review).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_by_clearing_removes_the_copy_left_where_sessions_move_from() {
    let (old, new) = (memory(), memory());
    let multi = new_first(new.clone(), old.clone());
    let data = state(&[("user", "\"alice\"")]);
    let id = SessionId::generate();
    for b in [&old, &new] {
        assert!(b.create(&id, &data, None).await.unwrap());
    }
    let mut clear = Changes::default();
    clear.remove("user");
    let version = multi.load_versioned(&id, None).await.unwrap().unwrap().1;
    assert!(multi
        .apply_versioned(&id, version, &[], &clear, None)
        .await
        .unwrap());
    assert_eq!(multi.load(&id, None).await.unwrap(), None);
    assert_eq!(old.load(&id, None).await.unwrap(), None);
}

/// The same logout by clearing, where the backend sessions move from keeps the session in
/// the writer's own place (a pool and the same pool with a member more; here one store
/// listed twice): that "copy" is the session the write is about. A concurrent request's
/// acknowledged write of another key stays, as it does through the writer alone; before,
/// the clearing deleted the session first and took that write with it (sixth review).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_by_clearing_keeps_a_concurrent_write_when_the_source_is_the_same_place() {
    for via_multi in [false, true] {
        let store = memory();
        let multi = new_first(store.clone(), store.clone());
        let b: &dyn SessionBackend = if via_multi { &multi } else { store.as_ref() };
        let id = SessionId::generate();
        assert!(store
            .create(&id, &state(&[("user", "\"alice\"")]), None)
            .await
            .unwrap());
        let (loaded, version) = b.load_versioned(&id, None).await.unwrap().unwrap();
        let mut flash = Changes::default();
        flash.set("flash", "\"saved\"");
        assert!(b.apply(&id, &flash, None).await.unwrap());
        let mut clear = Changes::default();
        for key in loaded.keys() {
            clear.remove(key.clone());
        }
        b.apply_versioned(&id, version, &[], &clear, None)
            .await
            .unwrap();
        assert_eq!(
            store.load(&id, None).await.unwrap(),
            Some(state(&[("flash", "\"saved\"")])),
            "through the multi-backend: {via_multi}"
        );
    }
}

/// A move that takes a live copy (a `read`, `write` backend had the session already)
/// creates the copies after it (a mirror) with that copy's expiry, not the source's: a
/// leftover source copy of an earlier configuration, with a longer lifetime, must not give
/// the mirror a copy that outlives the session and comes back after the switch (sixth
/// review).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_copy_made_from_a_live_copy_gets_its_expiry() {
    use session_core::{BackendMode, TtlRule};
    use std::time::Duration;
    let (old, new, mirror) = (memory(), memory(), memory());
    let multi = MultiBackend::new(
        vec![
            (
                "old".into(),
                vec![BackendMode::Read, BackendMode::Delete],
                old.clone(),
            ),
            (
                "new".into(),
                vec![BackendMode::Read, BackendMode::Write],
                new.clone(),
            ),
            ("mirror".into(), vec![BackendMode::Write], mirror.clone()),
        ],
        TtlRule::default(),
    );
    let id = SessionId::generate();
    let data = state(&[("user", "\"alice\"")]);
    assert!(old
        .create(&id, &data, Some(Duration::from_secs(3600)))
        .await
        .unwrap());
    assert!(new
        .create(&id, &data, Some(Duration::from_secs(10)))
        .await
        .unwrap());
    assert_eq!(multi.load(&id, None).await.unwrap(), Some(data));
    let (_, left) = mirror
        .load_with_ttl(&id)
        .await
        .unwrap()
        .expect("the mirror's copy");
    let left = left.expect("an expiry");
    assert!(left <= Duration::from_secs(10), "{left:?}");
}

/// A pool's batch operations go only to the members that own some of the batch: a member
/// that does not answer (a frozen machine: connections accepted, nothing answered) must not
/// hold up batches of sessions that all live on the others. Every member was sent its part,
/// even an empty one, and the empty call still waited for a connection to the hung member:
/// each move of a session by a multi-backend (a batch of one) into a grown pool, and each
/// batch of `sessionctl migrate`, waited for its timeouts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_member_does_not_slow_batches_it_has_no_part_in() {
    use std::time::{Duration, Instant};
    let servers = three();
    let (old, new) = grown(&servers);
    let old_pool: Arc<dyn SessionBackend> =
        Arc::new(PoolBackend::from_config(&pool_config(&old)).unwrap());
    let new_pool = PoolBackend::from_config(&pool_config(&new)).unwrap();
    // The second member hangs; the sessions move from the first to the third.
    let hung = new_pool.identities()[1].to_owned();
    let new_pool: Arc<dyn SessionBackend> = Arc::new(new_pool);
    let routing = PoolBackend::from_config(&pool_config(&old)).unwrap();
    let mut ids = Vec::new();
    while ids.len() < 3 {
        let id = SessionId::generate();
        if old_pool.place(&id) != new_pool.place(&id) && routing.route(&id) != hung {
            ids.push(id);
        }
    }
    let data = state(&[("n", "1")]);
    for id in &ids {
        assert!(old_pool.create(id, &data, None).await.unwrap());
    }
    servers[1].pause();
    let multi = new_first(new_pool.clone(), old_pool.clone());
    let started = Instant::now();
    for id in &ids {
        assert_eq!(multi.load(id, None).await.unwrap(), Some(data.clone()));
    }
    let took = started.elapsed();
    let started = Instant::now();
    for answer in new_pool.delete_many(&ids).await {
        assert!(answer.unwrap());
    }
    let deleting = started.elapsed();
    servers[1].resume();
    // Socket timeouts of 0.5 s: a move waiting for the hung member takes a second or more.
    assert!(
        took < Duration::from_millis(900) && deleting < Duration::from_millis(300),
        "three moves took {took:?}, a batch delete {deleting:?}"
    );
}

/// A multi-backend answers `load_with_ttl` (the tower-sessions adapter's load,
/// `sessionctl show`) with the lifetime left where the session is: the write backend's own,
/// or, for a session the load moves, the one the move gave its copy (the old store's). It
/// used to take the trait's default, a plain load that knows no lifetime: "no expiry" for
/// every session.
#[tokio::test]
async fn multi_load_with_ttl_reports_the_lifetime_left() {
    let (old, new, mirror) = (memory(), memory(), memory());
    // The mirror (a write backend that is not read) listed first, as a configuration may.
    let multi = with_mirror(&old, &new, mirror.clone(), true);
    let hour = std::time::Duration::from_secs(3600);
    let within = |left: Option<std::time::Duration>, of: std::time::Duration| {
        let left = left.expect("a session with an expiry reports it");
        assert!(
            left <= of && left > of - std::time::Duration::from_secs(60),
            "{left:?} of {of:?}"
        );
    };
    let data = state(&[("n", "1")]);

    let kept = SessionId::generate();
    assert!(new.create(&kept, &data, Some(hour)).await.unwrap());
    let (found, left) = multi.load_with_ttl(&kept).await.unwrap().unwrap();
    assert_eq!(found, data);
    within(left, hour);

    let lasting = SessionId::generate();
    assert!(new.create(&lasting, &data, None).await.unwrap());
    assert_eq!(
        multi.load_with_ttl(&lasting).await.unwrap(),
        Some((data.clone(), None))
    );

    let moving = SessionId::generate();
    assert!(old.create(&moving, &data, Some(hour * 2)).await.unwrap());
    let (found, left) = multi.load_with_ttl(&moving).await.unwrap().unwrap();
    assert_eq!(found, data);
    within(left, hour * 2);
    assert!(old.load(&moving, None).await.unwrap().is_none(), "moved");
    within(
        new.load_with_ttl(&moving).await.unwrap().unwrap().1,
        hour * 2,
    );

    assert_eq!(
        multi.load_with_ttl(&SessionId::generate()).await.unwrap(),
        None
    );
}
