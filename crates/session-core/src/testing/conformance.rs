//! The backend conformance suite: every rule of the [`SessionBackend`] contract (and of the
//! [`SessionStore`] TTL rule over it), checked the same way against every backend.
//!
//! The in-memory, file, Redis (standalone, cluster), pool and multi backends of this crate all
//! run it; a backend in another crate proves itself with the same line in one of its tests
//! (enable this crate's `testing` feature in its `[dev-dependencies]`):
//!
//! ```
//! use std::sync::Arc;
//! use session_core::{backends::memory::MemoryBackend, testing::conformance, SessionBackend};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! // In a test: #[tokio::test(flavor = "multi_thread")]
//! let backend: Arc<dyn SessionBackend> = Arc::new(MemoryBackend::new());
//! conformance::run_all(|| backend.clone()).await;
//! # });
//! ```
//!
//! The factory may return a new backend on the same storage each time (several handles on one
//! Redis server or one directory) or the same one; ids are random, so checks never collide.
//! Run it on a multi-threaded runtime so the concurrency checks really race. Each check is
//! also public, to run alone while fixing it.
//!
//! Corrupt data cannot be produced generically, so [`corrupt_session_is_reported`] is not part
//! of [`run_all`]: a backend's own test plants corrupt data under an id and then calls it.
//! Nor is [`moved_markers`]: a backend that keeps moved markers
//! ([`SessionBackend::retire_many`]: Redis, and a pool of it) calls it; the trait's default
//! keeps none.

