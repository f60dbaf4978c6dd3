//! The standalone Redis backend against real `redis-server` processes (session-testkit).
//!
//! Every behaviour that depends on the connection strategy runs for both: the pool
//! (`single_connection_client = false`) and the single multiplexed connection.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use session_core::{
    backends::redis::{decode_value, RedisBackend},
    plan::{RedisPlan, Strategy},
    Changes, SessionBackend, SessionConfig, SessionId, SessionState, SessionStore, StoreError,
};
use session_testkit::{RedisServer, ServerOptions};

const BOTH: [bool; 2] = [false, true];

fn config(url: String, single: bool) -> SessionConfig {
    SessionConfig {
        url: Some(url),
        single_connection_client: single,
        max_connections: Some(4),
        socket_timeout: Some(0.5),
        socket_connect_timeout: Some(0.5),
        ..SessionConfig::default()
    }
}

fn backend(server: &RedisServer, single: bool) -> RedisBackend {
    RedisBackend::from_config(&config(server.url(), single)).unwrap()
}

fn state(pairs: &[(&str, &str)]) -> SessionState {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn key(id: &SessionId) -> String {
    format!("session:{}", id.as_str())
}

fn pttl(server: &RedisServer, id: &SessionId) -> i64 {
    server.cmd(&["PTTL", &key(id)])
}

fn secs(s: u64) -> Option<Duration> {
    Some(Duration::from_secs(s))
}

fn assert_unavailable(err: &StoreError) {
    assert!(err.is_unavailable(), "expected Unavailable, got {err:?}");
}

/// The sliding-expiry write: the load already reset the TTL, so the write leaves it alone (no
/// second `PEXPIRE`), and still writes nothing to a session deleted meanwhile.
#[tokio::test]
async fn apply_keeping_expiry_leaves_the_ttl_and_the_logout() {
    let server = RedisServer::start();
    let store = SessionStore::new(backend(&server, true));
    let id = store
        .create(&state(&[("a", "1")]), secs(3600))
        .await
        .unwrap();
    assert!(store.load_and_touch(&id, secs(60)).await.unwrap().is_some());
    let mut changes = Changes::default();
    changes.set("b", "2");
    let _: () = server.cmd(&["CONFIG", "RESETSTAT"]);
    assert!(store.apply_keeping_expiry(&id, &changes).await.unwrap());
    let stats: String = server.cmd(&["INFO", "commandstats"]);
    assert!(!stats.contains("cmdstat_pexpire"), "{stats}");
    let ms = pttl(&server, &id);
    assert!(ms > 55_000 && ms <= 60_000, "{ms}");
    assert_eq!(
        store.load(&id).await.unwrap(),
        Some(state(&[("a", "1"), ("b", "2")]))
    );

    // A logout in between: nothing is written, nothing comes back.
    assert!(store.delete(&id).await.unwrap());
    assert!(!store.apply_keeping_expiry(&id, &changes).await.unwrap());
    assert_eq!(server.cmd::<i64>(&["EXISTS", &key(&id)]), 0);
}

#[tokio::test]
async fn crud_for_both_strategies() {
    let server = RedisServer::start();
    for single in BOTH {
        let b = backend(&server, single);
        let id = SessionId::generate();
        let first = state(&[("user", "\"alice\""), ("n", "1")]);

        assert_eq!(b.load(&id, None).await.unwrap(), None);
        assert!(b.create(&id, &first, None).await.unwrap());
        assert!(
            !b.create(&id, &state(&[("x", "2")]), None).await.unwrap(),
            "create must not overwrite"
        );
        assert_eq!(b.load(&id, None).await.unwrap(), Some(first.clone()));
        // Stored as one string: a version header, then the JSON object (readable with
        // redis-cli).
        let stored: String = server.cmd(&["GET", &key(&id)]);
        assert!(stored.starts_with("v1:"), "{stored}");
        assert_eq!(decode_value(stored.as_bytes()).unwrap(), first);

        let mut changes = Changes::default();
        changes.set("n", "2");
        changes.set("cart", "[1,2]");
        changes.remove("user");
        assert!(b.apply(&id, &changes, None).await.unwrap());
        assert_eq!(
            b.load(&id, None).await.unwrap(),
            Some(state(&[("n", "2"), ("cart", "[1,2]")]))
        );

        let replaced = state(&[("only", "true")]);
        assert!(b.replace(&id, &replaced, None).await.unwrap());
        assert_eq!(b.load(&id, None).await.unwrap(), Some(replaced.clone()));
        assert!(b.touch(&id, secs(100)).await.unwrap());

        // Removing every key deletes the session.
        let mut clear = Changes::default();
        clear.remove("only");
        assert!(b.apply(&id, &clear, None).await.unwrap());
        assert_eq!(server.cmd::<i64>(&["EXISTS", &key(&id)]), 0);

        assert!(!b.replace(&id, &replaced, None).await.unwrap());
        assert!(b.create(&id, &replaced, None).await.unwrap());
        assert!(b.delete(&id).await.unwrap());
        assert!(!b.delete(&id).await.unwrap());

        // Conditional writes never bring an absent session back.
        assert!(!b.replace(&id, &replaced, None).await.unwrap());
        assert!(!b.apply(&id, &changes, secs(10)).await.unwrap());
        assert!(!b.touch(&id, secs(10)).await.unwrap());
        assert!(!b.touch(&id, None).await.unwrap());
        assert_eq!(b.load(&id, secs(10)).await.unwrap(), None);
        assert_eq!(server.cmd::<i64>(&["EXISTS", &key(&id)]), 0);
    }
}

#[tokio::test]
async fn a_session_of_10_000_keys() {
    let server = RedisServer::start();
    let b = backend(&server, false);
    let id = SessionId::generate();
    let big: SessionState = (0..10_000)
        .map(|i| (format!("k{i}"), i.to_string()))
        .collect();
    assert!(b.create(&id, &big, None).await.unwrap());
    assert_eq!(b.load(&id, None).await.unwrap().unwrap().len(), 10_000);
    let mut changes = Changes::default();
    for i in 0..9_999 {
        changes.remove(format!("k{i}"));
    }
    changes.set("new", "null");
    assert!(b.apply(&id, &changes, None).await.unwrap());
    assert_eq!(
        b.load(&id, None).await.unwrap(),
        Some(state(&[("k9999", "9999"), ("new", "null")]))
    );
    assert!(b.replace(&id, &big, None).await.unwrap());
    assert_eq!(b.load(&id, None).await.unwrap().unwrap().len(), 10_000);
}

#[tokio::test]
async fn ttl_on_the_key_is_what_was_asked() {
    let server = RedisServer::start();
    let b = backend(&server, false);
    let id = SessionId::generate();
    let s = state(&[("a", "1")]);
    let near = |ms: i64, want: i64| ms <= want && ms > want - 5_000;

    assert!(b.create(&id, &s, secs(100)).await.unwrap());
    assert!(near(pttl(&server, &id), 100_000), "{}", pttl(&server, &id));

    // apply with None leaves the expiry alone; with Some it resets it.
    let mut changes = Changes::default();
    changes.set("b", "2");
    assert!(b.apply(&id, &changes, None).await.unwrap());
    assert!(near(pttl(&server, &id), 100_000));
    assert!(b.apply(&id, &changes, secs(200)).await.unwrap());
    assert!(near(pttl(&server, &id), 200_000));

    // load with touch slides the expiry in the same round trip.
    assert!(b.load(&id, secs(300)).await.unwrap().is_some());
    assert!(near(pttl(&server, &id), 300_000));
    assert!(b.load(&id, None).await.unwrap().is_some());
    assert!(near(pttl(&server, &id), 300_000));

    // replace rewrites the key: without a TTL it has no expiry at all.
    assert!(b.replace(&id, &s, secs(400)).await.unwrap());
    assert!(near(pttl(&server, &id), 400_000));
    assert!(b.replace(&id, &s, None).await.unwrap());
    assert_eq!(pttl(&server, &id), -1);

    assert!(b.touch(&id, secs(50)).await.unwrap());
    assert!(near(pttl(&server, &id), 50_000));
    assert!(b.touch(&id, None).await.unwrap());
    assert_eq!(pttl(&server, &id), -1);

    // Millisecond precision.
    assert!(b
        .touch(&id, Some(Duration::from_millis(1500)))
        .await
        .unwrap());
    let ms = pttl(&server, &id);
    assert!(ms > 1000 && ms <= 1500, "{ms}");

    let other = SessionId::generate();
    assert!(b.create(&other, &s, None).await.unwrap());
    assert_eq!(pttl(&server, &other), -1);
}

#[tokio::test]
async fn key_expire_rule_through_the_store() {
    let server = RedisServer::start();
    let s = state(&[("a", "1")]);

    let store = SessionStore::new(backend(&server, false));
    let id = store.create(&s, secs(3600)).await.unwrap();
    assert!(pttl(&server, &id) > 3_590_000);
    let id = store.create(&s, None).await.unwrap();
    assert_eq!(pttl(&server, &id), -1);

    let store = SessionStore::new(backend(&server, false)).with_key_expire(secs(60));
    let id = store.create(&s, secs(3600)).await.unwrap();
    let ms = pttl(&server, &id);
    assert!(ms > 55_000 && ms <= 60_000, "{ms}");
    assert!(store.touch(&id, None).await.unwrap());
    assert!(pttl(&server, &id) > 55_000);
    let mut changes = Changes::default();
    changes.set("b", "2");
    assert!(store.apply(&id, &changes, secs(3600)).await.unwrap());
    assert!(pttl(&server, &id) <= 60_000);
    assert!(store.load_and_touch(&id, None).await.unwrap().is_some());
    assert!(pttl(&server, &id) <= 60_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_changes_to_different_keys_lose_nothing() {
    let server = RedisServer::start();
    for single in BOTH {
        let b = Arc::new(backend(&server, single));
        let id = SessionId::generate();
        assert!(b
            .create(&id, &state(&[("start", "0")]), secs(600))
            .await
            .unwrap());
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                let (b, id) = (b.clone(), id.clone());
                tokio::spawn(async move {
                    let mut changes = Changes::default();
                    changes.set(format!("k{i}"), i.to_string());
                    b.apply(&id, &changes, secs(600)).await
                })
            })
            .collect();
        for task in tasks {
            assert!(task.await.unwrap().unwrap());
        }
        let loaded = b.load(&id, None).await.unwrap().unwrap();
        assert_eq!(loaded.len(), 101, "single = {single}");
        for i in 0..100 {
            assert_eq!(loaded[&format!("k{i}")], i.to_string());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_racing_with_writes_never_resurrects() {
    let server = RedisServer::start();
    for single in BOTH {
        for round in 0..20 {
            let b = Arc::new(backend(&server, single));
            let id = SessionId::generate();
            assert!(b
                .create(&id, &state(&[("a", "1")]), secs(600))
                .await
                .unwrap());
            let writers: Vec<_> = (0..8)
                .map(|w| {
                    let (b, id) = (b.clone(), id.clone());
                    tokio::spawn(async move {
                        for n in 0.. {
                            let still_there = match (w + n) % 4 {
                                0 => {
                                    let mut changes = Changes::default();
                                    changes.set(format!("w{w}"), n.to_string());
                                    b.apply(&id, &changes, secs(600)).await.unwrap()
                                }
                                1 => b
                                    .replace(&id, &state(&[("r", "1")]), secs(600))
                                    .await
                                    .unwrap(),
                                // As a framework layer writes: at the version it loaded
                                // (the append that skips the header check).
                                2 => match b.load_versioned(&id, None).await.unwrap() {
                                    None => false,
                                    Some((mut loaded, version)) => {
                                        let mut changes = Changes::default();
                                        changes.set(format!("v{w}"), n.to_string());
                                        changes.apply_to(&mut loaded);
                                        let after: Vec<(&str, &str)> = loaded
                                            .iter()
                                            .map(|(k, v)| (k.as_str(), v.as_str()))
                                            .collect();
                                        b.apply_versioned(&id, version, &after, &changes, secs(600))
                                            .await
                                            .unwrap()
                                    }
                                },
                                _ => b.touch(&id, secs(600)).await.unwrap(),
                            };
                            if !still_there {
                                return n;
                            }
                        }
                        unreachable!()
                    })
                })
                .collect();
            tokio::time::sleep(Duration::from_millis(2 + round % 5)).await;
            assert!(b.delete(&id).await.unwrap());
            for writer in writers {
                writer.await.unwrap();
            }
            assert_eq!(b.load(&id, None).await.unwrap(), None);
            assert_eq!(server.cmd::<i64>(&["EXISTS", &key(&id)]), 0);
        }
    }
}

/// Calls per command since the last `CONFIG RESETSTAT`, without the test's own `INFO`/`CONFIG`.
fn command_calls(server: &RedisServer) -> HashMap<String, u64> {
    let info: String = server.cmd(&["INFO", "commandstats"]);
    info.lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(":calls=")?;
            let calls = rest.split(',').next()?.parse().ok()?;
            (!name.starts_with("info") && !name.starts_with("config"))
                .then(|| (name.to_owned(), calls))
        })
        .collect()
}

fn calls(pairs: &[(&str, u64)]) -> HashMap<String, u64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

/// Client-sent commands are what cost round trips: the top-level ones here are one pipeline
/// (`append` + `pexpire`), one `evalsha`, or one plain command (`getex`). The
/// others listed run inside the script on the server. A write without a version that removes
/// keys reads first: two.
#[tokio::test]
async fn every_operation_is_one_round_trip() {
    let server = RedisServer::start();
    for single in BOTH {
        let b = backend(&server, single);
        let id = SessionId::generate();
        let s = state(&[("a", "1")]);
        let mut changes = Changes::default();
        changes.set("b", "2");
        changes.remove("a");
        let after = [("b", "2")];

        // Warm up: connect, and load each script once (the first EVALSHA answers NOSCRIPT).
        let warm = SessionId::generate();
        assert!(b.create(&warm, &s, None).await.unwrap());
        assert!(b.replace(&warm, &s, None).await.unwrap());
        assert!(b.apply(&warm, &changes, None).await.unwrap());
        let (_, version) = b.load_versioned(&warm, None).await.unwrap().unwrap();
        assert!(b
            .apply_versioned(&warm, version, &after, &changes, None)
            .await
            .unwrap());
        assert!(b.touch(&warm, None).await.unwrap());
        assert!(b.delete(&warm).await.unwrap());

        let check = |expected: &[(&str, u64)], what: &str| {
            assert_eq!(
                command_calls(&server),
                calls(expected),
                "{what}, single = {single}"
            );
            let _: () = server.cmd(&["CONFIG", "RESETSTAT"]);
        };
        let _: () = server.cmd(&["CONFIG", "RESETSTAT"]);

        assert!(b.create(&id, &s, secs(60)).await.unwrap());
        check(&[("evalsha", 1), ("set", 1)], "create");
        assert!(b.load(&id, None).await.unwrap().is_some());
        check(&[("get", 1)], "load");
        let (_, version) = b.load_versioned(&id, secs(60)).await.unwrap().unwrap();
        check(&[("getex", 1)], "load and touch");
        assert!(b
            .apply_versioned(&id, version, &after, &changes, secs(60))
            .await
            .unwrap());
        // No script: the records alone are no session, and the length the `APPEND`
        // answers tells whether they went into one (odd: `append_request`).
        check(
            &[("append", 1), ("pexpire", 1)],
            "apply at the loaded version",
        );
        // Without an expiry to give the records if they land after a logout: the script,
        // which undoes its `APPEND` itself (and reads the first byte after it: records
        // alone are another write's, after a logout).
        let (_, version) = b.load_versioned(&id, None).await.unwrap().unwrap();
        let _: () = server.cmd(&["CONFIG", "RESETSTAT"]);
        assert!(b
            .apply_versioned(&id, version, &after, &changes, None)
            .await
            .unwrap());
        check(
            &[("evalsha", 1), ("append", 1), ("getrange", 1)],
            "apply at the loaded version, keeping the expiry",
        );
        let amend = [
            ("evalsha", 1),
            ("getrange", 1),
            ("append", 1),
            ("pexpire", 1),
        ];
        let mut sets = Changes::default();
        sets.set("c", "3");
        assert!(b.apply(&id, &sets, secs(60)).await.unwrap());
        check(&amend, "apply without a version, sets only");
        let mut with_get = amend.to_vec();
        with_get.push(("get", 1));
        assert!(b.apply(&id, &changes, secs(60)).await.unwrap());
        check(
            &with_get,
            "apply without a version that removes (reads first: does it leave any key?)",
        );
        assert!(b.apply(&id, &Changes::default(), None).await.unwrap());
        check(&[("getrange", 1)], "apply of nothing");
        assert!(b.replace(&id, &s, None).await.unwrap());
        check(
            &[("evalsha", 1), ("type", 1), ("getrange", 1), ("set", 1)],
            "replace",
        );
        assert!(b.touch(&id, secs(60)).await.unwrap());
        check(&[("pexpire", 1), ("getrange", 1)], "touch");
        assert!(b.touch(&id, None).await.unwrap());
        check(
            &[("evalsha", 1), ("type", 1), ("getrange", 1), ("persist", 1)],
            "touch without ttl",
        );
        assert!(b.delete(&id).await.unwrap());
        check(
            &[("evalsha", 1), ("type", 1), ("getrange", 1), ("del", 1)],
            "delete",
        );
    }
}

/// Each operation's future is boxed once per call (`async_trait`), on every request. glibc
/// serves a request of up to 1,000 bytes from its small bins (and its per-thread cache);
/// above, from its large-request path, which first consolidates its fast bins: measured at
/// 2% of a server's CPU when these futures were 8 KB (`docs/benchmarks.md`, fourth round).
/// A failure here means a rare path got inlined into a common operation's future: box it
/// where it is awaited (module docs of the Redis backend, future sizes). Nothing is polled,
/// so no server is needed.
#[test]
fn every_common_operations_future_fits_glibcs_small_bins() {
    let b = RedisBackend::from_config(&config("redis://127.0.0.1:1/0".into(), true)).unwrap();
    let id = SessionId::generate();
    let (state, changes) = (SessionState::new(), Changes::default());
    let ttl = Some(Duration::from_secs(60));
    let version = session_core::Version::default();
    let sizes = [
        ("load", std::mem::size_of_val(&*b.load(&id, ttl))),
        (
            "load_versioned",
            std::mem::size_of_val(&*b.load_versioned(&id, ttl)),
        ),
        (
            "create",
            std::mem::size_of_val(&*b.create(&id, &state, ttl)),
        ),
        (
            "replace",
            std::mem::size_of_val(&*b.replace(&id, &state, ttl)),
        ),
        (
            "apply",
            std::mem::size_of_val(&*b.apply(&id, &changes, ttl)),
        ),
        (
            "apply_versioned",
            std::mem::size_of_val(&*b.apply_versioned(&id, version, &[], &changes, ttl)),
        ),
        ("touch", std::mem::size_of_val(&*b.touch(&id, ttl))),
        ("delete", std::mem::size_of_val(&*b.delete(&id))),
    ];
    for (operation, size) in sizes {
        assert!(
            size <= 1000,
            "{operation}'s future is {size} bytes: {sizes:?}"
        );
    }
}

#[tokio::test]
async fn scripts_are_reloaded_after_script_flush() {
    let server = RedisServer::start();
    for single in BOTH {
        let b = backend(&server, single);
        let id = SessionId::generate();
        assert!(b.create(&id, &state(&[("a", "1")]), None).await.unwrap());
        let _: () = server.cmd(&["SCRIPT", "FLUSH"]);
        assert!(b.replace(&id, &state(&[("b", "2")]), None).await.unwrap());
        assert_eq!(b.load(&id, None).await.unwrap(), Some(state(&[("b", "2")])));
    }
}

#[tokio::test]
async fn wrong_type_and_non_json_values_are_corrupt() {
    let server = RedisServer::start();
    for single in BOTH {
        let b = backend(&server, single);
        let id = SessionId::generate();
        let _: () = server.cmd(&["SET", &key(&id), "not a hash"]);
        let mut changes = Changes::default();
        changes.set("a", "1");
        // Writes first: they must leave the stray value alone, not even set its expiry
        // (a touching load does: its PEXPIRE is pipelined after the failing HGETALL).
        for result in [
            b.apply(&id, &changes, None).await.map(|_| ()),
            b.apply(&id, &changes, secs(5)).await.map(|_| ()),
            b.apply(&id, &Changes::default(), None).await.map(|_| ()),
            b.replace(&id, &state(&[("a", "1")]), None)
                .await
                .map(|_| ()),
            b.replace(&id, &state(&[("a", "1")]), secs(5))
                .await
                .map(|_| ()),
        ] {
            let err = result.unwrap_err();
            assert!(err.is_corrupt(), "{err:?}");
        }
        assert_eq!(server.cmd::<i64>(&["PTTL", &key(&id)]), -1);
        for result in [
            b.load(&id, None).await.map(|_| ()),
            b.load(&id, secs(5)).await.map(|_| ()),
        ] {
            let err = result.unwrap_err();
            assert!(err.is_corrupt(), "{err:?}");
        }
        // The stray value was not overwritten, and the id counts as taken.
        assert_eq!(server.cmd::<String>(&["GET", &key(&id)]), "not a hash");
        assert!(!b.create(&id, &state(&[("a", "1")]), None).await.unwrap());
        // Logout still clears it.
        assert!(b.delete(&id).await.unwrap());

        let id = SessionId::generate();
        let _: () = server.cmd(&["HSET", &key(&id), "good", "1", "cart", "{not json"]);
        let err = b.load(&id, None).await.unwrap_err();
        assert!(err.is_corrupt(), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("`cart`"), "{text}");
        assert!(
            !text.contains("not json") && !text.contains(id.as_str()),
            "{text}"
        );

        // Bytes that are not UTF-8 (written by some other client).
        let id = SessionId::generate();
        let mut con = server.connection();
        let _: () = redis::cmd("HSET")
            .arg(key(&id))
            .arg("bin")
            .arg(&[0xff_u8, 0xfe][..])
            .query(&mut con)
            .unwrap();
        let err = b.load(&id, None).await.unwrap_err();
        assert!(
            err.is_corrupt() && err.to_string().contains("`bin`"),
            "{err:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_server_fails_fast_and_the_same_backend_recovers() {
    for single in BOTH {
        let server = RedisServer::start();
        let b = backend(&server, single);
        let s = state(&[("a", "1")]);
        let id = SessionId::generate();
        assert!(b.create(&id, &s, None).await.unwrap());
        assert!(b.health().await[0].up);

        server.kill();
        for _ in 0..3 {
            let started = Instant::now();
            let err = b.load(&id, None).await.unwrap_err();
            // A refused connection, not a timeout: well under any timeout, with room for
            // a loaded CI machine.
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "single = {single}"
            );
            assert_unavailable(&err);
            let text = err.to_string();
            assert!(
                text.contains(&format!("127.0.0.1:{}", server.port())),
                "{text}"
            );
            assert!(!text.contains(id.as_str()));
            assert!(
                matches!(
                    err,
                    StoreError::Unavailable {
                        timed_out: false,
                        ..
                    }
                ),
                "single = {single}: {err:?}"
            );
        }
        assert_unavailable(&b.create(&id, &s, None).await.unwrap_err());
        let health = b.health().await;
        assert!(!health[0].up && health[0].error.is_some());
        assert_eq!(health[0].location, format!("127.0.0.1:{}", server.port()));

        server.restart();
        // The very first call after the restart already works (data is gone: no persistence).
        assert_eq!(b.load(&id, None).await.unwrap(), None, "single = {single}");
        assert!(b.create(&id, &s, None).await.unwrap());
        assert_eq!(b.load(&id, None).await.unwrap(), Some(s.clone()));
        assert!(b.health().await[0].up);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_server_times_out_after_socket_timeout() {
    for single in BOTH {
        let server = RedisServer::start();
        let b = backend(&server, single);
        let id = SessionId::generate();
        assert!(b.create(&id, &state(&[("a", "1")]), None).await.unwrap());
        server.pause();
        let started = Instant::now();
        let err = b.load(&id, None).await.unwrap_err();
        let took = started.elapsed();
        server.resume();
        assert!(
            matches!(
                err,
                StoreError::Unavailable {
                    timed_out: true,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            took >= Duration::from_millis(400) && took < Duration::from_secs(3),
            "{took:?}"
        );
        // Once it answers again, the same backend works.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match b.load(&id, None).await {
                Ok(loaded) => {
                    assert!(loaded.is_some());
                    break;
                }
                Err(err) if Instant::now() < deadline => assert_unavailable(&err),
                Err(err) => panic!("no recovery: {err}"),
            }
        }
    }
}

/// A connection that goes silent without being closed (a NAT or firewall entry dropped, a
/// cable pulled: no FIN, no RST) while the server stays reachable on a new connection. The
/// requests on it fail with a timeout, and the same backend must get back to work on a
/// connection of its own: the kernel would only give up on the silent one after about 15
/// minutes of retransmissions, and `health_check_interval` never checks a busy connection.
/// It holds because redis-rs reports a response timeout as an I/O error, which drops the
/// connection (`connection.rs` `is_broken`); with timeouts left out of that check (tried in
/// review, not kept) every later request waits on the silent connection and fails, for both
/// strategies, and `retry_on_timeout` retries on that very connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_gone_silent_is_replaced_after_a_timeout() {
    let server = RedisServer::start();
    for retry_on_timeout in [false, true] {
        for single in BOTH {
            let proxy = session_testkit::Proxy::start(server.addr());
            let b = RedisBackend::from_config(&SessionConfig {
                retry_on_timeout,
                ..config(format!("redis://{}", proxy.addr()), single)
            })
            .unwrap();
            let id = SessionId::generate();
            assert!(b.create(&id, &state(&[("a", "1")]), None).await.unwrap());
            proxy.freeze();
            let case = format!("single = {single}, retry_on_timeout = {retry_on_timeout}");
            if retry_on_timeout {
                // The retry goes to another connection, so the very request that met the
                // silent one is served.
                assert!(
                    b.load(&id, None).await.unwrap().is_some(),
                    "{case}: the retry went to the silent connection"
                );
            }
            // Each attempt ends (a timeout, `socket_timeout` = 0.5 s, or an answer); a
            // backend that keeps the silent connection never answers again.
            let mut answered = false;
            for _ in 0..8 {
                match b.load(&id, None).await {
                    Ok(loaded) => {
                        assert!(loaded.is_some(), "{case}");
                        answered = true;
                        break;
                    }
                    Err(err) => assert!(
                        matches!(
                            err,
                            StoreError::Unavailable {
                                timed_out: true,
                                ..
                            }
                        ),
                        "{case}: {err:?}"
                    ),
                }
            }
            assert!(
                answered,
                "{case}: every request went to the silent connection"
            );
            // And the store stays usable.
            let mut change = Changes::default();
            change.set("a", "2");
            assert!(b.apply(&id, &change, None).await.unwrap(), "{case}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_built_while_the_server_is_down_works_once_it_is_up() {
    for single in BOTH {
        let server = RedisServer::start();
        server.kill();
        let b = backend(&server, single);
        let id = SessionId::generate();
        assert_unavailable(&b.load(&id, None).await.unwrap_err());
        assert_unavailable(
            &b.create(&id, &state(&[("a", "1")]), None)
                .await
                .unwrap_err(),
        );
        server.restart();
        assert!(b.create(&id, &state(&[("a", "1")]), None).await.unwrap());
        assert!(b.load(&id, None).await.unwrap().is_some());
    }
}

#[tokio::test]
async fn store_from_config_builds_without_a_server() {
    // Port 1 on loopback: nothing listens there.
    let store = SessionStore::from_config(&config("redis://127.0.0.1:1".into(), false))
        .await
        .unwrap();
    let err = store.load(&SessionId::generate()).await.unwrap_err();
    assert_unavailable(&err);
    assert!(!store.health().await[0].up);
}

#[tokio::test]
async fn password_right_missing_and_wrong() {
    let server = RedisServer::start_with(ServerOptions::new().password("s3cret-pw"));
    for single in BOTH {
        let with = |password: Option<&str>| {
            RedisBackend::from_config(&SessionConfig {
                password: password.map(str::to_owned),
                ..config(server.url(), single)
            })
            .unwrap()
        };
        let good = with(Some("s3cret-pw"));
        let id = SessionId::generate();
        assert!(good.create(&id, &state(&[("a", "1")]), None).await.unwrap());

        for (password, what) in [(None, "missing"), (Some("wrong-pw-123"), "wrong")] {
            let b = with(password);
            let err = b.load(&id, None).await.unwrap_err();
            assert_unavailable(&err);
            let text = format!("{err} {err:?} {:?}", b);
            assert!(
                !text.contains("s3cret-pw") && !text.contains("wrong-pw-123"),
                "{text}"
            );
            eprintln!("{what} password, single = {single}: {err}");
            // Not a silent logout: it stays an error, call after call.
            assert_unavailable(&b.load(&id, None).await.unwrap_err());
        }

        // The password in the URL works too.
        let b = RedisBackend::from_config(&config(
            format!("redis://:s3cret-pw@127.0.0.1:{}", server.port()),
            single,
        ))
        .unwrap();
        assert!(b.load(&id, None).await.unwrap().is_some());
    }
}

#[tokio::test]
async fn unix_socket_by_path_and_by_url() {
    let server = RedisServer::start_with(ServerOptions::new().unix_socket(true));
    let path = server.unix_socket_path().unwrap().to_path_buf();
    for single in BOTH {
        let by_path = RedisBackend::from_config(&SessionConfig {
            unix_socket_path: Some(path.clone()),
            single_connection_client: single,
            ..SessionConfig::default()
        })
        .unwrap();
        assert_eq!(by_path.location(), path.display().to_string());
        let id = SessionId::generate();
        assert!(by_path
            .create(&id, &state(&[("a", "1")]), None)
            .await
            .unwrap());
        assert_eq!(server.cmd::<i64>(&["EXISTS", &key(&id)]), 1);

        for url in [
            format!("unix://{}", path.display()),
            server.unix_url().unwrap(),
        ] {
            let by_url = RedisBackend::from_config(&config(url, single)).unwrap();
            assert!(by_url.load(&id, None).await.unwrap().is_some());
        }
        let health = by_path.health().await;
        assert!(health[0].up);
        assert_eq!(health[0].location, path.display().to_string());
    }
}

/// A socket path longer than a `sockaddr_un` holds (107 bytes on Linux) cannot be connected
/// to, whatever is there: it is a start-up error naming the option, where it was a plan that
/// built and a store that failed every operation. Here the path is a link to a live server's
/// socket, so nothing else stands in the way.
#[tokio::test]
async fn a_socket_path_too_long_to_connect_to_is_a_start_up_error() {
    let server = RedisServer::start_with(ServerOptions::new().unix_socket(true));
    let dir = tempfile::tempdir().unwrap();
    let deep = dir.path().join("d".repeat(100));
    std::fs::create_dir(&deep).unwrap();
    let long = deep.join("redis.sock");
    std::os::unix::fs::symlink(server.unix_socket_path().unwrap(), &long).unwrap();
    assert!(long.as_os_str().len() > 107, "{}", long.display());
    for (key, config) in [
        (
            "session_redis_unix_socket_path",
            SessionConfig {
                unix_socket_path: Some(long.clone()),
                ..SessionConfig::default()
            },
        ),
        (
            "session_redis_url",
            config(format!("unix://{}", long.display()), true),
        ),
    ] {
        match RedisBackend::from_config(&config) {
            Ok(b) => panic!(
                "{key}: built; then {:?}",
                b.load(&SessionId::generate(), None).await
            ),
            Err(err) => {
                assert_eq!(err.key, key, "{err}");
                assert!(err.to_string().contains("107 bytes"), "{err}");
                eprintln!("{err}");
            }
        }
    }
    let err = RedisBackend::from_config(&SessionConfig {
        unix_socket_path: Some("/tmp/r\0.sock".into()),
        ..SessionConfig::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("without NUL bytes"), "{err}");
}

/// A URL's port and db are bounded as `session_redis_port` and `session_redis_db` are: port
/// 0 (refused, as if the server were down) and a db no server has (`SELECT` refused) failed
/// every operation of a store that built; now they are start-up errors naming the URL.
#[tokio::test]
async fn a_url_port_or_db_out_of_range_is_a_start_up_error() {
    let server = RedisServer::start_with(ServerOptions::new().unix_socket(true));
    let port = server.port();
    let socket = server.unix_socket_path().unwrap().display().to_string();
    for (url, expected) in [
        ("redis://127.0.0.1:0".to_owned(), "port"),
        (format!("redis://:pw-Zq9@127.0.0.1:{port}/-1"), "db"),
        (format!("rediss://127.0.0.1:{port}/2147483648"), "db"),
        (format!("unix://{socket}?db=-1&pass=pw-Zq9"), "db"),
    ] {
        match RedisBackend::from_config(&config(url.clone(), true)) {
            Ok(b) => panic!(
                "{url}: built; then {:?}",
                b.load(&SessionId::generate(), None).await
            ),
            Err(err) => {
                assert_eq!(err.key, "session_redis_url", "{err}");
                assert!(err.expected.contains(expected), "{err}");
                assert!(!err.to_string().contains("pw-Zq9"), "{err}");
                eprintln!("{err}");
            }
        }
    }
}

#[tokio::test]
async fn db_selection_and_prefix() {
    let server = RedisServer::start();
    for single in BOTH {
        let b = RedisBackend::from_config(&SessionConfig {
            db: 3,
            prefix: "app1:".into(),
            ..config(server.url(), single)
        })
        .unwrap();
        let id = SessionId::generate();
        assert!(b.create(&id, &state(&[("a", "1")]), None).await.unwrap());
        let key = format!("app1:{}", id.as_str());
        assert_eq!(server.cmd::<i64>(&["EXISTS", &key]), 0, "not in db 0");
        let mut con = redis::Client::open(format!("{}/3", server.url()))
            .unwrap()
            .get_connection()
            .unwrap();
        let exists: i64 = redis::cmd("EXISTS").arg(&key).query(&mut con).unwrap();
        assert_eq!(exists, 1);

        // A non-zero db option overrides the URL's (the "URL rule" of docs/configuration.md);
        // the default 0 leaves the URL's db alone.
        let b = RedisBackend::from_config(&SessionConfig {
            db: 5,
            prefix: "app1:".into(),
            ..config(format!("{}/3", server.url()), single)
        })
        .unwrap();
        assert!(b.load(&id, None).await.unwrap().is_none(), "read db 5");
        let b = RedisBackend::from_config(&SessionConfig {
            prefix: "app1:".into(),
            ..config(format!("{}/3", server.url()), single)
        })
        .unwrap();
        assert!(b.load(&id, None).await.unwrap().is_some(), "read db 3");
    }
}

#[tokio::test]
async fn explicit_constructor_for_tests_and_benches() {
    let server = RedisServer::start();
    for strategy in [Strategy::Single, Strategy::Pool { max_size: 2 }] {
        let mut plan = RedisPlan::standalone(server.connection_info());
        plan.connection.strategy = strategy;
        plan.prefix = "bench:".into();
        let b = RedisBackend::from_plan(&plan).unwrap();
        let id = SessionId::generate();
        assert!(b.create(&id, &state(&[("a", "1")]), None).await.unwrap());
        assert_eq!(
            server.cmd::<i64>(&["EXISTS", &format!("bench:{}", id.as_str())]),
            1
        );
    }
}

/// `SessionStore::health` shares one check among the callers that ask while it runs or within
/// `HEALTH_REUSE` of its start (an unauthenticated health endpoint must not multiply the work),
/// and never answers with an older result: a call after that runs a new check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_health_checks_share_one() {
    let server = RedisServer::start();
    let store = SessionStore::new(
        RedisBackend::from_config(&SessionConfig {
            url: Some(server.url()),
            ..SessionConfig::default()
        })
        .unwrap(),
    );
    // Connect first, so that only the checks' PINGs are counted.
    assert!(store.health().await.iter().all(|h| h.up));
    tokio::time::sleep(session_core::HEALTH_REUSE).await;
    let _: () = server.cmd(&["CONFIG", "RESETSTAT"]);
    let pings = || -> u64 {
        let info: String = server.cmd(&["INFO", "commandstats"]);
        info.lines()
            .find_map(|l| l.strip_prefix("cmdstat_ping:calls="))
            .and_then(|rest| rest.split(',').next())
            .map_or(0, |n| n.parse().unwrap())
    };

    let answers = futures_util::future::join_all((0..20).map(|_| store.health())).await;
    assert!(answers.iter().all(|a| a.iter().all(|h| h.up)));
    assert_eq!(pings(), 1, "20 concurrent callers, one check");

    store.health().await;
    store.health().await;
    assert_eq!(pings(), 1, "callers within a second of the check share it");
    tokio::time::sleep(session_core::HEALTH_REUSE).await;
    store.health().await;
    assert_eq!(pings(), 2, "a later call checks again");

    server.kill();
    tokio::time::sleep(session_core::HEALTH_REUSE).await;
    assert!(
        store.health().await.iter().all(|h| !h.up),
        "never an answer older than HEALTH_REUSE"
    );
}

/// A write whose first attempt ran on the server but whose answer was lost (the connection
/// dropped in between) is sent again on a fresh connection. What another request did in that
/// gap decides what the retry may do:
/// - a logout stays a logout: the retry finds no session and writes nothing;
/// - a write to the same key that completed in the gap was concurrent with this one (this one
///   had not returned yet), and the retry orders this one after it: last writer wins, as for
///   any two concurrent writes of one key. Keys the gap's write changed and this one did not
///   are kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_write_whose_answer_was_lost() {
    let server = RedisServer::start();
    let proxy = session_testkit::Proxy::start(server.addr());
    let direct = server.client();
    for single in BOTH {
        let b = RedisBackend::from_config(&config(format!("redis://{}", proxy.addr()), single))
            .unwrap();
        let mut change_a = Changes::default();
        change_a.set("a", "2");

        // A logout in the gap.
        let id = SessionId::generate();
        assert!(b.create(&id, &state(&[("a", "1")]), None).await.unwrap());
        in_the_gap(&proxy, &direct, redis::cmd("DEL").arg(key(&id)));
        assert!(
            !b.apply(&id, &change_a, None).await.unwrap(),
            "the retry reports the session gone"
        );
        assert_eq!(
            server.cmd::<i64>(&["EXISTS", &key(&id)]),
            0,
            "logout undone"
        );
        assert_eq!(b.load(&id, None).await.unwrap(), None);

        // The same for a whole-state replace.
        let id = SessionId::generate();
        assert!(b.create(&id, &state(&[("a", "1")]), None).await.unwrap());
        in_the_gap(&proxy, &direct, redis::cmd("DEL").arg(key(&id)));
        assert!(!b.replace(&id, &state(&[("a", "2")]), None).await.unwrap());
        assert_eq!(
            server.cmd::<i64>(&["EXISTS", &key(&id)]),
            0,
            "logout undone"
        );

        // A concurrent write in the gap: one key the same, one key other.
        let id = SessionId::generate();
        assert!(b.create(&id, &state(&[("a", "1")]), None).await.unwrap());
        in_the_gap(
            &proxy,
            &direct,
            redis::cmd("SET")
                .arg(key(&id))
                .arg(r#"v1:00000000000000ab:{"=a":3,"=b":3"#),
        );
        assert!(b.apply(&id, &change_a, None).await.unwrap());
        assert_eq!(
            b.load(&id, None).await.unwrap(),
            Some(state(&[("a", "2"), ("b", "3")]))
        );
    }
}

/// Makes `command` run on the server between a request's execution and its lost answer.
fn in_the_gap(proxy: &session_testkit::Proxy, server: &redis::Client, command: &redis::Cmd) {
    let (server, command) = (server.clone(), command.clone());
    proxy.lose_next_reply(move || {
        let mut conn = server.get_connection().unwrap();
        let _: () = command.query(&mut conn).unwrap();
    });
}

/// A touching load or a `touch` that finds a moved marker or a write's leftover records (no
/// session, `layout::ORPHAN`) gives them back an expiry of at most `MOVED_MARKER_TTL`: the
/// touch itself (`GETEX ... PX`, `PEXPIRE`) had given them a session's, so a process still
/// configured with a move's old store kept every marker it was asked about for a session's
/// lifetime. A session keeps the expiry its touch set.
#[tokio::test]
async fn a_touch_leaves_markers_and_leftover_records_their_short_expiry() {
    let server = RedisServer::start();
    let long = secs(3600);
    let short = i64::try_from(session_core::MOVED_MARKER_TTL.as_millis()).unwrap();
    for single in BOTH {
        let b = backend(&server, single);
        let (marked, leftover, session) = (
            SessionId::generate(),
            SessionId::generate(),
            SessionId::generate(),
        );
        for id in [&marked, &session] {
            assert!(b.create(id, &state(&[("a", "1")]), long).await.unwrap());
        }
        let retired = b.retire_many(&[(marked.clone(), 7)]).await;
        assert_eq!(retired[0].as_ref().unwrap(), &session_core::Retired::Now);
        let _: () = server.cmd(&["SET", &key(&leftover), ",\"=a\":1 ", "PX", "3600000"]);
        for id in [&marked, &leftover] {
            assert_eq!(b.load(id, long).await.unwrap(), None);
            let left = pttl(&server, id);
            assert!(
                0 < left && left <= short,
                "after a touching load: {left} ms"
            );
            let _: () = server.cmd(&["PEXPIRE", &key(id), "3600000"]);
            assert!(!b.touch(id, long).await.unwrap());
            let left = pttl(&server, id);
            assert!(0 < left && left <= short, "after a touch: {left} ms");
        }
        let _: () = server.cmd(&["PEXPIRE", &key(&session), "1000"]);
        assert!(b.load(&session, long).await.unwrap().is_some());
        assert!(pttl(&server, &session) > short);
        let _: () = server.cmd(&["PEXPIRE", &key(&session), "1000"]);
        assert!(b.touch(&session, long).await.unwrap());
        assert!(pttl(&server, &session) > short);
    }
}

/// A write by a process that loaded a session before a move retired it (one still
/// configured with the old store) appends to the move's marker: it answers "no session" and
/// leaves the marker as it was, expiry included, so the move's retire sent again (its reply
/// lost) still finds its own marker. Deleting the marker with the records made that resend
/// find nothing, and the move removed its copy: a logout no one asked for. Both writes that
/// can land there: the scriptless one (with a TTL) and `AMEND_LOADED` (without).
#[tokio::test]
async fn a_stale_write_onto_a_moved_marker_leaves_the_marker() {
    let server = RedisServer::start();
    let short = i64::try_from(session_core::MOVED_MARKER_TTL.as_millis()).unwrap();
    for single in BOTH {
        let b = backend(&server, single);
        for ttl in [secs(3600), None] {
            let id = SessionId::generate();
            assert!(b
                .create(&id, &state(&[("a", "1")]), secs(3600))
                .await
                .unwrap());
            let (_, version) = b.load_versioned(&id, None).await.unwrap().unwrap();
            let ids = &[(id.clone(), 7)];
            let retired = b.retire_many(ids).await;
            assert_eq!(retired[0].as_ref().unwrap(), &session_core::Retired::Now);
            let marker: Vec<u8> = server.cmd(&["GET", &key(&id)]);
            let mut changes = Changes::default();
            changes.set("b", "2");
            let after = [("a", "1"), ("b", "2")];
            let written = b.apply_versioned(&id, version, &after, &changes, ttl).await;
            assert!(!written.unwrap(), "a marker is no session");
            let stored: Vec<u8> = server.cmd(&["GET", &key(&id)]);
            assert_eq!(stored, marker, "the marker as it was ({ttl:?})");
            let left = pttl(&server, &id);
            assert!(0 < left && left <= short, "its expiry: {left} ms");
            let again = b.retire_many(ids).await;
            assert_eq!(again[0].as_ref().unwrap(), &session_core::Retired::Before);
        }
    }
}

/// Two requests that each remove one of a session's two keys (each write appends its
/// removal, since each one's own state keeps the other key) leave a value with no key: no
/// session to every read. The load that finds it deletes it, as a write that empties a
/// session does, so that a write in flight from a request that loaded the session earlier
/// finds no session, not one it brings back with its own keys alone (the ninth review).
#[tokio::test]
async fn a_session_emptied_by_concurrent_removals_is_deleted_when_read() {
    let server = RedisServer::start();
    for single in BOTH {
        let b = backend(&server, single);
        let id = SessionId::generate();
        let both = state(&[("user", "\"alice\""), ("flash", "\"hi\"")]);
        assert!(b.create(&id, &both, secs(3600)).await.unwrap());
        let mut versions = Vec::new();
        for _ in 0..3 {
            versions.push(b.load_versioned(&id, None).await.unwrap().unwrap().1);
        }
        for (version, (gone, kept)) in versions.iter().zip([("user", "flash"), ("flash", "user")]) {
            let mut changes = Changes::default();
            changes.remove(gone);
            let after = [(kept, both[kept].as_str())];
            let written = b.apply_versioned(&id, *version, &after, &changes, secs(3600));
            assert!(written.await.unwrap(), "removing {gone}");
        }
        assert_eq!(b.load(&id, None).await.unwrap(), None);
        assert_eq!(
            server.cmd::<i64>(&["EXISTS", &key(&id)]),
            0,
            "deleted when read"
        );
        let mut changes = Changes::default();
        changes.set("cart", "[1]");
        let late = b.apply_versioned(&id, versions[2], &[("cart", "[1]")], &changes, secs(3600));
        assert!(!late.await.unwrap(), "the late write finds no session");
        assert_eq!(b.load(&id, None).await.unwrap(), None);
        assert!(!b.touch(&id, secs(3600)).await.unwrap());
    }
}

/// The same stale write, when the move's retire is sent again (its reply lost) after the
/// write's `APPEND` but before the write drops its records: the resend still finds its own
/// marker (`Before`), and leaves the marker alone. It answered `Other` (another move's),
/// and the move removed its copy (a tenth review).
#[tokio::test]
async fn a_resent_retire_finds_its_marker_under_a_stale_writes_records() {
    let server = RedisServer::start();
    for single in BOTH {
        let b = backend(&server, single);
        let id = SessionId::generate();
        assert!(b
            .create(&id, &state(&[("a", "1")]), secs(3600))
            .await
            .unwrap());
        let ids = &[(id.clone(), 7)];
        let retired = b.retire_many(ids).await;
        assert_eq!(retired[0].as_ref().unwrap(), &session_core::Retired::Now);
        let marker: Vec<u8> = server.cmd(&["GET", &key(&id)]);
        let _: i64 = server.cmd(&["APPEND", &key(&id), ",\"=b\":2 "]);
        let again = b.retire_many(ids).await;
        assert_eq!(again[0].as_ref().unwrap(), &session_core::Retired::Before);
        let stored: Vec<u8> = server.cmd(&["GET", &key(&id)]);
        assert_eq!(stored, marker);
    }
}
