//! The Redis storage layout: one string per session (`v1:<tag>:<JSON object>`), versioned
//! writes that keep every guarantee of the field-level writes they replaced, and sessions
//! still stored as hashes by earlier versions, read and written where they are.

use std::{sync::Arc, time::Duration};

use session_core::{
    backends::redis::{decode_value, RedisBackend},
    Changes, SessionBackend, SessionConfig, SessionId, SessionState, SessionStore, Version,
};
use session_testkit::RedisServer;

fn config(server: &RedisServer) -> SessionConfig {
    SessionConfig {
        url: Some(server.url()),
        socket_timeout: Some(2.0),
        ..SessionConfig::default()
    }
}

fn backend(server: &RedisServer) -> RedisBackend {
    RedisBackend::from_config(&config(server)).unwrap()
}

fn state(pairs: &[(&str, &str)]) -> SessionState {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn set(key: &str, value: &str) -> Changes {
    let mut changes = Changes::default();
    changes.set(key, value);
    changes
}

fn key(id: &SessionId) -> String {
    format!("session:{}", id.as_str())
}

fn secs(s: u64) -> Option<Duration> {
    Some(Duration::from_secs(s))
}

/// `state` after `changes`, as the framework layers hand it to `apply_versioned`.
fn after(state: &SessionState, changes: &Changes) -> SessionState {
    let mut after = state.clone();
    changes.apply_to(&mut after);
    after
}

fn pairs(state: &SessionState) -> Vec<(&str, &str)> {
    state
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// Stores `state` as an earlier version did: a hash, one field per key.
fn put_hash(server: &RedisServer, id: &SessionId, state: &[(&str, &str)], ttl_ms: i64) {
    let mut args = vec!["HSET".to_owned(), key(id)];
    for (k, v) in state {
        args.push((*k).to_owned());
        args.push((*v).to_owned());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let _: i64 = server.cmd(&args);
    if ttl_ms > 0 {
        let _: i64 = server.cmd(&["PEXPIRE", &key(id), &ttl_ms.to_string()]);
    }
}

fn kind(server: &RedisServer, id: &SessionId) -> String {
    server.cmd(&["TYPE", &key(id)])
}

#[tokio::test]
async fn two_requests_that_loaded_one_version_both_land() {
    let server = RedisServer::start();
    let b = backend(&server);
    let id = SessionId::generate();
    assert!(b
        .create(&id, &state(&[("base", "0")]), secs(60))
        .await
        .unwrap());

    let (first, v1) = b.load_versioned(&id, None).await.unwrap().unwrap();
    let (second, v2) = b.load_versioned(&id, None).await.unwrap().unwrap();
    assert_eq!(v1, v2);
    let (a, c) = (set("a", "1"), set("c", "\"x\""));
    let _: () = server.cmd(&["CONFIG", "RESETSTAT"]);
    assert!(b
        .apply_versioned(&id, v1, &pairs(&after(&first, &a)), &a, secs(60))
        .await
        .unwrap());
    assert_eq!(
        server.calls("evalsha"),
        1,
        "the first write: one round trip"
    );
    // The second finds the version moved: the first's value comes back, its own change
    // is applied on top, and the retry lands (one round trip more, no read).
    assert!(b
        .apply_versioned(&id, v2, &pairs(&after(&second, &c)), &c, secs(60))
        .await
        .unwrap());
    assert_eq!(server.calls("evalsha"), 3);
    assert_eq!(
        server.calls("get"),
        1,
        "the conflict's value, read inside the script"
    );
    assert_eq!(
        b.load(&id, None).await.unwrap(),
        Some(state(&[("base", "0"), ("a", "1"), ("c", "\"x\"")]))
    );
    // The expiry the writes asked for.
    let pttl: i64 = server.cmd(&["PTTL", &key(&id)]);
    assert!(pttl > 55_000, "{pttl}");
}

#[tokio::test]
async fn a_logout_between_the_load_and_the_write_sticks() {
    let server = RedisServer::start();
    let b = backend(&server);
    let id = SessionId::generate();
    assert!(b.create(&id, &state(&[("a", "1")]), None).await.unwrap());
    let (loaded, version) = b.load_versioned(&id, None).await.unwrap().unwrap();
    assert!(b.delete(&id).await.unwrap());
    let changes = set("b", "2");
    for ttl in [None, secs(60)] {
        assert!(!b
            .apply_versioned(
                &id,
                version,
                &pairs(&after(&loaded, &changes)),
                &changes,
                ttl
            )
            .await
            .unwrap());
    }
    assert_eq!(server.cmd::<i64>(&["EXISTS", &key(&id)]), 0);
}

#[tokio::test]
async fn a_write_that_removes_every_key_deletes_the_session() {
    let server = RedisServer::start();
    let b = backend(&server);
    let id = SessionId::generate();
    assert!(b.create(&id, &state(&[("a", "1")]), None).await.unwrap());
    let (_, version) = b.load_versioned(&id, None).await.unwrap().unwrap();
    let mut changes = Changes::default();
    changes.remove("a");
    assert!(b
        .apply_versioned(&id, version, &[], &changes, None)
        .await
        .unwrap());
    assert_eq!(server.cmd::<i64>(&["EXISTS", &key(&id)]), 0);
}

/// Many requests of one session writing at once, each from the version it loaded: every
/// change lands, and none undoes another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_versioned_writes_lose_nothing() {
    let server = RedisServer::start();
    let b = Arc::new(backend(&server));
    let id = SessionId::generate();
    assert!(b
        .create(&id, &state(&[("base", "0")]), secs(600))
        .await
        .unwrap());
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let (b, id) = (b.clone(), id.clone());
            tokio::spawn(async move {
                let (loaded, version) = b.load_versioned(&id, None).await.unwrap().unwrap();
                let changes = set(&format!("k{i}"), &i.to_string());
                b.apply_versioned(
                    &id,
                    version,
                    &pairs(&after(&loaded, &changes)),
                    &changes,
                    secs(600),
                )
                .await
                .unwrap()
            })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap());
    }
    let loaded = b.load(&id, None).await.unwrap().unwrap();
    assert_eq!(loaded.len(), 33);
    // The retries take turns: about three script calls per writer at most (its first
    // attempt, the retry with the value that came back, one after its turn came), not the
    // n² of writers colliding round after round.
    let scripts = server.calls("evalsha");
    eprintln!("{scripts} script calls for 32 writers");
    assert!(scripts <= 3 * 32 + 1, "{scripts}");
}