use std::{
    future::Future,
    panic::AssertUnwindSafe,
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::FutureExt;

use super::probe::ProbeBackend;
use crate::{Changes, Retired, SessionBackend, SessionId, SessionState, SessionStore};

/// The short TTL of the expiry checks.
pub const TTL: Duration = Duration::from_secs(1);
/// When a session written with [`TTL`] must be gone (margin for slow machines).
pub const GONE_AT: Duration = Duration::from_millis(1600);
/// A TTL that cannot run out during a test.
pub const LONG: Duration = Duration::from_secs(3600);

/// A store over a shared backend handle.
///
/// Why: `SessionStore::new` takes its backend by value, and the suite (like a backend's own
/// tests) also calls the backend directly, or opens a second store on it.
pub fn store_of(backend: &Arc<dyn SessionBackend>) -> SessionStore {
    SessionStore::new(ProbeBackend::wrap(backend.clone()))
}

/// A state from (key, JSON text) pairs.
pub fn state(pairs: &[(&str, &str)]) -> SessionState {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Changes that set `key` to the JSON text `value`.
pub fn set(key: &str, value: &str) -> Changes {
    let mut changes = Changes::default();
    changes.set(key, value);
    changes
}

fn remove(key: &str) -> Changes {
    let mut changes = Changes::default();
    changes.remove(key);
    changes
}

async fn sleep_until(start: Instant, at: Duration) {
    tokio::time::sleep_until((start + at).into()).await;
}

/// The checks [`run_all`] runs one after the other, in this order.
pub const SEQUENTIAL_CHECKS: &[&str] = &[
    "health_is_up",
    "create_load_round_trip",
    "empty_session_is_never_written",
    "unknown_id_loads_as_none",
    "replace_only_if_present",
    "replace_with_empty_state_deletes",
    "apply_sets_and_removes_single_keys",
    "apply_removing_every_key_deletes",
    "apply_on_absent_writes_nothing",
    "empty_changes_only_check_or_touch",
    "touch_only_if_present",
    "delete_reports_whether_it_existed",
    "create_never_overwrites",
    "concurrent_applies_lose_nothing",
    "delete_racing_applies_never_resurrects",
    "two_handles_see_each_other",
];

/// The expiry checks, which wait for TTLs to run out: [`run_all`] runs them concurrently after
/// the others, so the suite waits about 2 s in all rather than 2 s each.
pub const EXPIRY_CHECKS: &[&str] = &[
    "ttl_on_create",
    "ttl_on_replace",
    "ttl_on_apply",
    "ttl_on_touch",
    "ttl_on_load_and_touch",
    "key_expire_wins",
];

/// Runs every check of the suite against backends made by `make_backend`: the
/// [`SEQUENTIAL_CHECKS`] one after the other, then the [`EXPIRY_CHECKS`] concurrently (about
/// 2 s in all).
///
/// A failing check panics with its name (`conformance check `name` failed: …`) after the
/// original assertion message, so the report says which rule of the contract was broken.
pub async fn run_all(make_backend: impl Fn() -> Arc<dyn SessionBackend>) {
    let backend = make_backend();
    let store = store_of(&backend);
    for name in SEQUENTIAL_CHECKS {
        run_named(name, &backend, &store, &make_backend).await;
    }
    futures_util::future::join_all(
        EXPIRY_CHECKS
            .iter()
            .map(|name| run_named(name, &backend, &store, &make_backend)),
    )
    .await;
}

/// Runs the one check called `name` (one of [`SEQUENTIAL_CHECKS`] or [`EXPIRY_CHECKS`]) on a
/// new multi-threaded runtime, panicking with its name if it fails. This is what
/// [`conformance_tests!`](crate::conformance_tests) calls from each test it declares; it is
/// blocking so those tests are plain `#[test]`s and the caller needs no tokio macros.
///
/// # Panics
/// When the check fails, or when no check has that name.
pub fn run_one(name: &str, make_backend: impl Fn() -> Arc<dyn SessionBackend>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a tokio runtime for the conformance check");
    runtime.block_on(async {
        let backend = make_backend();
        let store = store_of(&backend);
        run_named(name, &backend, &store, &make_backend).await;
    });
}

/// Runs the check called `name`, reporting it by name when it fails.
async fn run_named(
    name: &str,
    backend: &Arc<dyn SessionBackend>,
    store: &SessionStore,
    make_backend: &dyn Fn() -> Arc<dyn SessionBackend>,
) {
    let run = async {
        match name {
            "health_is_up" => health_is_up(store).await,
            "create_load_round_trip" => create_load_round_trip(store).await,
            "empty_session_is_never_written" => empty_session_is_never_written(store).await,
            "unknown_id_loads_as_none" => unknown_id_loads_as_none(store).await,
            "replace_only_if_present" => replace_only_if_present(store).await,
            "replace_with_empty_state_deletes" => replace_with_empty_state_deletes(store).await,
            "apply_sets_and_removes_single_keys" => apply_sets_and_removes_single_keys(store).await,
            "apply_removing_every_key_deletes" => apply_removing_every_key_deletes(store).await,
            "apply_on_absent_writes_nothing" => apply_on_absent_writes_nothing(store).await,
            "empty_changes_only_check_or_touch" => empty_changes_only_check_or_touch(store).await,
            "touch_only_if_present" => touch_only_if_present(store).await,
            "delete_reports_whether_it_existed" => delete_reports_whether_it_existed(store).await,
            "create_never_overwrites" => create_never_overwrites(backend).await,
            "concurrent_applies_lose_nothing" => concurrent_applies_lose_nothing(store).await,
            "delete_racing_applies_never_resurrects" => {
                delete_racing_applies_never_resurrects(store).await
            }
            "two_handles_see_each_other" => {
                two_handles_see_each_other(store, &store_of(&make_backend())).await
            }
            "ttl_on_create" => ttl_on_create(store).await,
            "ttl_on_replace" => ttl_on_replace(store).await,
            "ttl_on_apply" => ttl_on_apply(store).await,
            "ttl_on_touch" => ttl_on_touch(store).await,
            "ttl_on_load_and_touch" => ttl_on_load_and_touch(store).await,
            "key_expire_wins" => key_expire_wins(store).await,
            _ => panic!("no conformance check is called `{name}`"),
        }
    };
    check(name, run).await;
}

/// Declares one `#[test]` per conformance check (the names of [`SEQUENTIAL_CHECKS`] and
/// [`EXPIRY_CHECKS`]), each running [`run_one`] on backends made by the given
/// `Fn() -> Arc<dyn SessionBackend>` expression, which is evaluated once per test.
///
/// Prefer it to one test calling [`run_all`] when a backend is cheap to set up: the test
/// report then lists every rule of the contract, passed or failed, and one failure does not
/// hide the checks after it. It also declares `conformance_tests_cover_every_check`, which
/// fails if this crate grows a check the macro does not declare.
///
/// The backends it makes must share their storage (the check `two_handles_see_each_other`
/// opens two): for an in-process backend, make one per test and hand out clones of it.
///
/// ```
/// mod memory_conforms {
///     use std::sync::Arc;
///     use session_core::{backends::memory::MemoryBackend, SessionBackend};
///
///     session_core::conformance_tests!({
///         let backend: Arc<dyn SessionBackend> = Arc::new(MemoryBackend::new());
///         move || backend.clone()
///     });
/// }
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($make_backend:expr) => {
        $crate::conformance_tests!(@declare $make_backend;
            health_is_up,
            create_load_round_trip,
            empty_session_is_never_written,
            unknown_id_loads_as_none,
            replace_only_if_present,
            replace_with_empty_state_deletes,
            apply_sets_and_removes_single_keys,
            apply_removing_every_key_deletes,
            apply_on_absent_writes_nothing,
            empty_changes_only_check_or_touch,
            touch_only_if_present,
            delete_reports_whether_it_existed,
            create_never_overwrites,
            concurrent_applies_lose_nothing,
            delete_racing_applies_never_resurrects,
            two_handles_see_each_other,
            ttl_on_create,
            ttl_on_replace,
            ttl_on_apply,
            ttl_on_touch,
            ttl_on_load_and_touch,
            key_expire_wins,
        );
    };
    (@declare $make_backend:expr; $($name:ident,)*) => {
        $(
            #[test]
            fn $name() {
                $crate::testing::conformance::run_one(stringify!($name), $make_backend);
            }
        )*

        #[test]
        fn conformance_tests_cover_every_check() {
            let declared = [$(stringify!($name)),*];
            let all: ::std::vec::Vec<&str> = $crate::testing::conformance::SEQUENTIAL_CHECKS
                .iter()
                .chain($crate::testing::conformance::EXPIRY_CHECKS)
                .copied()
                .collect();
            assert_eq!(declared.as_slice(), all.as_slice());
        }
    };
}

/// Runs one check; if it panics, panics again naming the check. Why: a bare assertion
/// message (`left == right`) does not say which rule of the contract it belongs to, and a
/// third-party backend's author needs that first.
async fn check(name: &str, check: impl Future<Output = ()>) {
    if let Err(panic) = AssertUnwindSafe(check).catch_unwind().await {
        let message = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        panic!("conformance check `{name}` failed: {message}");
    }
}

/// Health reports the backend up.
pub async fn health_is_up(store: &SessionStore) {
    let health = store.health().await;
    assert!(!health.is_empty());
    for entry in health {
        assert!(
            entry.up,
            "backend {} reported down: {:?}",
            entry.name, entry.error
        );
    }
}

/// What is created loads back unchanged, values exactly as given.
pub async fn create_load_round_trip(store: &SessionStore) {
    let data = state(&[
        ("user", "\"alice\""),
        ("n", "3"),
        (
            "nested",
            "{\"a\":[1,2,{\"b\":null}],\"s\":\"é ✓ \\\"q\\\"\"}",
        ),
        ("key with spaces and ünicode", "true"),
    ]);
    let id = store.create(&data, Some(LONG)).await.unwrap();
    assert_eq!(store.load(&id).await.unwrap(), Some(data.clone()));
    assert_eq!(in_place(store, &id).await, Some(data.clone()));
    assert_eq!(store.load(&id).await.unwrap(), Some(data));
}

/// [`SessionStore::load_in_place`], as a map (and its version checked against
/// [`SessionStore::load_versioned`]'s): the conformance checks read each session both ways.
async fn in_place(store: &SessionStore, id: &SessionId) -> Option<SessionState> {
    let (loaded, version) = store.load_in_place(id).await.unwrap()?;
    let state = loaded.to_state();
    assert_eq!(state.len(), loaded.len());
    let (mapped, mapped_version) = store.load_versioned(id).await.unwrap()?;
    assert_eq!(state, mapped, "read in place and into a map differ");
    assert_eq!(version, mapped_version);
    Some(state)
}

/// An empty session gets an id but nothing is stored under it.
pub async fn empty_session_is_never_written(store: &SessionStore) {
    let id = store
        .create(&SessionState::new(), Some(LONG))
        .await
        .unwrap();
    assert_eq!(store.load(&id).await.unwrap(), None);
    assert!(!store
        .replace(&id, &state(&[("a", "1")]), None)
        .await
        .unwrap());
    assert!(!store.delete(&id).await.unwrap());
}

/// An id nothing was stored under loads as no session.
pub async fn unknown_id_loads_as_none(store: &SessionStore) {
    let id = SessionId::generate();
    assert_eq!(store.load(&id).await.unwrap(), None);
    assert_eq!(store.load_and_touch(&id, Some(LONG)).await.unwrap(), None);
    assert_eq!(store.load(&id).await.unwrap(), None);
    assert!(store.load_in_place(&id).await.unwrap().is_none());
    assert!(store
        .load_in_place_and_touch(&id, Some(LONG))
        .await
        .unwrap()
        .is_none());
}

/// Replace writes only over an existing session, and never after a delete.
pub async fn replace_only_if_present(store: &SessionStore) {
    let absent = SessionId::generate();
    assert!(!store
        .replace(&absent, &state(&[("a", "1")]), Some(LONG))
        .await
        .unwrap());
    assert_eq!(store.load(&absent).await.unwrap(), None);

    let id = store
        .create(&state(&[("a", "1"), ("b", "2")]), Some(LONG))
        .await
        .unwrap();
    let new = state(&[("c", "\"x\"")]);
    assert!(store.replace(&id, &new, Some(LONG)).await.unwrap());
    assert_eq!(store.load(&id).await.unwrap(), Some(new));

    assert!(store.delete(&id).await.unwrap());
    assert!(!store
        .replace(&id, &state(&[("d", "4")]), Some(LONG))
        .await
        .unwrap());
    assert_eq!(store.load(&id).await.unwrap(), None);
}

/// Replacing with an empty state deletes the session.
pub async fn replace_with_empty_state_deletes(store: &SessionStore) {
    let id = store
        .create(&state(&[("a", "1")]), Some(LONG))
        .await
        .unwrap();
    assert!(store
        .replace(&id, &SessionState::new(), Some(LONG))
        .await
        .unwrap());
    assert_eq!(store.load(&id).await.unwrap(), None);
    assert!(!store.delete(&id).await.unwrap());
}

/// Apply changes only the keys it names.
pub async fn apply_sets_and_removes_single_keys(store: &SessionStore) {
    let id = store
        .create(&state(&[("a", "1"), ("b", "2"), ("c", "3")]), Some(LONG))
        .await
        .unwrap();
    let mut changes = Changes::default();
    changes.set("a", "10");
    changes.set("d", "\"new\"");
    changes.remove("b");
    changes.remove("never-there");
    assert!(store.apply(&id, &changes, Some(LONG)).await.unwrap());
    assert_eq!(
        store.load(&id).await.unwrap(),
        Some(state(&[("a", "10"), ("c", "3"), ("d", "\"new\"")]))
    );
    assert!(store.apply(&id, &remove("c"), None).await.unwrap());
    assert_eq!(
        store.load(&id).await.unwrap(),
        Some(state(&[("a", "10"), ("d", "\"new\"")]))
    );
    assert_eq!(
        in_place(store, &id).await,
        Some(state(&[("a", "10"), ("d", "\"new\"")]))
    );
}

/// Apply that removes every key deletes the session.
pub async fn apply_removing_every_key_deletes(store: &SessionStore) {
    let id = store
        .create(&state(&[("a", "1"), ("b", "2")]), Some(LONG))
        .await
        .unwrap();
    let mut changes = Changes::default();
    changes.remove("a");
    changes.remove("b");
    assert!(store.apply(&id, &changes, Some(LONG)).await.unwrap());
    assert_eq!(store.load(&id).await.unwrap(), None);
    assert!(!store.delete(&id).await.unwrap());
    // Nothing to bring back either.
    assert!(!store.apply(&id, &set("a", "1"), Some(LONG)).await.unwrap());
    assert_eq!(store.load(&id).await.unwrap(), None);
}

/// Apply on an absent session returns false and writes nothing.
pub async fn apply_on_absent_writes_nothing(store: &SessionStore) {
    let id = SessionId::generate();
    assert!(!store.apply(&id, &set("a", "1"), Some(LONG)).await.unwrap());
    assert!(!store.apply(&id, &set("a", "1"), None).await.unwrap());
    assert_eq!(store.load(&id).await.unwrap(), None);
    assert!(!store.delete(&id).await.unwrap());
}

/// Empty changes report whether the session exists (and touch it when a TTL applies).
pub async fn empty_changes_only_check_or_touch(store: &SessionStore) {
    let empty = Changes::default();
    let absent = SessionId::generate();
    assert!(!store.apply(&absent, &empty, None).await.unwrap());
    assert!(!store.apply(&absent, &empty, Some(LONG)).await.unwrap());
    assert_eq!(store.load(&absent).await.unwrap(), None);

    let data = state(&[("a", "1")]);
    let id = store.create(&data, Some(LONG)).await.unwrap();
    assert!(store.apply(&id, &empty, None).await.unwrap());
    assert!(store.apply(&id, &empty, Some(LONG)).await.unwrap());
    assert_eq!(store.load(&id).await.unwrap(), Some(data));
}

/// Touch resets the expiry of existing sessions only.
pub async fn touch_only_if_present(store: &SessionStore) {
    let absent = SessionId::generate();
    assert!(!store.touch(&absent, Some(LONG)).await.unwrap());
    assert!(!store.touch(&absent, None).await.unwrap());
    assert_eq!(store.load(&absent).await.unwrap(), None);

    let data = state(&[("a", "1")]);
    let id = store.create(&data, Some(LONG)).await.unwrap();
    assert!(store.touch(&id, Some(LONG)).await.unwrap());
    assert!(store.touch(&id, None).await.unwrap());
    assert_eq!(store.load(&id).await.unwrap(), Some(data));
    assert!(store.delete(&id).await.unwrap());
    assert!(!store.touch(&id, Some(LONG)).await.unwrap());
    assert_eq!(store.load(&id).await.unwrap(), None);
}

/// Delete says whether there was something to delete.
pub async fn delete_reports_whether_it_existed(store: &SessionStore) {
    assert!(!store.delete(&SessionId::generate()).await.unwrap());
    let id = store.create(&state(&[("a", "1")]), None).await.unwrap();
    assert!(store.delete(&id).await.unwrap());
    assert!(!store.delete(&id).await.unwrap());
    assert_eq!(store.load(&id).await.unwrap(), None);
}

/// The backend's `create` refuses a taken id and leaves its session alone.
pub async fn create_never_overwrites(backend: &Arc<dyn SessionBackend>) {
    let id = SessionId::generate();
    let first = state(&[("owner", "\"first\"")]);
    assert!(backend.create(&id, &first, Some(LONG)).await.unwrap());
    assert!(!backend
        .create(&id, &state(&[("owner", "\"second\"")]), Some(LONG))
        .await
        .unwrap());
    assert!(!backend
        .create(&id, &state(&[("x", "1")]), None)
        .await
        .unwrap());
    assert_eq!(backend.load(&id, None).await.unwrap(), Some(first));
    // Once deleted, the id is free again.
    assert!(backend.delete(&id).await.unwrap());
    let second = state(&[("owner", "\"second\"")]);
    assert!(backend.create(&id, &second, Some(LONG)).await.unwrap());
    assert_eq!(backend.load(&id, None).await.unwrap(), Some(second));
}

/// 100 concurrent requests changing different keys of one session lose nothing.
pub async fn concurrent_applies_lose_nothing(store: &SessionStore) {
    let id = store
        .create(&state(&[("base", "0")]), Some(LONG))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let (store, id) = (store.clone(), id.clone());
            tokio::spawn(async move {
                let mut changes = Changes::default();
                changes.set(format!("k{i}"), i.to_string());
                if i % 10 == 0 {
                    // Sliding-expiry writes interleaved with the applies must not lose keys.
                    assert!(store.touch(&id, Some(LONG)).await.unwrap());
                }
                store.apply(&id, &changes, Some(LONG)).await.unwrap()
            })
        })
        .collect();
    for task in tasks {
        assert!(
            task.await.unwrap(),
            "apply on a live session returned false"
        );
    }
    let loaded = store.load(&id).await.unwrap().expect("session vanished");
    assert_eq!(loaded.len(), 101, "lost updates: {} keys", loaded.len());
    for i in 0..100 {
        assert_eq!(loaded.get(&format!("k{i}")), Some(&i.to_string()));
    }
}

