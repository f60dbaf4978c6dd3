//! Helpers shared by the integration tests of the moves between backends.

use std::sync::Arc;

use session_core::{backends::multi::MultiBackend, BackendMode, SessionBackend, TtlRule};

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
