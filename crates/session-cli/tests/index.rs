//! `sessionctl` with `session_redis_index_key`: `revoke --where` on the indexed key asks the
//! index (no scan), `--scan` forces the scan, `reindex` indexes the sessions written before
//! the index was enabled, and `check` dry-runs the index's commands too. Against real
//! servers: standalone, Cluster, the weighted pool and the file store.

mod common;

use std::time::Duration;

use common::{id, put, sessionctl};
use session_core::{IndexName, SessionConfig, SessionState, SessionStore};
use session_testkit::{ClusterTopology, RedisServer};

const TTL: Option<Duration> = Some(Duration::from_secs(600));

/// Sessions written by the library itself, with the index configured as in `env`.
fn write_through_library(env: &[(&str, &str)], users: &[&str]) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut builder = SessionConfig::builder();
        for (k, v) in env {
            builder = builder.set(k, v);
        }
        let store = SessionStore::from_config(&builder.build().unwrap())
            .await
            .unwrap();
        for user in users {
            let state = SessionState::from([
                ("user".to_owned(), format!("{user:?}")),
                ("n".to_owned(), "1".to_owned()),
            ]);
            store.create(&state, TTL).await.unwrap();
        }
    });
}

#[test]
fn revoke_where_asks_the_index_and_reindex_covers_older_sessions() {
    let server = RedisServer::start();
    let url = server.url();
    let env = [
        ("SESSION_REDIS_URL", url.as_str()),
        ("SESSION_REDIS_INDEX_KEY", "user"),
    ];
    write_through_library(&env, &["alice", "alice", "bob"]);
    // Two of alice's sessions written before the index existed: not in it.
    put(
        &server,
        "session:",
        &[
            (id(1), vec![("user", "\"alice\"")], Some(600_000)),
            (id(2), vec![("user", "\"alice\"")], None),
            (id(3), vec![("n", "1")], None),
        ],
    );

    let _: () = server.cmd(&["CONFIG", "RESETSTAT"]);
    let json = sessionctl(
        &["revoke", "--where", "user=alice", "--dry-run", "--json"],
        &env,
    )
    .expect(0)
    .json();
    assert_eq!(json["found_by"], "index", "{json}");
    assert_eq!(
        json["matched"], 2,
        "the index knows the library's two: {json}"
    );
    assert_eq!(server.calls("scan"), 0, "no scan when the index answers");
    let json = sessionctl(
        &[
            "revoke",
            "--where",
            "user=alice",
            "--dry-run",
            "--scan",
            "--json",
        ],
        &env,
    )
    .expect(0)
    .json();
    assert_eq!(json["found_by"], "scan");
    assert_eq!(json["matched"], 4, "the scan finds all four: {json}");

    let run = sessionctl(&["reindex", "--dry-run"], &env).expect(0);
    assert!(
        run.stdout
            .contains("would index 5 of 6 session(s) by `user`"),
        "{}",
        run.stdout
    );
    let json = sessionctl(&["reindex", "--json"], &env).expect(0).json();
    assert_eq!(
        (json["scanned"].clone(), json["indexed"].clone()),
        (6.into(), 5.into())
    );
    // Again: nothing new, nothing doubled.
    sessionctl(&["reindex"], &env).expect(0);
    // `stats` counts the entries (one per value: alice's and bob's) apart from the sessions.
    let stats = sessionctl(&["stats", "--json"], &env).expect(0).json();
    assert_eq!(
        (
            stats[0]["sessions"].clone(),
            stats[0]["index_entries"].clone(),
            stats[0]["other_keys"].clone()
        ),
        (6.into(), 2.into(), 0.into()),
        "{stats}"
    );

    let _: () = server.cmd(&["CONFIG", "RESETSTAT"]);
    let run = sessionctl(&["revoke", "--where", "user=alice"], &env).expect(0);
    assert_eq!(run.stdout, "revoked 4 session(s)\n");
    assert_eq!(server.calls("scan"), 0);
    // A JSON value given as such, and the one session left with `user`.
    let json = sessionctl(&["revoke", "--where", "user=\"bob\"", "--json"], &env)
        .expect(0)
        .json();
    assert_eq!(json["revoked"], 1, "{json}");
    let keys: Vec<String> = server.cmd(&["KEYS", "*"]);
    assert_eq!(
        keys,
        vec![format!("session:{}", id(3))],
        "only the session without a user, and no index entry, is left"
    );

    // Another key than the indexed one: scanned, as before.
    let json = sessionctl(&["revoke", "--where", "n=1", "--json"], &env)
        .expect(0)
        .json();
    assert_eq!(
        (json["found_by"].clone(), json["revoked"].clone()),
        ("scan".into(), 1.into())
    );
}

