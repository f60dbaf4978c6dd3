//! Property tests of the decoders that turn outside input into sessions (issue 9, "fuzz the
//! decoders that take outside input"): `SessionId::parse` (cookie values, file names, keys), the
//! Redis backend's reading of a stored value (`GET`, and `HGETALL` of the hash layout of
//! earlier versions), and the file store's reading of a session file.
//!
//! Stored data is written by someone else (another program, an operator, a disk error), so
//! every outcome of a load must be `Ok(None)`, `Ok(Some(valid state))` or
//! `StoreError::Corrupt` (which the store turns into "no session"): never a panic, and never
//! `Unavailable` (that would answer 503 for data that will never become readable).
//!
//! The Redis cases go through a real `redis-server` (no mock of its replies): the data is written
//! with raw commands, then loaded through `RedisBackend`. Case counts are bounded so that each
//! test runs in a few seconds (figures in docs/security.md). The config literal parser has its
//! own properties (`config/literal.rs` unit tests and `tests/config_props.rs`).

use std::{collections::BTreeMap, path::Path, time::Duration};

use proptest::prelude::*;
use session_core::{
    backends::{file::FileBackend, redis::RedisBackend},
    SessionBackend, SessionConfig, SessionId, SessionState, StoreError,
};
use session_testkit::RedisServer;

const ID_ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// What a load may answer for bad data: nothing, a readable session, or `Corrupt`.
fn check_outcome(what: &str, result: &Result<Option<SessionState>, StoreError>) {
    match result {
        Ok(None) => {}
        Ok(Some(state)) => {
            assert!(!state.is_empty(), "{what}: an empty session was returned");
            for value in state.values() {
                assert!(
                    // The store's own test (`IgnoredAny`: any depth of nesting is JSON text).
                    serde_json::from_str::<serde::de::IgnoredAny>(value).is_ok(),
                    "{what}: a value that is not JSON text was returned"
                );
            }
        }
        Err(e) => assert!(e.is_corrupt(), "{what}: expected Corrupt, got {e:?}"),
    }
}

/// Every way a backend reads a session: plain, touching, and with its TTL (a move's read).
fn load_all_ways(
    rt: &tokio::runtime::Runtime,
    backend: &dyn SessionBackend,
    id: &SessionId,
) -> Vec<Result<Option<SessionState>, StoreError>> {
    rt.block_on(async {
        vec![
            backend.load(id, None).await,
            backend
                .load_with_ttl(id)
                .await
                .map(|found| found.map(|(state, _)| state)),
            backend.load(id, Some(Duration::from_secs(60))).await,
            // Read in place (what the axum layer loads), as a map to compare.
            backend
                .load_in_place(id, None)
                .await
                .map(|found| found.map(|(loaded, _)| loaded.to_state())),
        ]
    })
}

/// The index of a load's outcome in the (none, some, corrupt) counts.
fn outcome(result: &Result<Option<SessionState>, StoreError>) -> usize {
    match result {
        Ok(None) => 0,
        Ok(Some(_)) => 1,
        Err(_) => 2,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// SessionId::parse

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 4096,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Any text: accepted exactly when it has the shape `generate` makes, and then kept as is.
    #[test]
    fn id_parse_accepts_exactly_the_generated_shape(text in prop_oneof![
        ".{0,64}",
        "[A-Za-z0-9_-]{40,46}",
        "[A-Za-z0-9_=+/.-]{43}",
        prop::collection::vec(any::<u8>(), 0..64)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]) {
        let shaped = text.len() == 43 && text.chars().all(|c| ID_ALPHABET.contains(c));
        match SessionId::parse(&text) {
            Ok(id) => {
                prop_assert!(shaped);
                prop_assert_eq!(id.as_str(), text.as_str());
            }
            Err(_) => prop_assert!(!shaped),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Redis: stored values (`GET`) and hashes of the former layout (`HGETALL`)

/// Bytes for a field name or a value: valid JSON text, text that is not JSON, arbitrary bytes
/// (mostly not UTF-8), empty, or deeply nested JSON (beyond serde_json's recursion limit).
fn redis_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"1".to_vec()),
        "\"[a-z]{0,8}\"".prop_map(String::into_bytes),
        "\\{\"[a-z]{1,4}\":[0-9]{1,3}\\}".prop_map(String::into_bytes),
        ".{0,16}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..32),
        Just(Vec::new()),
        (1..4000usize).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes()),
    ]
}