/// A version is only meaningful to the backend that read it: handed to another (a
/// multi-backend hands it to every write backend), the write reads first, and is right.
#[tokio::test]
async fn a_version_from_another_backend_is_not_trusted() {
    let server = RedisServer::start();
    let (one, other) = (backend(&server), backend(&server));
    let id = SessionId::generate();
    assert!(one.create(&id, &state(&[("a", "1")]), None).await.unwrap());
    let (loaded, version) = one.load_versioned(&id, None).await.unwrap().unwrap();
    // Changed since, behind the version's back.
    assert!(other.apply(&id, &set("b", "2"), None).await.unwrap());
    let changes = set("c", "3");
    let _: () = server.cmd(&["CONFIG", "RESETSTAT"]);
    assert!(other
        .apply_versioned(
            &id,
            version,
            &pairs(&after(&loaded, &changes)),
            &changes,
            None
        )
        .await
        .unwrap());
    assert_eq!(server.calls("get"), 1, "read first");
    assert_eq!(
        one.load(&id, None).await.unwrap(),
        Some(state(&[("a", "1"), ("b", "2"), ("c", "3")]))
    );
    // And the unknown version of a backend without versions: the same.
    assert!(other
        .apply_versioned(&id, Version::default(), &[], &set("d", "4"), None)
        .await
        .unwrap());
    assert_eq!(one.load(&id, None).await.unwrap().unwrap().len(), 4);
}

