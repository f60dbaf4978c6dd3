//! The Redis storage layout: one string per session (`v1:<tag>:<JSON object>`), versioned
//! writes that keep every guarantee of the field-level writes they replaced, and sessions
//! still stored as hashes by earlier versions, read and written where they are.

use std::{sync::Arc, time::Duration};

use session_core::testing::conformance::{set, state};
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

/// The framework layers' write: `changes` of the session loaded as `loaded` at `version`.
async fn write_at(
    b: &RedisBackend,
    id: &SessionId,
    loaded: &SessionState,
    version: Version,
    changes: &Changes,
    ttl: Option<Duration>,
) -> bool {
    b.apply_versioned(id, version, &pairs(&after(loaded, changes)), changes, ttl)
        .await
        .unwrap()
}

/// A session of `user` created with a 60 s TTL, and loaded as a framework layer loads it.
async fn created_and_loaded(b: &RedisBackend, user: &str) -> (SessionId, SessionState, Version) {
    let id = SessionId::generate();
    let user = format!("\"{user}\"");
    assert!(b
        .create(&id, &state(&[("user", &user)]), secs(60))
        .await
        .unwrap());
    let (loaded, version) = b.load_versioned(&id, None).await.unwrap().unwrap();
    (id, loaded, version)
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
    assert!(write_at(&b, &id, &first, v1, &a, secs(60)).await);
    // The second neither knows nor needs to know about the first: its records go on top.
    assert!(write_at(&b, &id, &second, v2, &c, secs(60)).await);
    // One round trip each: `APPEND`, `PEXPIRE` (`append_request`).
    assert_eq!(server.calls("append"), 2);
    assert_eq!(server.calls("getrange"), 0);
    assert_eq!(server.calls("evalsha"), 0);
    assert_eq!(server.calls("get"), 0);
    assert_eq!(
        b.load(&id, None).await.unwrap(),
        Some(state(&[("base", "0"), ("a", "1"), ("c", "\"x\"")]))
    );
    // The expiry the writes asked for.
    let pttl: i64 = server.cmd(&["PTTL", &key(&id)]);
    assert!(pttl > 55_000, "{pttl}");
}

/// With the session index on too: the write's index add runs first in its script, and its
/// undone append must still leave no session for a lookup to find.
#[tokio::test]
async fn a_logout_between_the_load_and_the_write_sticks() {
    let server = RedisServer::start();
    for index_key in [None, Some("user".to_owned())] {
        let config = SessionConfig {
            index_key,
            ..config(&server)
        };
        let b = RedisBackend::from_config(&config).unwrap();
        // A session of ours, and one still stored as a hash by an earlier version (written
        // field by field, its own script).
        for hash in [false, true] {
            let id = SessionId::generate();
            if hash {
                put_hash(&server, &id, &[("user", "\"ada\"")], 0);
            } else {
                assert!(b
                    .create(&id, &state(&[("user", "\"ada\"")]), None)
                    .await
                    .unwrap());
            }
            let (loaded, version) = b.load_versioned(&id, None).await.unwrap().unwrap();
            assert!(b.delete(&id).await.unwrap());
            // Sets the indexed key: with the index on, the script adds the id to it first.
            let changes = set("user", "\"bob\"");
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
            assert_eq!(server.cmd::<i64>(&["EXISTS", &key(&id)]), 0, "hash: {hash}");
            if config.index_key.is_some() {
                let store = SessionStore::from_config(&config).await.unwrap();
                assert_eq!(
                    store.find_indexed("\"bob\"").await.unwrap(),
                    Vec::<SessionId>::new()
                );
            }
        }
    }
}