/// What is stored at the session's key.
#[derive(Debug, Clone)]
enum Stored {
    Nothing,
    Hash(BTreeMap<Vec<u8>, Vec<u8>>),
    String(Vec<u8>),
    /// A value of our string layout: the header, then `body` (a JSON object, or not).
    Value(Vec<u8>),
    List(Vec<Vec<u8>>),
    Set(Vec<Vec<u8>>),
    ZSet(Vec<Vec<u8>>),
    Stream(Vec<u8>),
}

fn stored() -> impl Strategy<Value = Stored> {
    let items = || prop::collection::vec(redis_bytes(), 1..5);
    prop_oneof![
        1 => Just(Stored::Nothing),
        4 => prop::collection::btree_map(redis_bytes(), redis_bytes(), 1..6).prop_map(Stored::Hash),
        1 => redis_bytes().prop_map(Stored::String),
        4 => value_body().prop_map(Stored::Value),
        1 => items().prop_map(Stored::List),
        1 => items().prop_map(Stored::Set),
        1 => items().prop_map(Stored::ZSet),
        1 => redis_bytes().prop_map(Stored::Stream),
    ]
}

fn write(con: &mut redis::Connection, key: &str, stored: &Stored) {
    let cmd = match stored {
        Stored::Nothing => return,
        Stored::Hash(pairs) => {
            let mut cmd = redis::cmd("HSET");
            cmd.arg(key);
            for (field, value) in pairs {
                cmd.arg(field.as_slice()).arg(value.as_slice());
            }
            cmd
        }
        Stored::String(value) => {
            let mut cmd = redis::cmd("SET");
            cmd.arg(key).arg(value.as_slice());
            cmd
        }
        Stored::Value(body) => {
            let mut cmd = redis::cmd("SET");
            let mut value = b"v1:00000000000000a1:".to_vec();
            value.extend_from_slice(body);
            cmd.arg(key).arg(value);
            cmd
        }
        Stored::List(items) => {
            let mut cmd = redis::cmd("RPUSH");
            cmd.arg(key).arg(items);
            cmd
        }
        Stored::Set(items) => {
            let mut cmd = redis::cmd("SADD");
            cmd.arg(key).arg(items);
            cmd
        }
        Stored::ZSet(items) => {
            let mut cmd = redis::cmd("ZADD");
            cmd.arg(key);
            for (score, item) in items.iter().enumerate() {
                cmd.arg(score).arg(item.as_slice());
            }
            cmd
        }
        Stored::Stream(value) => {
            let mut cmd = redis::cmd("XADD");
            cmd.arg(key).arg("*").arg("f").arg(value.as_slice());
            cmd
        }
    };
    let () = cmd.query(con).expect("writing the test data");
}