#[test]
fn index_failures_are_clear() {
    let server = RedisServer::start();
    let url = server.url();
    let without = [("SESSION_REDIS_URL", url.as_str())];
    let run = sessionctl(&["reindex"], &without).expect(2);
    assert!(
        run.stderr.contains("session_redis_index_key"),
        "{}",
        run.stderr
    );
    let run = sessionctl(&["revoke", "--scan", "user"], &without).expect(2);
    assert!(run.stderr.contains("--where"), "{}", run.stderr);

    let env = [
        ("SESSION_REDIS_URL", url.as_str()),
        ("SESSION_REDIS_INDEX_KEY", "bad key!"),
    ];
    let run = sessionctl(&["revoke", "--where", "user=alice"], &env).expect(2);
    assert!(
        run.stderr.contains("session_redis_index_key") && run.stderr.contains("bad key!"),
        "{}",
        run.stderr
    );

    let env = [
        ("SESSION_REDIS_URL", url.as_str()),
        ("SESSION_REDIS_INDEX_KEY", "user"),
        ("SESSION_REDIS_SOCKET_TIMEOUT", "1"),
    ];
    server.kill();
    let run = sessionctl(&["revoke", "--where", "user=alice"], &env).expect(1);
    assert!(
        run.stderr.contains("unavailable") && run.stderr.contains("sessionctl check"),
        "{}",
        run.stderr
    );
    sessionctl(&["reindex"], &env).expect(1);
}

#[test]
fn cluster_check_dry_runs_the_index_and_revoke_finds_sessions_on_every_master() {
    let cluster = ClusterTopology::start();
    let seeds = cluster.seed_hosts();
    let env = [
        ("SESSION_REDIS_MODE", "cluster"),
        ("SESSION_REDIS_HOST", seeds.as_str()),
        ("SESSION_REDIS_INDEX_KEY", "user"),
    ];
    let json = sessionctl(&["check", "--json"], &env).expect(0).json();
    for run in json["dry_runs"].as_array().unwrap() {
        assert_eq!(run["ok"], true, "{json}");
        assert!(
            run["steps"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == "index"),
            "{json}"
        );
    }
    let keys: i64 = cluster.nodes().map(|n| n.cmd::<i64>(&["DBSIZE"])).sum();
    assert_eq!(
        keys, 0,
        "the throwaway sessions and their index entries are removed"
    );

    write_through_library(&env, &["alice"; 30]);
    write_through_library(&env, &["bob"; 5]);
    let json = sessionctl(&["revoke", "--where", "user=alice", "--json"], &env)
        .expect(0)
        .json();
    assert_eq!(
        (json["found_by"].clone(), json["revoked"].clone()),
        ("index".into(), 30.into()),
        "{json}"
    );
    let run = sessionctl(&["export"], &env).expect(0);
    assert_eq!(run.stdout.lines().count(), 5);
}

#[test]
fn pool_and_file_store_revoke_through_the_index() {
    let servers = [RedisServer::start(), RedisServer::start()];
    let pool = RedisServer::pool_setting(&[&servers[0], &servers[1]]);
    let env = [
        ("SESSION_REDIS_POOL", pool.as_str()),
        ("SESSION_REDIS_INDEX_KEY", "user"),
    ];
    sessionctl(&["check"], &env).expect(0);
    write_through_library(&env, &["alice"; 20]);
    let json = sessionctl(&["revoke", "--where", "user=alice", "--json"], &env)
        .expect(0)
        .json();
    assert_eq!(
        (json["found_by"].clone(), json["revoked"].clone()),
        ("index".into(), 20.into())
    );
    for server in &servers {
        assert_eq!(server.cmd::<i64>(&["DBSIZE"]), 0);
    }

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("sessions");
    let root = root.to_str().unwrap();
    let env = [
        ("SESSION_REDIS_MODE", "False"),
        ("SESSION_FILESTORE_PATH", root),
        ("SESSION_REDIS_INDEX_KEY", "user"),
    ];
    sessionctl(&["check"], &env).expect(0);
    write_through_library(&env, &["alice", "alice", "bob"]);
    // A session file written before the index: found after `reindex`.
    let unindexed = [
        ("SESSION_REDIS_MODE", "False"),
        ("SESSION_FILESTORE_PATH", root),
    ];
    write_through_library(&unindexed, &["alice"]);
    let json = sessionctl(
        &["revoke", "--where", "user=alice", "--dry-run", "--json"],
        &env,
    )
    .expect(0)
    .json();
    assert_eq!(json["matched"], 2, "{json}");
    let run = sessionctl(&["reindex"], &env).expect(0);
    assert_eq!(run.stdout, "indexed 4 of 4 session(s) by `user`\n");
    let run = sessionctl(&["revoke", "--where", "user=alice"], &env).expect(0);
    assert_eq!(run.stdout, "revoked 3 session(s)\n");
    let run = sessionctl(&["export"], &env).expect(0);
    assert_eq!(run.stdout.lines().count(), 1);
}

