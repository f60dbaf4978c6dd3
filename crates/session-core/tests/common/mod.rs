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