/// The exact answer expected for `stored`: a readable hash is returned as is, anything else
/// stored is `Corrupt` (`Err(())` here), nothing stored is `None`.
fn expected(stored: &Stored) -> Result<Option<SessionState>, ()> {
    match stored {
        Stored::Nothing => Ok(None),
        Stored::Hash(pairs) => {
            let mut state = SessionState::new();
            for (field, value) in pairs {
                let field = String::from_utf8(field.clone()).map_err(|_| ())?;
                let value = String::from_utf8(value.clone()).map_err(|_| ())?;
                serde_json::from_str::<serde::de::IgnoredAny>(&value).map_err(|_| ())?;
                state.insert(field, value);
            }
            Ok(Some(state))
        }
        // A JSON object of records, each value kept as its text (serde_json's own reading of
        // the object is the definition): the session; an empty one is no session; anything else is corrupt.
        Stored::Value(body) => {
            // Stored without its closing brace.
            let mut object = body.clone();
            object.push(b'}');
            let raw: Vec<(String, Box<serde_json::value::RawValue>)> =
                serde_json::from_slice::<RawPairs>(&object)
                    .map_err(|_| ())?
                    .0;
            // Records: `=key` sets, `-key` removes, in order; a name without either is
            // not ours.
            let mut state = SessionState::new();
            for (name, value) in raw {
                match name.strip_prefix('=') {
                    Some(key) => {
                        state.insert(key.to_owned(), value.get().to_owned());
                    }
                    None => {
                        state.remove(name.strip_prefix('-').ok_or(())?);
                    }
                }
            }
            Ok((!state.is_empty()).then_some(state))
        }
        // Records alone (what a write leaves after a logout: they start with the comma that
        // separates records) are no session, whatever follows.
        Stored::String(value) if value.first() == Some(&b',') => Ok(None),
        _ => Err(()),
    }
}

/// The pairs of a JSON object in order, values as their text.
struct RawPairs(Vec<(String, Box<serde_json::value::RawValue>)>);

impl<'de> serde::Deserialize<'de> for RawPairs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Pairs;
        impl<'de> serde::de::Visitor<'de> for Pairs {
            type Value = RawPairs;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<RawPairs, A::Error> {
                let mut out = Vec::new();
                while let Some(pair) = m.next_entry()? {
                    out.push(pair);
                }
                Ok(RawPairs(out))
            }
        }
        d.deserialize_map(Pairs)
    }
}

/// The body of a stored value (without its closing brace): a JSON object of record names (mostly an operation, `=` or
/// `-`, then a key with quotes and escapes) to JSON text (`redis_bytes`, often not JSON),
/// sometimes cut short or closed.
fn value_body() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(("[=\\-]?[a-z\"\\\\ ]{0,4}", redis_bytes()), 0..5),
        0..3usize,
    )
        .prop_map(|(pairs, cut)| {
            let mut body = b"{".to_vec();
            for (i, (key, value)) in pairs.iter().enumerate() {
                if i > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(serde_json::to_string(key).unwrap().as_bytes());
                body.push(b':');
                body.extend_from_slice(value);
            }
            // Stored without the closing brace; sometimes cut short, sometimes with one
            // (then two, once the reader closes it).
            if cut == 2 {
                body.push(b'}');
            } else {
                body.truncate(body.len() - cut.min(body.len()));
            }
            body
        })
}

#[test]
fn redis_stored_values_give_a_session_none_or_corrupt() {
    let server = RedisServer::start();
    // `TestRunner::run` takes an `Fn`: the connection is borrowed mutably per case.
    let con = std::cell::RefCell::new(server.connection());
    let rt = runtime();
    let backend = {
        let _guard = rt.enter();
        RedisBackend::from_config(&SessionConfig {
            url: Some(server.url()),
            ..SessionConfig::default()
        })
        .unwrap()
    };
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        // Each case is a few round trips to a local server: 256 stay well under a second.
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let seen = std::cell::RefCell::new([0usize; 3]);
    runner
        .run(&stored(), |stored| {
            let id = SessionId::generate();
            let key = format!("session:{}", id.as_str());
            write(&mut con.borrow_mut(), &key, &stored);
            let want = expected(&stored);
            for result in load_all_ways(&rt, &backend, &id) {
                check_outcome("redis", &result);
                seen.borrow_mut()[outcome(&result)] += 1;
                match (&want, &result) {
                    (Ok(want), Ok(got)) => prop_assert_eq!(want, got),
                    (Err(()), Err(e)) => prop_assert!(e.is_corrupt()),
                    _ => prop_assert!(false, "expected {want:?}, got {result:?}"),
                }
            }
            Ok(())
        })
        .unwrap();
    let seen = seen.into_inner();
    assert!(
        seen.iter().all(|&n| n > 0),
        "outcomes (none, some, corrupt): {seen:?}"
    );
    eprintln!("redis outcomes (none, some, corrupt): {seen:?}");
}