/// `prune-index` sweeps the entries of values nobody writes or looks up again: their stale
/// names (sessions that expired long ago) go, entries left empty disappear, live names stay,
/// and entries of another key are left alone. On Redis and the file store.
#[test]
fn prune_index_sweeps_entries_nobody_looks_up() {
    let server = RedisServer::start();
    let url = server.url();
    let env = [
        ("SESSION_REDIS_URL", url.as_str()),
        ("SESSION_REDIS_INDEX_KEY", "user"),
    ];
    write_through_library(&env, &["alice", "bob"]);
    let entry_key = |key: &str, value: &str| {
        format!(
            "session:index:{key}:{}",
            IndexName::new(key, value).digest()
        )
    };
    for (n, user) in ["\"carol\"", "\"dave\"", "\"erin\""]
        .into_iter()
        .enumerate()
    {
        // Added long ago, for sessions that are gone.
        let _: i64 = server.cmd(&["ZADD", &entry_key("user", user), "1000", &id(n)]);
    }
    let role = entry_key("role", "\"admin\"");
    let _: i64 = server.cmd(&["ZADD", &role, "1000", &id(9)]);

    let json = sessionctl(&["prune-index", "--dry-run", "--json"], &env)
        .expect(0)
        .json();
    assert_eq!(
        (json["entries"].clone(), json["other_keys"].clone()),
        (5.into(), 1.into())
    );
    let json = sessionctl(&["prune-index", "--json"], &env)
        .expect(0)
        .json();
    assert_eq!(
        (json["emptied"].clone(), json["names_left"].clone()),
        (3.into(), 2.into()),
        "{json}"
    );
    let mut keys: Vec<String> = server.cmd(&["KEYS", "session:index:*"]);
    keys.sort();
    let mut expected = vec![
        entry_key("user", "\"alice\""),
        entry_key("user", "\"bob\""),
        role,
    ];
    expected.sort();
    assert_eq!(keys, expected);
    let stats = sessionctl(&["stats", "--json"], &env).expect(0).json();
    assert_eq!(
        stats[0]["sessions"], 2,
        "the live sessions are untouched: {stats}"
    );

    // The file store: one entry directory per value.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("sessions");
    let root = root.to_str().unwrap();
    let env = [
        ("SESSION_REDIS_MODE", "False"),
        ("SESSION_FILESTORE_PATH", root),
        ("SESSION_REDIS_INDEX_KEY", "user"),
    ];
    write_through_library(&env, &["alice"]);
    let stale = std::path::Path::new(root)
        .join(".index")
        .join(IndexName::new("user", "\"carol\"").digest());
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join(id(1)), "1000").unwrap();
    let run = sessionctl(&["prune-index"], &env).expect(0);
    assert_eq!(
        run.stdout,
        "pruned 2 index entries of `user`: 1 left empty, 1 names left\n"
    );
    assert!(!stale.join(id(1)).exists());
    assert!(!stale.exists(), "the emptied entry's directory stays");

    let run = sessionctl(&["prune-index"], &[("SESSION_REDIS_URL", url.as_str())]).expect(2);
    assert!(
        run.stderr.contains("session_redis_index_key"),
        "{}",
        run.stderr
    );
}

/// `revoke --where` through the index that fails part way says how many sessions it did
/// revoke, as the scanning revoke does: the error alone read as if nothing had happened.
#[test]
fn a_revoke_through_the_index_that_fails_part_way_says_how_many_it_revoked() {
    let server = RedisServer::start();
    let url = server.url();
    let env = [
        ("SESSION_REDIS_URL", url.as_str()),
        ("SESSION_REDIS_INDEX_KEY", "user"),
    ];
    let sessions: Vec<_> = (1..=4)
        .map(|n| (id(n), vec![("user", "\"alice\"")], Some(600_000)))
        .collect();
    put(&server, "session:", &sessions);
    sessionctl(&["reindex"], &env).expect(0);
    // Reads everywhere; deletes of the even ids only (and the index's writes).
    let half = common::half_writable_url(&server, &["%W~session:index:*"]);
    let env = [
        ("SESSION_REDIS_URL", half.as_str()),
        ("SESSION_REDIS_INDEX_KEY", "user"),
    ];
    let run = sessionctl(&["revoke", "--where", "user=alice"], &env).expect(1);
    assert!(
        run.stderr
            .contains("2 session(s) revoked before the failure"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("halfpass"), "{}", run.stderr);
    let left: Vec<String> = server.cmd(&["KEYS", "session:0*"]);
    assert_eq!(left.len(), 2, "{left:?}");
}