/// What a write at the loaded version leaves when a logout came between its load and its
/// `APPEND`: records alone, with no header, until its `DEL` (or the expiry it set). Every
/// operation takes them for an absent session, and a write that finds them deletes them.
#[tokio::test]
async fn records_left_by_a_write_after_a_logout_are_no_session() {
    let server = RedisServer::start();
    let b = backend(&server);
    let store = SessionStore::from_config(&config(&server)).await.unwrap();
    let (id, loaded, _) = created_and_loaded(&b, "ada").await;
    let orphan = |server: &RedisServer| {
        let _: () = server.cmd(&["SET", &key(&id), r#","=user":"mallory""#, "PX", "60000"]);
    };
    orphan(&server);

    assert_eq!(b.load(&id, None).await.unwrap(), None);
    assert!(b.load_versioned(&id, secs(60)).await.unwrap().is_none());
    assert!(b.load_in_place(&id, secs(60)).await.unwrap().is_none());
    assert!(b.load_in_place(&id, None).await.unwrap().is_none());
    assert_eq!(store.load(&id).await.unwrap(), None);
    assert!(!b.apply(&id, &Changes::default(), None).await.unwrap());
    assert!(!b.replace(&id, &loaded, secs(60)).await.unwrap());
    assert!(!b.apply(&id, &set("n", "1"), secs(60)).await.unwrap());
    let mut removes = Changes::default();
    removes.remove("user");
    assert!(!b.apply(&id, &removes, secs(60)).await.unwrap());
    // Nor is it a session to touch: absent, and the records keep their expiry.
    assert!(!b.touch(&id, secs(60)).await.unwrap());
    assert!(!b.touch(&id, None).await.unwrap());
    assert!(server.cmd::<i64>(&["PTTL", &key(&id)]) > 0);
    // None of these wrote: the records are still there, as they were.
    let stored: String = server.cmd(&["GET", &key(&id)]);
    assert_eq!(stored, r#","=user":"mallory""#);
    // The id is free for a create (a move between stores brings the session back here).
    assert!(b.create(&id, &loaded, secs(60)).await.unwrap());
    assert_eq!(b.load(&id, None).await.unwrap(), Some(loaded.clone()));
    let (loaded, version) = b.load_versioned(&id, None).await.unwrap().unwrap();

    // A write at the loaded version, with and without an expiry to give: it finds records
    // alone after its `APPEND`, answers "absent" and deletes them.
    for ttl in [secs(60), None] {
        orphan(&server);
        let changes = set("n", "2");
        assert!(!write_at(&b, &id, &loaded, version, &changes, ttl).await);
        assert_eq!(server.cmd::<i64>(&["EXISTS", &key(&id)]), 0, "{ttl:?}");
    }
    // A rewrite at the loaded version: absent, nothing written.
    orphan(&server);
    assert!(!b
        .apply_versioned(&id, version, &[], &removes, secs(60))
        .await
        .unwrap());
    assert_eq!(b.load(&id, None).await.unwrap(), None);
}

/// The common write tells a session from records alone by the length its `APPEND`
/// answers: whole values are written at odd lengths and records appended in batches of even
/// length. Values written before that rule (any length) still work: a write at the version
/// rewrites one of even length, and an even length met at the `APPEND` (an older writer's
/// records on top, during a rolling upgrade) costs one more round trip that reads the header.
#[tokio::test]
async fn values_of_even_length_from_earlier_versions_are_rewritten_or_checked() {
    let server = RedisServer::start();
    let b = backend(&server);
    let calls = || ["evalsha", "append", "getrange", "pexpire"].map(|c| server.calls(c));
    let reset = || {
        let _: () = server.cmd(&["CONFIG", "RESETSTAT"]);
    };
    let strlen = |id: &SessionId| -> usize { server.cmd(&["STRLEN", &key(id)]) };

    // Stored by an earlier version, at an even length: the first write at its version
    // rewrites it (one script call), at an odd length, and it reads the same.
    let id = SessionId::generate();
    let legacy = r#"v1:00000000000000ff:{"=user":"ada""#;
    assert_eq!(legacy.len() % 2, 0);
    let _: () = server.cmd(&["SET", &key(&id), legacy, "PX", "60000"]);
    let (loaded, version) = b.load_versioned(&id, None).await.unwrap().unwrap();
    reset();
    assert!(write_at(&b, &id, &loaded, version, &set("n", "1"), secs(60)).await);
    assert_eq!(calls(), [1, 0, 0, 1]);
    assert_eq!(strlen(&id) % 2, 1);
    assert_eq!(
        b.load(&id, None).await.unwrap(),
        Some(state(&[("user", "\"ada\""), ("n", "1")]))
    );

    // Records of odd length appended by an older writer between this write's load and its
    // `APPEND`: the length is even, the header is read, and the write landed.
    let (loaded, version) = b.load_versioned(&id, None).await.unwrap().unwrap();
    let _: i64 = server.cmd(&["APPEND", &key(&id), r#","=a":1"#]);
    reset();
    assert!(write_at(&b, &id, &loaded, version, &set("n", "2"), secs(60)).await);
    assert_eq!(calls(), [0, 1, 1, 1]);
    assert_eq!(
        b.load(&id, None).await.unwrap(),
        Some(state(&[("user", "\"ada\""), ("n", "2"), ("a", "1")]))
    );

    // The limit of the rule, during a rolling upgrade only: an older writer's records of
    // odd length left after a logout make this write's `APPEND` answer an odd length, so it
    // answers "written". The logout sticks all the same (records alone are no session) and
    // the records go with the expiry this write gave them.
    let (loaded, version) = b.load_versioned(&id, None).await.unwrap().unwrap();
    assert!(b.delete(&id).await.unwrap());
    let _: i64 = server.cmd(&["APPEND", &key(&id), r#","=a":1"#]);
    write_at(&b, &id, &loaded, version, &set("n", "3"), secs(60)).await;
    assert_eq!(b.load(&id, None).await.unwrap(), None);
    assert!(b.load_versioned(&id, secs(60)).await.unwrap().is_none());
    let pttl: i64 = server.cmd(&["PTTL", &key(&id)]);
    assert!((1..=60_000).contains(&pttl), "{pttl}");
}

/// Requests that loaded a session write at the instant it is logged out, many times over:
/// none brings it back, and nothing is left under its key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_at_the_loaded_version_racing_a_logout_leave_nothing() {
    let server = RedisServer::start();
    let b = Arc::new(backend(&server));
    for round in 0..50 {
        let (id, loaded, version) = created_and_loaded(&b, "ada").await;
        logout_racing_writers(&server, &b, &id, &loaded, version, round).await;
    }
}

/// Requests that all write after a logout each answer "absent", however their `APPEND`s
/// interleave: records alone are of even length however many writers added to them, so each
/// writer reads the header and none takes another's records for the session. Nothing is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_that_all_come_after_a_logout_all_answer_absent() {
    let server = RedisServer::start();
    let b = Arc::new(backend(&server));
    for round in 0..30 {
        let (id, loaded, version) = created_and_loaded(&b, "ada").await;
        assert!(b.delete(&id).await.unwrap());
        for writer in spawn_writers(&b, &id, &loaded, version, 4) {
            assert!(!writer.await.unwrap(), "round {round}");
        }
        assert_eq!(b.load(&id, None).await.unwrap(), None, "round {round}");
        assert_eq!(
            server.cmd::<i64>(&["EXISTS", &key(&id)]),
            0,
            "round {round}"
        );
    }
}

/// `count` requests that loaded `loaded` at `version`, spawned at once, each setting a key
/// of its own (`w<i>` to `i`); each answers whether its write landed.
fn spawn_writers(
    b: &Arc<RedisBackend>,
    id: &SessionId,
    loaded: &SessionState,
    version: Version,
    count: usize,
) -> Vec<tokio::task::JoinHandle<bool>> {
    (0..count)
        .map(|w| {
            let (b, id, loaded) = (b.clone(), id.clone(), loaded.clone());
            tokio::spawn(async move {
                let changes = set(&format!("w{w}"), &w.to_string());
                write_at(&b, &id, &loaded, version, &changes, secs(60)).await
            })
        })
        .collect()
}

/// Logs `id` out while four requests that loaded it at `version` write (the logout first
/// or the writes first, by `round`), and checks that none brings it back and that nothing
/// is left under its key.
async fn logout_racing_writers(
    server: &RedisServer,
    b: &Arc<RedisBackend>,
    id: &SessionId,
    loaded: &SessionState,
    version: Version,
    round: usize,
) {
    let writers = spawn_writers(b, id, loaded, version, 4);
    if round % 2 == 1 {
        tokio::task::yield_now().await;
    }
    assert!(b.delete(id).await.unwrap());
    for writer in writers {
        writer.await.unwrap();
    }
    assert_eq!(b.load(id, None).await.unwrap(), None, "round {round}");
    assert_eq!(server.cmd::<i64>(&["EXISTS", &key(id)]), 0, "round {round}");
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
                write_at(&b, &id, &loaded, version, &changes, secs(600)).await
            })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap());
    }
    let loaded = b.load(&id, None).await.unwrap().unwrap();
    assert_eq!(loaded.len(), 33);
    // Each adds its records: one `APPEND` per writer, no retries (and a script call, the
    // create's).
    assert_eq!(server.calls("append"), 32);
    assert_eq!(server.calls("evalsha"), 1);
}

/// A version is only meaningful to the backend that read it: handed to another (a
/// multi-backend hands it to every write backend), the write is one without a version, and
/// is right.
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
    assert!(write_at(&other, &id, &loaded, version, &changes, None).await);
    // Sets only: the records are added without reading (removals would read first).
    assert_eq!((server.calls("get"), server.calls("evalsha")), (0, 1));
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
            server.calls("getex"),
            server.calls("get"),
            server.calls("pexpire"),
            server.calls("evalsha")
        ),
        (1, 0, 0, 1)
    );
    // A sliding write keeps the expiry the load set: no `PEXPIRE` inside the script.
    assert_eq!(server.calls("append"), 1);
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

