//! Picking free loopback ports.

use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::net::{Ipv4Addr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// Ports held by live servers of this process; a killed server keeps its port here
/// until it is dropped so that no other test takes it before the restart.
static RESERVED: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

const LOWEST: u16 = 10_000;

/// A free loopback port, reserved for this process until [`release`].
pub(crate) fn reserve_free_port() -> u16 {
    let (low, high) = candidate_range();
    for _ in 0..200 {
        let port = if high > low {
            low + (random() % u64::from(high - low)) as u16
        } else {
            0
        };
        let Ok(listener) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)) else {
            continue;
        };
        let Ok(port) = listener.local_addr().map(|a| a.port()) else {
            continue;
        };
        // The listener closes here; redis-server binds the port right after. The
        // window is tiny and a lost race is retried by the caller.
        drop(listener);
        if with_reserved(|set| set.insert(port)) {
            return port;
        }
    }
    panic!("session-testkit: found no free port on 127.0.0.1 after 200 tries");
}

/// Gives the port back to the pool.
pub(crate) fn release(port: u16) {
    with_reserved(|set| set.remove(&port));
}

fn with_reserved<R>(f: impl FnOnce(&mut HashSet<u16>) -> R) -> R {
    // A panic while holding the lock cannot leave the set inconsistent.
    let mut guard = RESERVED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    f(guard.get_or_insert_with(HashSet::new))
}

/// `[LOWEST, start of the ephemeral range)`, or an empty range (meaning "ask the
/// kernel") when the ephemeral range starts too low to leave room.
fn candidate_range() -> (u16, u16) {
    static RANGE: OnceLock<(u16, u16)> = OnceLock::new();
    *RANGE.get_or_init(|| {
        let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|text| text.split_whitespace().next()?.parse::<u16>().ok())
            .unwrap_or(32_768);
        if ephemeral_low > LOWEST + 1_000 {
            (LOWEST, ephemeral_low)
        } else {
            (0, 0)
        }
    })
}

fn random() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // RandomState is seeded randomly per process; the counter varies it per call.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    hasher.finish()
}
