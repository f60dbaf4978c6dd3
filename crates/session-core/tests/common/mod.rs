//! Helpers shared by the integration tests of the moves between backends.

// Each test file that includes this module uses some of its helpers, not all.
#![allow(dead_code)]

use std::sync::Arc;

use session_core::{
    backends::multi::MultiBackend, testing::probe::Pause, BackendMode, SessionBackend, SessionId,
    SessionState, StoreError, TtlRule,
};
use tokio::task::JoinHandle;

/// One process of a switch: `new` (`read`, `write`) then `old` (`read`, `delete`), the new
/// store listed first.
pub fn new_first(new: Arc<dyn SessionBackend>, old: Arc<dyn SessionBackend>) -> MultiBackend {
    MultiBackend::new(
        vec![
            (
                "new".into(),
                vec![BackendMode::Read, BackendMode::Write],
                new,
            ),
            (
                "old".into(),
                vec![BackendMode::Read, BackendMode::Delete],
                old,
            ),
        ],
        TtlRule::default(),
    )
}

/// The same process with the old store listed first (`read`, `delete`), then `new` with
/// `new_modes`: a load finds a session in the old store before it looks in the new one.
pub fn old_first(
    old: Arc<dyn SessionBackend>,
    new: Arc<dyn SessionBackend>,
    new_modes: Vec<BackendMode>,
) -> MultiBackend {
    MultiBackend::new(
        vec![
            (
                "old".into(),
                vec![BackendMode::Read, BackendMode::Delete],
                old,
            ),
            ("new".into(), new_modes, new),
        ],
        TtlRule::default(),
    )
}

/// A load of `id` through `process` in a task of its own (one request of that process),
/// returned once it is held at `held` (a pause of one of its backends' calls): race tests
/// place the other processes' steps while it waits there. (A clone of a multi-backend is
/// the same process: it shares the backends and the per-id locks.)
pub async fn load_held_at(
    process: &MultiBackend,
    id: &SessionId,
    held: &Pause,
) -> JoinHandle<Result<Option<SessionState>, StoreError>> {
    let loading = tokio::spawn({
        let (process, id) = (process.clone(), id.clone());
        async move { process.load(&id, None).await }
    });
    held.reached().await;
    loading
}

/// Releases the create held at `create`, lets it run on the server and loses its reply
/// (`proxy`); returns once it ran. The client's send of it again waits until the returned
/// sender is used.
pub async fn lose_the_reply(
    proxy: &session_testkit::Proxy,
    create: &session_core::testing::probe::Pause,
) -> std::sync::mpsc::Sender<()> {
    let (ran, ran_seen) = std::sync::mpsc::channel::<()>();
    let (go_on, going_on) = std::sync::mpsc::channel::<()>();
    proxy.lose_next_reply(move || {
        ran.send(()).unwrap();
        going_on.recv().unwrap();
    });
    create.release();
    tokio::task::spawn_blocking(move || ran_seen.recv().unwrap())
        .await
        .unwrap();
    go_on
}

/// `process`'s load of `id` moves it from `old` into the new store, whose creates go
/// through `creates` (a probe) and `proxy`; the create runs and its reply is lost, and the
/// user logs out through `new` (a process configured with the new store alone, which finds
/// the copy) before the client could send the create again. The logout must stick: the lost
/// reply fails the move, nothing is back in the new store, and the old store keeps `state`
/// as it was.
pub async fn a_logout_while_a_creates_reply_is_lost_sticks(
    process: &MultiBackend,
    creates: &session_core::testing::probe::ProbeBackend,
    proxy: &session_testkit::Proxy,
    new: &dyn SessionBackend,
    old: &dyn SessionBackend,
    id: &SessionId,
    state: &SessionState,
) {
    let create = creates.pause(session_core::testing::probe::Op::Create);
    let moving = load_held_at(process, id, &create).await;
    let go_on = lose_the_reply(proxy, &create).await;
    assert!(new.delete(id).await.unwrap());
    go_on.send(()).unwrap();
    let moved = moving.await.unwrap();
    assert!(moved.is_err(), "the lost reply fails the move: {moved:?}");
    assert_eq!(
        new.load(id, None).await.unwrap(),
        None,
        "the session is back after its logout"
    );
    assert_eq!(old.load(id, None).await.unwrap().as_ref(), Some(state));
}

/// Checks that every key under `pattern` on `server` is a marker where sessions moved from
/// or were logged out from (`backends::multi`, "Moving a session" and "A logout during a
/// move"): `,"~moved":"` and 16 hex digits and `"`, no session to any reader, gone within
/// [`session_core::MOVED_MARKER_TTL`]. A logout leaves its own marker there (token 0), and
/// a move's marker found there stays to its end.
pub fn only_markers(server: &session_testkit::RedisServer, pattern: &str) {
    let most = i64::try_from(session_core::MOVED_MARKER_TTL.as_millis()).unwrap();
    for key in server.cmd::<Vec<String>>(&["KEYS", pattern]) {
        let value: String = server.cmd(&["GET", &key]);
        let token = value
            .strip_prefix(",\"~moved\":\"")
            .and_then(|rest| rest.strip_suffix('"'));
        assert!(
            token.is_some_and(|t| t.len() == 16 && t.bytes().all(|b| b.is_ascii_hexdigit())),
            "{key} holds {value:?}, not a marker"
        );
        let left: i64 = server.cmd(&["PTTL", &key]);
        assert!(left > 0 && left <= most, "{key}: {left} ms left");
    }
}