/// A string that is not one of our sessions is corrupt and left alone by every write. A
/// value of ours damaged after its header loads as corrupt (no session) however it was
/// written since: a write of records does not parse the value (that is what keeps it cheap),
/// so it may append its records to the damage.
#[tokio::test]
async fn a_damaged_string_is_corrupt() {
    let server = RedisServer::start();
    let b = backend(&server);
    for (damaged, ours) in [
        ("not a session", false),
        (r#"{"=a":1}"#, false),
        (r#"v2:0000000000000001:{"=a":1}"#, false),
        (r#"v1:0000000000000001:{"=a":1}"#, true),
        (r#"v1:0000000000000001:{"=a":secret"#, true),
        (r#"v1:0000000000000001:{"a":1"#, true),
        (r#"v1:zz00000000000001:{"=a":1"#, true),
        ("v1:", true),
    ] {
        let id = SessionId::generate();
        let _: () = server.cmd(&["SET", &key(&id), damaged]);
        let err = b.load(&id, None).await.unwrap_err();
        assert!(err.is_corrupt(), "{damaged}: {err:?}");
        assert!(!err.to_string().contains("secret"), "{err}");
        let written = b.apply(&id, &set("b", "2"), secs(5)).await;
        if ours {
            let _ = written;
        } else {
            assert!(written.unwrap_err().is_corrupt(), "{damaged}");
            assert_eq!(server.cmd::<String>(&["GET", &key(&id)]), damaged);
            assert_eq!(server.cmd::<i64>(&["PTTL", &key(&id)]), -1);
        }
        // Still no session, whatever was written.
        assert!(
            b.load(&id, None).await.unwrap_err().is_corrupt(),
            "{damaged}"
        );
        // Logout still clears it.
        assert!(b.delete(&id).await.unwrap());
    }
}

/// A key of another type (a list, a set) under a session's name is not a session: every
/// write says so at once, as corrupt, and leaves the key as it was. (The string and the
/// hash steps used to send each other back until the merge bound, then reported the
/// session as "changed by other writes".)
#[tokio::test]
async fn a_key_of_another_type_is_corrupt_for_every_write() {
    let server = RedisServer::start();
    let b = backend(&server);
    let mut removes = Changes::default();
    removes.remove("a");
    for (kind, fill) in [("list", "RPUSH"), ("set", "SADD")] {
        let id = SessionId::generate();
        let _: i64 = server.cmd(&[fill, &key(&id), "x"]);
        assert!(b.load(&id, None).await.unwrap_err().is_corrupt(), "{kind}");
        for changes in [set("a", "1"), removes.clone()] {
            for ttl in [None, secs(60)] {
                let err = b.apply(&id, &changes, ttl).await.unwrap_err();
                assert!(err.is_corrupt(), "{kind}: {err:?}");
            }
        }
        assert_eq!(server.cmd::<String>(&["TYPE", &key(&id)]), kind);
        assert_eq!(server.cmd::<i64>(&["PTTL", &key(&id)]), -1, "{kind}");
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

    // Read in place (what the axum layer loads): the same state, at the same version.
    let (in_place, in_place_version) = b.load_in_place(&id, None).await.unwrap().unwrap();
    let mut read: Vec<(&str, &str)> = in_place.iter().collect();
    read.sort_unstable();
    assert_eq!(read, [("n", "1"), ("user", "\"alice\"")]);

    // A request's load and write: field level, as before; still a hash.
    let (loaded, version) = b.load_versioned(&id, secs(120)).await.unwrap().unwrap();
    assert_eq!(version, in_place_version);
    assert!(server.cmd::<i64>(&["PTTL", &key(&id)]) > 115_000, "touched");
    let changes = set("n", "2");
    assert!(write_at(&b, &id, &loaded, version, &changes, None).await);
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
    assert!(write_at(&b, &id, &loaded, version, &changes, None).await);
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

/// A write adds the changed keys' records to the stored value; once those outweigh the
/// session, the write rewrites it whole, conditional on the version. A rewrite of a large
/// session stages the value with a plain `SET` and a script moves it onto the session (a
/// large value through Lua costs Redis about 1.2 µs per KB): the same guarantees, no
/// staging key left behind, the expiry kept or set as asked.
#[tokio::test]
async fn records_are_added_then_rewritten_and_large_rewrites_are_staged() {
    let server = RedisServer::start();
    let b = backend(&server);
    let big = |c: char| format!("\"{}\"", c.to_string().repeat(2000));
    let id = SessionId::generate();
    assert!(b
        .create(&id, &state(&[("big", &big('a')), ("n", "1")]), secs(60))
        .await
        .unwrap());
    let staged = || -> Vec<String> { server.cmd(&["KEYS", "*:w:*"]) };
    let strlen = || -> usize { server.cmd(&["STRLEN", &key(&id)]) };
    let write = |changes: Changes, ttl: Option<Duration>| {
        let b = &b;
        let id = &id;
        async move {
            let (loaded, version) = b.load_versioned(id, None).await.unwrap().unwrap();
            b.apply_versioned(
                id,
                version,
                &pairs(&after(&loaded, &changes)),
                &changes,
                ttl,
            )
            .await
            .unwrap()
        }
    };
    let _ = write(set("warm", "0"), None).await; // scripts cached
    let created = strlen();

    // A small change: its record is added (no rewrite, nothing staged).
    let _: () = server.cmd(&["CONFIG", "RESETSTAT"]);
    assert!(write(set("n", "2"), None).await);
    assert_eq!((server.calls("append"), server.calls("rename")), (1, 0));
    assert!(strlen() < created + 20);
    // `None` kept the expiry the create set.
    let pttl: i64 = server.cmd(&["PTTL", &key(&id)]);
    assert!(pttl > 50_000 && pttl <= 60_000, "{pttl}");

    // The big value changed: with its record, the stored value would be over 1.25 times the
    // session, so the write rewrites it whole, staged.
    let _: () = server.cmd(&["CONFIG", "RESETSTAT"]);
    assert!(write(set("big", &big('c')), secs(120)).await);
    assert_eq!(
        (server.calls("rename"), server.calls("set")),
        (1, 1),
        "staged"
    );
    assert!(
        strlen() < created + 50,
        "rewritten: {} vs {created}",
        strlen()
    );
    assert!(staged().is_empty());
    let now = b.load(&id, None).await.unwrap().unwrap();
    assert_eq!(now["big"], big('c'));
    assert_eq!((now["n"].as_str(), now["warm"].as_str()), ("2", "0"));
    assert!(server.cmd::<i64>(&["PTTL", &key(&id)]) > 110_000);

    // A rewrite that finds another write in between adds its records on top instead, in
    // the same script (no second round trip, and the current value does not pass back
    // through Lua), with the expiry asked for.
    for n in 0..100 {
        // About 900 bytes of small records: bloated, under the next multiple of 4 KB.
        assert!(b.apply(&id, &set("n", &n.to_string()), None).await.unwrap());
    }
    let (loaded, version) = b.load_versioned(&id, None).await.unwrap().unwrap();
    assert!(write(set("other", "1"), None).await);
    let _: () = server.cmd(&["CONFIG", "RESETSTAT"]);
    assert!(write_at(&b, &id, &loaded, version, &set("n", "9"), secs(90)).await);
    assert_eq!(
        ["evalsha", "append", "get", "pexpire", "rename"].map(|c| server.calls(c)),
        [1, 1, 0, 1, 0],
        "one script: the records on top"
    );
    let now = b.load(&id, None).await.unwrap().unwrap();
    assert_eq!((now["n"].as_str(), now["other"].as_str()), ("9", "1"));
    assert!(staged().is_empty());
    let pttl: i64 = server.cmd(&["PTTL", &key(&id)]);
    assert!(pttl > 80_000 && pttl <= 90_000, "{pttl}");

    // Records of 1 KB or more are not passed to the script (Lua would charge them on every
    // rewrite): the value is answered, and the records added in a second round trip.
    for c in ['x', 'y'] {
        assert!(b.apply(&id, &set("big", &big(c)), None).await.unwrap()); // bloated
    }
    let (loaded, version) = b.load_versioned(&id, None).await.unwrap().unwrap();
    assert!(write(set("other", "10"), None).await);
    let changes = set("big", &big('d'));
    let _: () = server.cmd(&["CONFIG", "RESETSTAT"]);
    assert!(write_at(&b, &id, &loaded, version, &changes, secs(90)).await);
    assert_eq!(
        ["evalsha", "append", "get", "pexpire"].map(|c| server.calls(c)),
        [1, 1, 1, 1],
        "the rewrite, then the records"
    );
    let now = b.load(&id, None).await.unwrap().unwrap();
    assert_eq!(
        (now["big"].clone(), now["other"].as_str()),
        (big('d'), "10")
    );
    assert!(staged().is_empty());

    // A session loaded at 1 KB or more whose rewrite is small (the big key removed, another
    // set) goes through `SAVE`'s checks: it too adds its records on top in the same call,
    // keeping the expiry when none is asked for.
    for c in ['x', 'y'] {
        assert!(b.apply(&id, &set("big", &big(c)), None).await.unwrap()); // bloated
    }
    let (loaded, version) = b.load_versioned(&id, None).await.unwrap().unwrap();
    assert!(write(set("other", "3"), None).await);
    let _: i64 = server.cmd(&["PEXPIRE", &key(&id), "70000"]);
    let _: () = server.cmd(&["CONFIG", "RESETSTAT"]);
    let mut changes = set("n", "3");
    changes.remove("big");
    assert!(write_at(&b, &id, &loaded, version, &changes, None).await);
    assert_eq!(
        ["evalsha", "append", "get", "pexpire", "rename"].map(|c| server.calls(c)),
        [1, 1, 0, 0, 0],
        "one script: the records on top"
    );
    let now = b.load(&id, None).await.unwrap().unwrap();
    assert_eq!(now.get("big"), None);
    assert_eq!((now["n"].as_str(), now["other"].as_str()), ("3", "3"));
    let pttl: i64 = server.cmd(&["PTTL", &key(&id)]);
    assert!(pttl > 60_000 && pttl <= 70_000, "{pttl}");
    assert!(write(set("big", &big('d')), None).await);

    // One that only removes keys answers the value (on top of it, the removals might leave
    // no key, which deletes the session): the caller adds them in a second call.
    for c in ['x', 'y'] {
        assert!(b.apply(&id, &set("big", &big(c)), None).await.unwrap()); // bloated
    }
    let (loaded, version) = b.load_versioned(&id, None).await.unwrap().unwrap();
    assert!(write(set("other", "2"), None).await);
    let _: () = server.cmd(&["CONFIG", "RESETSTAT"]);
    let mut removal = Changes::default();
    removal.remove("big");
    assert!(write_at(&b, &id, &loaded, version, &removal, None).await);
    assert_eq!(server.calls("evalsha"), 2, "the rewrite, then the records");
    let now = b.load(&id, None).await.unwrap().unwrap();
    assert_eq!(now.get("big"), None);
    assert_eq!(now["other"], "2");
    assert!(staged().is_empty());
    assert!(write(set("big", &big('d')), None).await);

    // Without expiry, a rewrite that keeps it keeps none.
    let _: i64 = server.cmd(&["PERSIST", &key(&id)]);
    assert!(write(set("big", &big('e')), None).await);
    assert!(write(set("big", &big('f')), None).await);
    assert!(write(set("big", &big('g')), None).await);
    assert_eq!(server.cmd::<i64>(&["PTTL", &key(&id)]), -1);

    // After `SCRIPT FLUSH` (a restart): still one write, by text.
    let _: () = server.cmd(&["SCRIPT", "FLUSH"]);
    for c in ['h', 'i', 'j'] {
        assert!(write(set("big", &big(c)), None).await);
    }
    assert_eq!(b.load(&id, None).await.unwrap().unwrap()["big"], big('j'));

    // A logout in between: nothing written, nothing staged left, by either kind of write.
    for changes in [set("n", "5"), set("big", &big('k'))] {
        let (loaded, version) = b.load_versioned(&id, None).await.unwrap().unwrap();
        let _: i64 = server.cmd(&["DEL", &key(&id)]);
        assert!(!write_at(&b, &id, &loaded, version, &changes, secs(60)).await);
        assert_eq!(server.cmd::<i64>(&["EXISTS", &key(&id)]), 0);
        assert!(staged().is_empty());
        assert!(b
            .create(&id, &state(&[("big", &big('a')), ("n", "1")]), secs(60))
            .await
            .unwrap());
        // Bloat it so the second round's write is a rewrite.
        for c in ['x', 'y'] {
            assert!(b.apply(&id, &set("big", &big(c)), None).await.unwrap());
        }
    }
}

/// Writes without a version (the store API's `apply`) cannot tell when records pile up; each
/// time the value grows past a multiple of 4 KB they read it and rewrite it if needed, so a
/// session written only so stays bounded, keeps its expiry and loses nothing.
#[tokio::test]
async fn sessions_written_without_a_version_stay_bounded() {
    let server = RedisServer::start();
    let b = backend(&server);
    let id = SessionId::generate();
    assert!(b
        .create(&id, &state(&[("user", "\"alice\""), ("n", "0")]), secs(600))
        .await
        .unwrap());
    let mut longest = 0;
    for n in 1..=2000 {
        assert!(b.apply(&id, &set("n", &n.to_string()), None).await.unwrap());
        longest = longest.max(server.cmd::<usize>(&["STRLEN", &key(&id)]));
    }
    // 2,000 records of about 12 bytes would be 24 KB; the session is 40 bytes.
    assert!(longest < 4096 + 512, "grew to {longest} bytes");
    assert_eq!(
        b.load(&id, None).await.unwrap(),
        Some(state(&[("user", "\"alice\""), ("n", "2000")]))
    );
    let pttl: i64 = server.cmd(&["PTTL", &key(&id)]);
    assert!(pttl > 500_000, "the expiry was kept: {pttl}");
}

/// The rewrite of a small session is one `SET ... XX GET` in the `SAVE` script, which puts
/// back what it replaced when that is not the version the request loaded. Every answer of the
/// checks it replaced, held: written at the version (with the expiry asked for, or kept),
/// merged when another write came in between (what that write left put back byte for byte),
/// nothing after a logout, records alone (`layout::ORPHAN`) left as they were, and a hash
/// under the key written as a hash.
#[tokio::test]
async fn small_rewrites_replace_only_the_version_they_loaded() {
    let server = RedisServer::start();
    let b = backend(&server);
    let id = SessionId::generate();
    let k = key(&id);
    let create = || async {
        assert!(b
            .create(&id, &state(&[("user", "\"alice\""), ("n", "0")]), secs(60))
            .await
            .unwrap());
    };
    // About 200 bytes of overridden records: the next write at a version rewrites, with a
    // wide margin.
    let bloat = || async {
        for n in 1..=20 {
            assert!(b.apply(&id, &set("n", &n.to_string()), None).await.unwrap());
        }
    };
    let strlen = || -> usize { server.cmd(&["STRLEN", &k]) };
    let pttl = || -> i64 { server.cmd(&["PTTL", &k]) };
    let calls = || {
        ["evalsha", "set", "getrange", "strlen", "append", "pexpire"]
            .map(|command| server.calls(command))
    };
    let reset = || {
        let _: () = server.cmd(&["CONFIG", "RESETSTAT"]);
    };
    create().await;
    bloat().await;

    // At its version: one script call, one `SET` and the expiry asked for; no reads first.
    let (loaded, version) = b.load_versioned(&id, None).await.unwrap().unwrap();
    let bloated = strlen();
    reset();
    assert!(write_at(&b, &id, &loaded, version, &set("n", "21"), secs(120)).await);
    assert_eq!(calls(), [1, 1, 0, 0, 0, 1]);
    assert!(strlen() + 100 < bloated, "{} vs {bloated}", strlen());
    assert!(pttl() > 110_000, "{}", pttl());

    // Without an expiry to set, the one it had is kept.
    let _: i64 = server.cmd(&["PEXPIRE", &k, "30000"]);
    bloat().await;
    let (loaded, version) = b.load_versioned(&id, None).await.unwrap().unwrap();
    reset();
    assert!(write_at(&b, &id, &loaded, version, &set("n", "22"), None).await);
    assert_eq!(calls(), [1, 1, 0, 0, 0, 0]);
    assert!((20_000..=30_000).contains(&pttl()), "{}", pttl());
    assert_eq!(b.load(&id, None).await.unwrap().unwrap()["n"], "22");

    // Another write in between: the rewrite puts its value back (the same bytes, the same
    // expiry) with its own records on top, in the same `SET`, so both land in one call.
    bloat().await;
    let (loaded, version) = b.load_versioned(&id, None).await.unwrap().unwrap();
    assert!(b.apply(&id, &set("other", "1"), None).await.unwrap());
    let between: Vec<u8> = server.cmd(&["GET", &k]);
    let ttl_before = pttl();
    reset();
    assert!(write_at(&b, &id, &loaded, version, &set("n", "99"), None).await);
    assert_eq!(calls(), [1, 2, 0, 0, 0, 0]);
    let now: Vec<u8> = server.cmd(&["GET", &k]);
    assert!(
        now.starts_with(&between),
        "what the other write left is kept as it was"
    );
    assert_eq!(&now[between.len()..], br#","=n":99"#);
    assert_eq!(
        b.load(&id, None).await.unwrap(),
        Some(state(&[("user", "\"alice\""), ("n", "99"), ("other", "1")]))
    );
    assert!(pttl() <= ttl_before && pttl() > ttl_before - 5_000);

    // The same with an expiry asked for: set by that `SET`.
    bloat().await;
    let (loaded, version) = b.load_versioned(&id, None).await.unwrap().unwrap();
    assert!(b.apply(&id, &set("other", "2"), None).await.unwrap());
    reset();
    assert!(write_at(&b, &id, &loaded, version, &set("n", "98"), secs(120)).await);
    assert_eq!(calls(), [1, 2, 0, 0, 0, 0]);
    assert!(pttl() > 110_000, "{}", pttl());
    assert_eq!(
        b.load(&id, None).await.unwrap(),
        Some(state(&[("user", "\"alice\""), ("n", "98"), ("other", "2")]))
    );

    // Only removals, with another write in between: the value answered, and the caller
    // applies them on top (when they leave no key, that deletes the session). Here the
    // other write's key stays.
    bloat().await;
    let (loaded, version) = b.load_versioned(&id, None).await.unwrap().unwrap();
    assert!(b.apply(&id, &set("other", "3"), None).await.unwrap());
    reset();
    let mut removal = Changes::default();
    removal.remove("n");
    removal.remove("user");
    assert!(write_at(&b, &id, &loaded, version, &removal, None).await);
    assert_eq!(server.calls("evalsha"), 2, "the rewrite, then the records");
    assert_eq!(
        b.load(&id, None).await.unwrap(),
        Some(state(&[("other", "3")]))
    );
    assert!(b.apply(&id, &set("user", "\"alice\""), None).await.unwrap());

    // Only removals, and on top of the other write they leave no key: the session is
    // deleted, as any write that leaves none deletes it.
    bloat().await;
    let (loaded, version) = b.load_versioned(&id, None).await.unwrap().unwrap();
    let mut others = Changes::default();
    others.remove("other");
    others.remove("user");
    assert!(b.apply(&id, &others, None).await.unwrap());
    let mut removal = Changes::default();
    removal.remove("n");
    assert!(write_at(&b, &id, &loaded, version, &removal, None).await);
    assert_eq!(server.cmd::<i64>(&["EXISTS", &k]), 0);
    create().await;

    // A logout in between: nothing written, no key.
    bloat().await;
    let (loaded, version) = b.load_versioned(&id, None).await.unwrap().unwrap();
    let _: i64 = server.cmd(&["DEL", &k]);
    reset();
    assert!(!write_at(&b, &id, &loaded, version, &set("n", "100"), secs(60)).await);
    assert_eq!(calls(), [1, 1, 0, 0, 0, 0]);
    assert_eq!(server.cmd::<i64>(&["EXISTS", &k]), 0);

    // Records alone under the key (another write's, after a logout): put back as they were,
    // with their expiry, for their writer to delete.
    create().await;
    bloat().await;
    let (loaded, version) = b.load_versioned(&id, None).await.unwrap().unwrap();
    let orphan = r#","=n":7"#;
    let _: () = server.cmd(&["SET", &k, orphan, "PX", "5000"]);
    assert!(!write_at(&b, &id, &loaded, version, &set("n", "101"), secs(60)).await);
    assert_eq!(server.cmd::<String>(&["GET", &k]), orphan);
    assert!((1..=5_000).contains(&pttl()), "{}", pttl());

    // A hash under the key since the load (a session in the layout of earlier versions):
    // the `SET` is refused before it writes, and the write goes to the hash, field by field.
    let _: i64 = server.cmd(&["DEL", &k]);
    create().await;
    bloat().await;
    let (loaded, version) = b.load_versioned(&id, None).await.unwrap().unwrap();
    let _: i64 = server.cmd(&["DEL", &k]);
    put_hash(&server, &id, &[("user", "\"bob\""), ("n", "5")], 40_000);
    assert!(write_at(&b, &id, &loaded, version, &set("n", "102"), None).await);
    assert_eq!(kind(&server, &id), "hash");
    assert_eq!(
        b.load(&id, None).await.unwrap(),
        Some(state(&[("user", "\"bob\""), ("n", "102")]))
    );
    assert!((30_000..=40_000).contains(&pttl()), "{}", pttl());
}

/// Requests that loaded one version of a small session whose records piled up, so that each
/// write is a rewrite: all at once they lose nothing, and racing a logout they bring nothing
/// back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_small_rewrites_lose_nothing_and_never_undo_a_logout() {
    let server = RedisServer::start();
    let b = Arc::new(backend(&server));
    let bloated = |b: Arc<RedisBackend>| async move {
        let (id, _, _) = created_and_loaded(&b, "ada").await;
        for n in 1..=20 {
            assert!(b.apply(&id, &set("n", &n.to_string()), None).await.unwrap());
        }
        let (loaded, version) = b.load_versioned(&id, None).await.unwrap().unwrap();
        (id, loaded, version)
    };

    let (id, loaded, version) = bloated(b.clone()).await;
    for writer in spawn_writers(&b, &id, &loaded, version, 16) {
        assert!(writer.await.unwrap());
    }
    let now = b.load(&id, None).await.unwrap().unwrap();
    assert_eq!(now.len(), 2 + 16, "{now:?}");
    assert!((0..16).all(|w| now[&format!("w{w}")] == w.to_string()));

    for round in 0..30 {
        let (id, loaded, version) = bloated(b.clone()).await;
        logout_racing_writers(&server, &b, &id, &loaded, version, round).await;
    }

    // A session still stored as a hash by an earlier version, written field by field: the
    // same race.
    for round in 0..10 {
        let id = SessionId::generate();
        put_hash(&server, &id, &[("user", "\"ada\""), ("n", "1")], 60_000);
        let (loaded, version) = b.load_versioned(&id, None).await.unwrap().unwrap();
        logout_racing_writers(&server, &b, &id, &loaded, version, round).await;
    }
}

/// The same for a large session, whose rewrites are staged (`COMMIT`): writers that find
/// another write in between add their records in the same script; all at once they lose
/// nothing and leave no staging key, and racing a logout they bring nothing back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_large_rewrites_lose_nothing_and_never_undo_a_logout() {
    let server = RedisServer::start();
    let b = Arc::new(backend(&server));
    let big = |c: char| format!("\"{}\"", c.to_string().repeat(1500));
    let bloated = |b: Arc<RedisBackend>| async move {
        let id = SessionId::generate();
        assert!(b
            .create(&id, &state(&[("big", &big('a'))]), secs(60))
            .await
            .unwrap());
        // One overridden copy (under the 4 KB at which writes without a version look):
        // the next write at a version rewrites it whole, staged.
        assert!(b.apply(&id, &set("big", &big('c')), None).await.unwrap());
        let (loaded, version) = b.load_versioned(&id, None).await.unwrap().unwrap();
        (id, loaded, version)
    };
    let staged = || -> Vec<String> { server.cmd(&["KEYS", "*:w:*"]) };

    let (id, loaded, version) = bloated(b.clone()).await;
    let _: () = server.cmd(&["CONFIG", "RESETSTAT"]);
    for writer in spawn_writers(&b, &id, &loaded, version, 16) {
        assert!(writer.await.unwrap());
    }
    // One rewrite won; the others added their records in their own script call, without
    // reading the value back.
    assert_eq!(
        ["rename", "append", "get"].map(|c| server.calls(c)),
        [1, 15, 0]
    );
    let now = b.load(&id, None).await.unwrap().unwrap();
    assert_eq!(now.len(), 1 + 16, "{:?}", now.keys().collect::<Vec<_>>());
    assert_eq!(now["big"], big('c'));
    assert!((0..16).all(|w| now[&format!("w{w}")] == w.to_string()));
    assert!(staged().is_empty());

    for round in 0..20 {
        let (id, loaded, version) = bloated(b.clone()).await;
        logout_racing_writers(&server, &b, &id, &loaded, version, round).await;
        assert!(staged().is_empty(), "round {round}");
    }
}

/// A delete answers whether it removed a session, as every read would have seen it: records
/// alone (a write's `APPEND` after a logout, until its writer drops them) and a moved marker
/// are none, so it answers false for them, and removes them all the same. The renews of both
/// framework layers decide by that answer whether a logout came in between their load and
/// their delete of the old id: a plain `DEL` answered "removed" for a write's records, and
/// the renew kept the session under its new id after the logout (session-axum
/// `topology_races.rs`, session-actix `races.rs`). A session in either layout, and a value
/// of another kind (corrupt, but something the id held), answer true. The batch
/// (`delete_many`, bulk revokes) removes them all the same, and counts what it removed.
#[tokio::test]
async fn a_delete_of_records_alone_or_a_moved_marker_answers_no_session() {
    let server = RedisServer::start();
    let b = backend(&server);
    let (id, loaded, version) = created_and_loaded(&b, "ada").await;
    assert!(b.delete(&id).await.unwrap());
    let leftovers = [
        r#","=user":"mallory" "#.to_owned(),
        format!(r#","~moved":"{:016x}""#, 0x0123_4567_89ab_cdef_u64),
    ];
    for leftover in &leftovers {
        for batch in [false, true] {
            let _: () = server.cmd(&["SET", &key(&id), leftover, "PX", "60000"]);
            let deleted = if batch {
                b.delete_many(std::slice::from_ref(&id)).await.remove(0)
            } else {
                b.delete(&id).await
            };
            assert_eq!(deleted.unwrap(), batch, "{leftover}, batch: {batch}");
            assert_eq!(server.cmd::<i64>(&["EXISTS", &key(&id)]), 0, "{leftover}");
        }
    }
    // The records as a late write leaves them: its `APPEND` onto the deleted key.
    let _: i64 = server.cmd(&["APPEND", &key(&id), r#","late":"v" "#]);
    assert!(!write_at(&b, &id, &loaded, version, &set("n", "1"), secs(60)).await);
    assert!(!b.delete(&id).await.unwrap());

    for batch in [false, true] {
        let (id, _, _) = created_and_loaded(&b, "ada").await;
        let hash = SessionId::generate();
        put_hash(&server, &hash, &[("user", "\"bob\"")], 60_000);
        let other = SessionId::generate();
        let _: () = server.cmd(&["SET", &key(&other), "not ours"]);
        let ids = [id, hash, other];
        for id in &ids {
            let deleted = if batch {
                b.delete_many(std::slice::from_ref(id)).await.remove(0)
            } else {
                b.delete(id).await
            };
            assert!(deleted.unwrap(), "batch: {batch}");
            assert!(!b.delete(id).await.unwrap(), "batch: {batch}");
        }
        let answers = b.delete_many(&ids).await;
        assert!(answers.into_iter().all(|a| !a.unwrap()));
    }
}