// ---------------------------------------------------------------------------------------------
// File store: session files

/// A JSON value of a random kind, for the record's fields.
fn json_scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("null".to_owned()),
        Just("1".to_owned()),
        Just("0".to_owned()),
        Just("-1".to_owned()),
        Just("1.5".to_owned()),
        Just("18446744073709551615".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("1e400".to_owned()),
        Just("true".to_owned()),
        Just("\"1\"".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
    ]
}

/// A `state` object: keys to strings that are JSON text, or not, or values that are not strings.
fn json_state() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        4 => redis_bytes()
            .prop_map(|b| serde_json::to_string(&String::from_utf8_lossy(&b)).unwrap()),
        1 => json_scalar(),
    ];
    prop_oneof![
        8 => prop::collection::vec((".{0,6}", value), 0..5).prop_map(|pairs| {
            let body: Vec<String> = pairs
                .into_iter()
                .map(|(k, v)| format!("{}:{v}", serde_json::to_string(&k).unwrap()))
                .collect();
            format!("{{{}}}", body.join(","))
        }),
        1 => json_scalar(),
    ]
}

/// Session file contents: records of the right shape with random field values (now and then
/// valid), then cut or edited, and arbitrary bytes.
fn file_bytes() -> impl Strategy<Value = Vec<u8>> {
    let version = prop_oneof![4 => Just("1".to_owned()), 1 => json_scalar()];
    let expires = prop_oneof![
        Just("null".to_owned()),
        Just("4102444800000".to_owned()),
        Just("1".to_owned()),
        json_scalar(),
    ];
    let record = (version, expires, json_state(), any::<bool>())
        .prop_map(|(version, expires, state, extra)| {
            let extra = if extra {
                ",\"later\":[1,{\"x\":null}]"
            } else {
                ""
            };
            format!(
                "{{\"version\":{version},\"expires_at_ms\":{expires},\"state\":{state}{extra}}}"
            )
            .into_bytes()
        })
        .boxed();
    prop_oneof![
        4 => record.clone(),
        2 => (record.clone(), any::<prop::sample::Index>())
            .prop_map(|(mut bytes, at)| {
                let at = at.index(bytes.len());
                bytes.truncate(at);
                bytes
            }),
        2 => (record, any::<prop::sample::Index>(), any::<u8>()).prop_map(|(mut bytes, at, b)| {
            let at = at.index(bytes.len());
            bytes[at] = b;
            bytes
        }),
        1 => prop::collection::vec(any::<u8>(), 0..2048),
        1 => (1..100_000usize).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes()),
    ]
}

/// Writes `bytes` where the store looks for `id`: `<root>/<first two characters>/<id>.json`
/// (see the layout in `backends/file.rs`).
fn plant(root: &Path, id: &SessionId, bytes: &[u8]) {
    let shard = root.join(&id.as_str()[..2]);
    std::fs::create_dir_all(&shard).unwrap();
    std::fs::write(shard.join(format!("{}.json", id.as_str())), bytes).unwrap();
}

#[test]
fn session_files_give_a_session_none_or_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("sessions");
    let rt = runtime();
    let backend = {
        let _guard = rt.enter();
        FileBackend::new(root.clone())
            .unwrap()
            .with_fsync(false)
            .with_cleanup_interval(None)
    };
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 1024,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let seen = std::cell::RefCell::new([0usize; 3]);
    runner
        .run(&file_bytes(), |bytes| {
            let id = SessionId::generate();
            plant(&root, &id, &bytes);
            for result in load_all_ways(&rt, &backend, &id) {
                check_outcome("file", &result);
                seen.borrow_mut()[outcome(&result)] += 1;
            }
            Ok(())
        })
        .unwrap();
    // The generator must reach every outcome, or it tests less than it claims.
    let seen = seen.into_inner();
    assert!(
        seen.iter().all(|&n| n > 0),
        "outcomes (none, some, corrupt): {seen:?}"
    );
    eprintln!("file store outcomes (none, some, corrupt): {seen:?}");
}
