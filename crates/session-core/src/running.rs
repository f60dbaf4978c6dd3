//! Background tasks that run on the runtime of the operation that first needs them (the file
//! store's sweeper, the Sentinel failover watchers), counted so that they start again after
//! that runtime is gone.
//!
//! Why: a store outlives runtimes (a start-up check in a runtime of its own, an actix-web
//! worker, with its own runtime, restarted after a panic). A runtime that shuts down drops
//! its tasks unfinished, so a task started once for good could stop for good too, silently:
//! expired files never swept, failovers noticed only when a request met the demoted master.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

/// How many of a group of background tasks are alive. Each task holds a [`Alive`] guard,
/// which counts it out when the task ends or is dropped unfinished. Clones share the count
/// (a cloned store shares its tasks).
#[derive(Debug, Default, Clone)]
pub(crate) struct Running(Arc<AtomicUsize>);

impl Running {
    /// Whether none of the tasks is alive (never started, or all gone): one atomic load,
    /// cheap enough for every operation to ask.
    pub(crate) fn none(&self) -> bool {
        self.0.load(Ordering::Acquire) == 0
    }

    /// Counts `n` tasks in when none is alive, for the caller to spawn them, each with a
    /// [`guard`](Self::guard); false when some are alive (another caller started them).
    pub(crate) fn start(&self, n: usize) -> bool {
        self.0
            .compare_exchange(0, n, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// The guard one started task holds for as long as it runs.
    pub(crate) fn guard(&self) -> Alive {
        Alive(Arc::clone(&self.0))
    }
}

/// Held by a running task: counts it out of its [`Running`] when dropped (the task ended,
/// or its runtime shut down and dropped it).
pub(crate) struct Alive(Arc<AtomicUsize>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
