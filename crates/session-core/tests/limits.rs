//! `session_redis_max_session_size`: a session over the limit is refused with a typed error
//! and nothing is stored, on a real Redis server as in memory.

use session_core::{
    Changes, ConfigErrorKind, SessionConfig, SessionState, SessionStore, StoreError,
};
use session_testkit::RedisServer;

fn state(pairs: &[(&str, &str)]) -> SessionState {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A JSON string value of `n` bytes (quotes included).
fn json_of_len(n: usize) -> String {
    format!("\"{}\"", "x".repeat(n - 2))
}

fn too_large(err: StoreError) -> (usize, usize) {
    match err {
        StoreError::TooLarge { size, limit } => (size, limit),
        other => panic!("expected TooLarge, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_limit_refuses_a_2_mb_login_and_stores_nothing() {
    let server = RedisServer::start();
    let config = SessionConfig::builder()
        .set("session_redis_url", &server.url())
        .build()
        .unwrap();
    assert_eq!(config.max_session_size, 65_536, "64 KiB by default");
    let store = SessionStore::from_config(&config).await.unwrap();

    // The report: an anonymous login with a 2 MB user name.
    let huge = state(&[("user", &json_of_len(2 * 1024 * 1024))]);
    let (size, limit) = too_large(store.create(&huge, None).await.unwrap_err());
    assert_eq!((size, limit), (4 + 2 * 1024 * 1024, 65_536));
    assert_eq!(server.cmd::<i64>(&["DBSIZE"]), 0, "nothing stored");

    // Exactly at the limit is fine; one byte more is not.
    let at_limit = state(&[("user", &json_of_len(65_536 - 4))]);
    let id = store.create(&at_limit, None).await.unwrap();
    let mut over = at_limit.clone();
    over.insert("n".into(), "1".into());
    assert!(store
        .replace(&id, &over, None)
        .await
        .unwrap_err()
        .is_too_large());
    assert!(store.check_size(&over).unwrap_err().is_too_large());
    assert_eq!(store.load(&id).await.unwrap(), Some(at_limit));

    // `apply` refuses a change that alone is over the limit (the whole session is the
    // caller's to check, with check_size, as both framework adapters do).
    let mut changes = Changes::default();
    changes.set("blob", json_of_len(70_000));
    assert!(store
        .apply(&id, &changes, None)
        .await
        .unwrap_err()
        .is_too_large());
    assert!(!store.load(&id).await.unwrap().unwrap().contains_key("blob"));
}

#[tokio::test]
async fn zero_means_unlimited_and_the_bound_is_checked() {
    let config = SessionConfig::builder()
        .set("session_redis_mode", "False")
        .set("session_redis_max_session_size", "0")
        .set(
            "session_filestore_path",
            tempfile::tempdir().unwrap().path().to_str().unwrap(),
        )
        .build()
        .unwrap();
    assert!(config.plan().unwrap().max_session_size.is_none());
    let store = SessionStore::memory().with_max_session_size(None);
    let big = state(&[("blob", &json_of_len(1024 * 1024))]);
    store.create(&big, None).await.unwrap();

    for (value, ok) in [("536870912", true), ("536870913", false), ("-1", false)] {
        let built = SessionConfig::builder()
            .set("session_redis_max_session_size", value)
            .build();
        assert_eq!(built.is_ok(), ok, "{value}: {built:?}");
        if let Err(e) = built {
            assert_eq!(e.key, "session_redis_max_session_size", "{e}");
            assert_ne!(e.kind, ConfigErrorKind::UnknownKey);
        }
    }
}

#[tokio::test]
async fn a_small_limit_counts_keys_and_json_values() {
    let store = SessionStore::memory().with_max_session_size(Some(10));
    // "user" (4) + "\"bob\"" (5) = 9 bytes.
    let id = store
        .create(&state(&[("user", "\"bob\"")]), None)
        .await
        .unwrap();
    let mut grown = state(&[("user", "\"bob\"")]);
    grown.insert("n".into(), "1".into()); // 11 bytes
    let (size, limit) = too_large(store.check_size(&grown).unwrap_err());
    assert_eq!((size, limit), (11, 10));
    assert!(store.load(&id).await.unwrap().is_some());
    // The error names the option, never the data.
    let shown = store
        .replace(&id, &grown, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(shown.contains("session_redis_max_session_size"), "{shown}");
    assert!(!shown.contains("bob"), "{shown}");
}