/// A delete (logout) racing with applies sticks: no apply brings the session back.
pub async fn delete_racing_applies_never_resurrects(store: &SessionStore) {
    for _round in 0..5 {
        let id = store
            .create(&state(&[("user", "\"alice\"")]), Some(LONG))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..40 {
            let (task_store, task_id) = (store.clone(), id.clone());
            tasks.push(tokio::spawn(async move {
                let (store, id) = (task_store, task_id);
                store
                    .apply(&id, &set(&format!("k{i}"), "1"), Some(LONG))
                    .await
                    .unwrap();
                store
                    .replace(&id, &state(&[("r", "1")]), Some(LONG))
                    .await
                    .unwrap();
                store.touch(&id, Some(LONG)).await.unwrap();
                store.load_and_touch(&id, Some(LONG)).await.unwrap();
            }));
            if i == 20 {
                assert!(store.delete(&id).await.unwrap());
            }
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(
            store.load(&id).await.unwrap(),
            None,
            "deleted session came back"
        );
        assert!(!store.delete(&id).await.unwrap());
    }
}

/// Two handles on the same storage see each other's writes.
pub async fn two_handles_see_each_other(a: &SessionStore, b: &SessionStore) {
    let id = a.create(&state(&[("a", "1")]), Some(LONG)).await.unwrap();
    assert!(b.apply(&id, &set("b", "2"), Some(LONG)).await.unwrap());
    assert_eq!(
        a.load(&id).await.unwrap(),
        Some(state(&[("a", "1"), ("b", "2")]))
    );
    assert!(a.delete(&id).await.unwrap());
    assert_eq!(b.load(&id).await.unwrap(), None);
    assert!(!b.apply(&id, &set("c", "3"), Some(LONG)).await.unwrap());
}

/// A session created with a TTL is gone afterwards, for every operation.
pub async fn ttl_on_create(store: &SessionStore) {
    let start = Instant::now();
    let data = state(&[("a", "1")]);
    let short = store.create(&data, Some(TTL)).await.unwrap();
    let forever = store.create(&data, None).await.unwrap();
    assert_eq!(store.load(&short).await.unwrap(), Some(data.clone()));
    sleep_until(start, GONE_AT).await;
    assert_eq!(store.load(&short).await.unwrap(), None);
    assert_eq!(
        store.load_and_touch(&short, Some(LONG)).await.unwrap(),
        None
    );
    assert!(!store.replace(&short, &data, Some(LONG)).await.unwrap());
    assert!(!store
        .apply(&short, &set("b", "2"), Some(LONG))
        .await
        .unwrap());
    assert!(!store.touch(&short, Some(LONG)).await.unwrap());
    assert!(!store.delete(&short).await.unwrap());
    assert_eq!(store.load(&short).await.unwrap(), None);
    assert_eq!(store.load(&forever).await.unwrap(), Some(data));
}

/// Replace sets the expiry it is given, and `None` removes it.
pub async fn ttl_on_replace(store: &SessionStore) {
    let data = state(&[("a", "1")]);
    let shortened = store.create(&data, None).await.unwrap();
    assert!(store.replace(&shortened, &data, Some(TTL)).await.unwrap());
    // "Gone" counts from the write that set the TTL: on a slow disk (the file store fsyncs)
    // the writes before it can take a good part of the margin.
    let shortened_at = Instant::now();
    let lengthened = store.create(&data, Some(TTL)).await.unwrap();
    assert!(store.replace(&lengthened, &data, None).await.unwrap());
    sleep_until(shortened_at, GONE_AT).await;
    assert_eq!(store.load(&shortened).await.unwrap(), None);
    assert_eq!(store.load(&lengthened).await.unwrap(), Some(data));
}

/// Apply with a TTL resets the expiry; apply without one keeps it.
pub async fn ttl_on_apply(store: &SessionStore) {
    let start = Instant::now();
    let data = state(&[("a", "1")]);
    let kept = store.create(&data, Some(TTL)).await.unwrap();
    assert!(store.apply(&kept, &set("b", "2"), None).await.unwrap());
    let extended = store.create(&data, Some(TTL)).await.unwrap();
    assert!(store
        .apply(&extended, &set("b", "2"), Some(LONG))
        .await
        .unwrap());
    sleep_until(start, GONE_AT).await;
    assert_eq!(store.load(&kept).await.unwrap(), None);
    assert_eq!(
        store.load(&extended).await.unwrap(),
        Some(state(&[("a", "1"), ("b", "2")]))
    );
}

/// Touch resets the expiry (`None` removes it).
pub async fn ttl_on_touch(store: &SessionStore) {
    let start = Instant::now();
    let data = state(&[("a", "1")]);
    let extended = store.create(&data, Some(TTL)).await.unwrap();
    let persisted = store.create(&data, Some(TTL)).await.unwrap();
    assert!(store.touch(&persisted, None).await.unwrap());
    let shortened = store.create(&data, None).await.unwrap();
    assert!(store.touch(&shortened, Some(TTL)).await.unwrap());
    // "Gone" counts from the touch that set the TTL (see `ttl_on_replace`).
    let shortened_at = Instant::now();
    sleep_until(start, Duration::from_millis(500)).await;
    assert!(store.touch(&extended, Some(LONG)).await.unwrap());
    sleep_until(shortened_at, GONE_AT).await;
    assert_eq!(store.load(&extended).await.unwrap(), Some(data.clone()));
    assert_eq!(store.load(&persisted).await.unwrap(), Some(data));
    assert_eq!(store.load(&shortened).await.unwrap(), None);
}

/// load_and_touch slides the expiry; a plain load does not.
pub async fn ttl_on_load_and_touch(store: &SessionStore) {
    let start = Instant::now();
    let data = state(&[("a", "1")]);
    let slid = store.create(&data, Some(TTL)).await.unwrap();
    let read_only = store.create(&data, Some(TTL)).await.unwrap();
    sleep_until(start, Duration::from_millis(500)).await;
    assert_eq!(
        store
            .load_and_touch(&slid, Some(Duration::from_secs(2)))
            .await
            .unwrap(),
        Some(data.clone())
    );
    assert_eq!(store.load(&read_only).await.unwrap(), Some(data.clone()));
    sleep_until(start, GONE_AT).await;
    assert_eq!(store.load(&slid).await.unwrap(), Some(data));
    assert_eq!(store.load(&read_only).await.unwrap(), None);
}

/// `with_key_expire` overrides the framework's TTL on every write and touch.
pub async fn key_expire_wins(store: &SessionStore) {
    let forced = store.clone().with_key_expire(Some(TTL));
    assert_eq!(forced.effective_ttl(Some(LONG)), Some(TTL));
    assert_eq!(forced.effective_ttl(None), Some(TTL));
    let data = state(&[("a", "1")]);
    let created_long = forced.create(&data, Some(LONG)).await.unwrap();
    let created_none = forced.create(&data, None).await.unwrap();
    let touched = store.create(&data, None).await.unwrap();
    assert!(forced.touch(&touched, Some(LONG)).await.unwrap());
    let applied = store.create(&data, None).await.unwrap();
    assert!(forced.apply(&applied, &set("b", "2"), None).await.unwrap());
    let replaced = store.create(&data, None).await.unwrap();
    assert!(forced.replace(&replaced, &data, Some(LONG)).await.unwrap());
    // "Gone" counts from the last write that set the TTL (see `ttl_on_replace`).
    sleep_until(Instant::now(), GONE_AT).await;
    for id in [&created_long, &created_none, &touched, &applied, &replaced] {
        assert_eq!(store.load(id).await.unwrap(), None);
    }
}

/// Checks that a session whose stored data was corrupted (by the caller, under `id`) reads as
/// a typed [`StoreError::Corrupt`](crate::StoreError::Corrupt) whose message does not leak the id, and that delete removes
/// it.
pub async fn corrupt_session_is_reported(store: &SessionStore, id: &SessionId) {
    let in_place = [
        store.load_in_place(id).await.map(|_| None),
        store
            .load_in_place_and_touch(id, Some(LONG))
            .await
            .map(|_| None),
    ];
    for result in [
        store.load(id).await,
        store.load_and_touch(id, Some(LONG)).await,
    ]
    .into_iter()
    .chain(in_place)
    {
        let err = result.expect_err("corrupt session loaded without error");
        assert!(err.is_corrupt(), "expected Corrupt, got {err:?}");
        let message = err.to_string();
        assert!(
            !message.contains(id.as_str()),
            "error message leaks the id: {message}"
        );
    }
    assert!(store.delete(id).await.unwrap());
    assert_eq!(store.load(id).await.unwrap(), None);
}

/// [`SessionBackend::retire_many`] with moved markers: a session retires `Now`; the same
/// move's marker answers `Before` (its retire sent again), another move's `Other` with
/// that move's token (every bit of it), no session `Absent`; a marker is no session to a
/// load or a touch; a delete (a logout) removes it, and a create (a move back) writes over
/// it. A logout's retire (the token `0`) also takes the place of another move's marker.
pub async fn moved_markers(backend: &Arc<dyn SessionBackend>) {
    let b = backend.as_ref();
    let data = state(&[("user", "\"alice\"")]);
    let (mine, theirs) = (0xfedc_ba98_7654_3210, 2);
    let retire = |ids: Vec<SessionId>, token: u64| async move {
        let moves: Vec<(SessionId, u64)> = ids.into_iter().map(|id| (id, token)).collect();
        b.retire_many(&moves)
            .await
            .into_iter()
            .map(|answer| answer.expect("retire"))
            .collect::<Vec<_>>()
    };
    let (moved, logged_out, never) = (
        SessionId::generate(),
        SessionId::generate(),
        SessionId::generate(),
    );
    for id in [&moved, &logged_out] {
        assert!(b.create(id, &data, Some(LONG)).await.unwrap());
    }
    let ids = vec![moved.clone(), logged_out.clone(), never.clone()];
    assert_eq!(
        retire(ids.clone(), mine).await,
        [Retired::Now, Retired::Now, Retired::Absent]
    );
    assert_eq!(
        retire(ids.clone(), mine).await,
        [Retired::Before, Retired::Before, Retired::Absent],
        "the same retire sent again finds its own marker"
    );
    assert_eq!(
        retire(ids.clone(), theirs).await,
        [Retired::Other(mine), Retired::Other(mine), Retired::Absent],
        "another move's marker is not this move's"
    );
    assert_eq!(
        retire(ids, mine).await,
        [Retired::Before, Retired::Before, Retired::Absent],
        "and leaves it as it was"
    );
    assert_eq!(
        b.load(&moved, None).await.unwrap(),
        None,
        "a marker is no session"
    );
    assert_eq!(b.load_with_ttl(&moved).await.unwrap(), None);
    assert!(!b.touch(&moved, Some(LONG)).await.unwrap());
    b.delete(&logged_out).await.unwrap();
    assert_eq!(
        retire(vec![logged_out], mine).await,
        [Retired::Absent],
        "a logout removes the marker"
    );
    assert!(
        b.create(&moved, &data, Some(LONG)).await.unwrap(),
        "a create writes over a marker"
    );
    assert_eq!(b.load(&moved, None).await.unwrap(), Some(data.clone()));
    assert_eq!(retire(vec![moved.clone()], mine).await, [Retired::Now]);
    b.delete(&moved).await.unwrap();

    // A logout's retire (`backend::LOGGED_OUT_TOKEN`, `backends::multi`, "A logout during
    // a move"): as a move's, and it takes the place of another move's marker, answering
    // that move's token; a second logout's finds it.
    let logout = crate::backend::LOGGED_OUT_TOKEN;
    let (session, marked, never) = (
        SessionId::generate(),
        SessionId::generate(),
        SessionId::generate(),
    );
    for id in [&session, &marked] {
        assert!(b.create(id, &data, Some(LONG)).await.unwrap());
    }
    assert_eq!(retire(vec![marked.clone()], mine).await, [Retired::Now]);
    let ids = vec![session.clone(), marked.clone(), never.clone()];
    assert_eq!(
        retire(ids.clone(), logout).await,
        [Retired::Now, Retired::Other(mine), Retired::Absent],
        "a logout's retire"
    );
    assert_eq!(
        retire(ids.clone(), logout).await,
        [Retired::Before, Retired::Before, Retired::Absent],
        "a second logout's retire finds the first one's marker, also where a move's was"
    );
    assert_eq!(
        retire(ids, mine).await,
        [
            Retired::Other(logout),
            Retired::Other(logout),
            Retired::Absent
        ],
        "a move finds the logout's marker"
    );
    for id in [&session, &marked] {
        assert_eq!(
            b.load(id, None).await.unwrap(),
            None,
            "a logout's marker is no session"
        );
        b.delete(id).await.unwrap();
    }
}