/// The store built from configuration (its metrics wrapper included) keeps the versioned
/// write at one round trip: the version travels through every layer.
#[tokio::test]
async fn through_the_store_a_versioned_write_is_one_round_trip() {
    let server = RedisServer::start();
    let store = SessionStore::from_config(&config(&server)).await.unwrap();
    let id = store.create(&state(&[("a", "1")]), secs(60)).await.unwrap();
    let changes = set("b", "2");
    let _ = store.load(&id).await.unwrap(); // scripts cached, connection made
    let _: () = server.cmd(&["CONFIG", "RESETSTAT"]);
    let (loaded, version) = store
        .load_versioned_and_touch(&id, secs(60))
        .await
        .unwrap()
        .unwrap();
    assert!(store
        .apply_versioned_keeping_expiry(&id, version, &pairs(&after(&loaded, &changes)), &changes)
        .await
        .unwrap());
    assert_eq!(
        (
            server.calls("get"),
            server.calls("pexpire"),
            server.calls("evalsha")
        ),
        (1, 1, 1)
    );
    assert_eq!(
        store.load(&id).await.unwrap(),
        Some(state(&[("a", "1"), ("b", "2")]))
    );
}

#[tokio::test]
async fn values_that_are_not_json_are_refused_before_anything_is_written() {
    let server = RedisServer::start();
    let b = backend(&server);
    let id = SessionId::generate();
    // Unchecked, this value would add a key `b` to the stored object.
    let sneaky = state(&[("a", r#"1,"b":2"#)]);
    assert!(b.create(&id, &sneaky, None).await.unwrap_err().is_corrupt());
    assert_eq!(server.cmd::<i64>(&["EXISTS", &key(&id)]), 0);

    assert!(b.create(&id, &state(&[("a", "1")]), None).await.unwrap());
    let before: String = server.cmd(&["GET", &key(&id)]);
    let err = b
        .apply(&id, &set("a", "{not json"), None)
        .await
        .unwrap_err();
    assert!(err.is_corrupt() && err.to_string().contains("`a`"), "{err}");
    assert!(!err.to_string().contains("not json"), "{err}");
    assert!(b
        .replace(&id, &sneaky, None)
        .await
        .unwrap_err()
        .is_corrupt());
    assert_eq!(server.cmd::<String>(&["GET", &key(&id)]), before);
}

#[tokio::test]
async fn a_damaged_string_is_corrupt_and_left_alone() {
    let server = RedisServer::start();
    let b = backend(&server);
    for damaged in [
        r#"v1:0000000000000001:{"a":1"#,
        r#"v1:0000000000000001:{"a":secret}"#,
        r#"v1:zz00000000000001:{"a":1}"#,
        "v1:",
    ] {
        let id = SessionId::generate();
        let _: () = server.cmd(&["SET", &key(&id), damaged]);
        let err = b.load(&id, None).await.unwrap_err();
        assert!(err.is_corrupt(), "{damaged}: {err:?}");
        assert!(!err.to_string().contains("secret"), "{err}");
        let err = b.apply(&id, &set("b", "2"), secs(5)).await.unwrap_err();
        assert!(err.is_corrupt(), "{damaged}: {err:?}");
        assert_eq!(server.cmd::<String>(&["GET", &key(&id)]), damaged);
        assert_eq!(server.cmd::<i64>(&["PTTL", &key(&id)]), -1);
        // Logout still clears it.
        assert!(b.delete(&id).await.unwrap());
    }
}

/// Sessions stored as hashes by earlier versions keep working where they are: loads, the
/// field-level write (a hash stays a hash), the batch load of a move, delete; a whole-state
/// write (`replace`) stores them in the string layout.
#[tokio::test]
async fn sessions_in_the_hash_layout_still_work() {
    let server = RedisServer::start();
    let b = backend(&server);
    let id = SessionId::generate();
    put_hash(&server, &id, &[("user", "\"alice\""), ("n", "1")], 60_000);

    let expected = state(&[("user", "\"alice\""), ("n", "1")]);
    assert_eq!(b.load(&id, None).await.unwrap(), Some(expected.clone()));
    let (state_, left) = b.load_with_ttl(&id).await.unwrap().unwrap();
    assert_eq!(state_, expected);
    assert!(left.unwrap() > Duration::from_secs(55));
    assert!(!b.create(&id, &state(&[("x", "1")]), None).await.unwrap());

    // A request's load and write: field level, as before; still a hash.
    let (loaded, version) = b.load_versioned(&id, secs(120)).await.unwrap().unwrap();
    assert!(server.cmd::<i64>(&["PTTL", &key(&id)]) > 115_000, "touched");
    let changes = set("n", "2");
    assert!(b
        .apply_versioned(
            &id,
            version,
            &pairs(&after(&loaded, &changes)),
            &changes,
            None
        )
        .await
        .unwrap());
    assert_eq!(kind(&server, &id), "hash");
    assert_eq!(server.cmd::<String>(&["HGET", &key(&id), "n"]), "2");
    // Without a version: also field level.
    assert!(b.apply(&id, &set("m", "3"), None).await.unwrap());
    assert_eq!(kind(&server, &id), "hash");
    assert_eq!(b.load(&id, None).await.unwrap().unwrap().len(), 3);

    // A batch (a move) of both layouts and an absent id.
    let (fresh, absent) = (SessionId::generate(), SessionId::generate());
    assert!(b
        .create(&fresh, &state(&[("f", "1")]), secs(60))
        .await
        .unwrap());
    let batch = b
        .load_many_with_ttl(&[id.clone(), absent, fresh.clone()])
        .await;
    assert_eq!(batch[0].as_ref().unwrap().as_ref().unwrap().0.len(), 3);
    assert!(batch[1].as_ref().unwrap().is_none());
    assert_eq!(
        batch[2].as_ref().unwrap().as_ref().unwrap().0,
        state(&[("f", "1")])
    );

    // Written whole: now a string.
    let (loaded, version) = b.load_versioned(&id, None).await.unwrap().unwrap();
    assert!(b.replace(&id, &loaded, secs(60)).await.unwrap());
    assert_eq!(kind(&server, &id), "string");
    let stored: String = server.cmd(&["GET", &key(&id)]);
    assert_eq!(decode_value(stored.as_bytes()).unwrap(), loaded);
    // The hash-layout version the request holds now meets a string: read, merged, written.
    let changes = set("late", "true");
    assert!(b
        .apply_versioned(
            &id,
            version,
            &pairs(&after(&loaded, &changes)),
            &changes,
            None
        )
        .await
        .unwrap());
    assert_eq!(b.load(&id, None).await.unwrap().unwrap().len(), 4);

    assert!(b.delete(&id).await.unwrap());
    assert_eq!(b.load(&id, None).await.unwrap(), None);
}

/// The bytes Redis keeps per session: the state's JSON and a 20-byte header, where the
/// hash layout paid per field.
#[tokio::test]
async fn a_session_costs_its_json_and_a_header() {
    let server = RedisServer::start();
    let b = backend(&server);
    let s: SessionState = (0..20)
        .map(|i| (format!("key{i:02}"), format!("\"{}\"", "x".repeat(98))))
        .collect();
    let json_len = serde_json::to_string(&s.iter().collect::<std::collections::BTreeMap<_, _>>())
        .unwrap()
        .len();
    let id = SessionId::generate();
    assert!(b.create(&id, &s, None).await.unwrap());
    let stored: String = server.cmd(&["GET", &key(&id)]);
    // The values are embedded as JSON, not escaped into JSON strings as actix-session
    // stores them (`json_len`): fewer bytes than that, header included.
    assert!(stored.len() < json_len, "{} vs {json_len}", stored.len());
    let id2 = SessionId::generate();
    put_hash(
        &server,
        &id2,
        &s.iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
        0,
    );
    let string_bytes: i64 = server.cmd(&["MEMORY", "USAGE", &key(&id), "SAMPLES", "0"]);
    let hash_bytes: i64 = server.cmd(&["MEMORY", "USAGE", &key(&id2), "SAMPLES", "0"]);
    assert!(string_bytes < hash_bytes, "{string_bytes} vs {hash_bytes}");
}

/// A session of 2 KB: its writes stage the value with a plain `SET` and a script moves it
/// onto the session (a large value through Lua costs Redis about 1.2 µs per KB): the same
/// guarantees, no staging key left behind, the expiry kept or set as asked.
#[tokio::test]
async fn large_values_are_staged_and_keep_every_guarantee() {
    let server = RedisServer::start();
    let b = backend(&server);
    let big = format!("\"{}\"", "x".repeat(2000));
    let id = SessionId::generate();
    assert!(b
        .create(&id, &state(&[("big", &big), ("n", "1")]), secs(60))
        .await
        .unwrap());
    let staged = || -> Vec<String> { server.cmd(&["KEYS", "*:w:*"]) };

    // At the loaded version: one round trip, the value staged then moved.
    let (loaded, version) = b.load_versioned(&id, None).await.unwrap().unwrap();
    let changes = set("n", "2");
    let _ = b.apply(&id, &set("warm", "0"), None).await.unwrap(); // scripts cached
    let _: () = server.cmd(&["CONFIG", "RESETSTAT"]);
    let (loaded2, version2) = b.load_versioned(&id, None).await.unwrap().unwrap();
    assert!(b
        .apply_versioned(
            &id,
            version2,
            &pairs(&after(&loaded2, &changes)),
            &changes,
            None
        )
        .await
        .unwrap());
    assert_eq!(
        (
            server.calls("evalsha"),
            server.calls("rename"),
            server.calls("set")
        ),
        (1, 1, 1)
    );
    assert!(staged().is_empty());
    // `None` kept the expiry the create set.
    let pttl: i64 = server.cmd(&["PTTL", &key(&id)]);
    assert!(pttl > 50_000 && pttl <= 60_000, "{pttl}");

    // An old version (from before the two writes above): merged, nothing lost.
    let late = set("late", "true");
    assert!(b
        .apply_versioned(
            &id,
            version,
            &pairs(&after(&loaded, &late)),
            &late,
            secs(120)
        )
        .await
        .unwrap());
    let now = b.load(&id, None).await.unwrap().unwrap();
    assert_eq!(
        (
            now["n"].as_str(),
            now["late"].as_str(),
            now["warm"].as_str()
        ),
        ("2", "true", "0")
    );
    assert!(server.cmd::<i64>(&["PTTL", &key(&id)]) > 110_000);
    assert!(staged().is_empty());

    // Without expiry, a write that keeps it keeps none.
    let _: i64 = server.cmd(&["PERSIST", &key(&id)]);
    let (loaded, version) = b.load_versioned(&id, None).await.unwrap().unwrap();
    let changes = set("n", "3");
    assert!(b
        .apply_versioned(
            &id,
            version,
            &pairs(&after(&loaded, &changes)),
            &changes,
            None
        )
        .await
        .unwrap());
    assert_eq!(server.cmd::<i64>(&["PTTL", &key(&id)]), -1);

    // After `SCRIPT FLUSH` (a restart): still one write, by text.
    let _: () = server.cmd(&["SCRIPT", "FLUSH"]);
    let (loaded, version) = b.load_versioned(&id, None).await.unwrap().unwrap();
    let changes = set("n", "4");
    assert!(b
        .apply_versioned(
            &id,
            version,
            &pairs(&after(&loaded, &changes)),
            &changes,
            None
        )
        .await
        .unwrap());
    assert_eq!(b.load(&id, None).await.unwrap().unwrap()["n"], "4");

    // A logout in between: nothing written, nothing staged left.
    let (loaded, version) = b.load_versioned(&id, None).await.unwrap().unwrap();
    assert!(b.delete(&id).await.unwrap());
    let changes = set("n", "5");
    assert!(!b
        .apply_versioned(
            &id,
            version,
            &pairs(&after(&loaded, &changes)),
            &changes,
            secs(60)
        )
        .await
        .unwrap());
    assert_eq!(server.cmd::<i64>(&["EXISTS", &key(&id)]), 0);
    assert!(staged().is_empty());
}
