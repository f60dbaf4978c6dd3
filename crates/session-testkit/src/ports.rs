//! Picking free loopback ports.
//!
//! A port is reserved twice over: in this process (a set), and across processes by an
//! exclusive `flock` on a file named after it in a shared folder. The bind probe alone only
//! says that nothing listens right now: a server a test has killed, to restart it on the
//! same port, leaves its port free to bind, and a test process running beside this one (a
//! second `cargo test`, another checkout's suite) could start a server there, which this
//! process's clients would then reach instead of a refused connection. The lock goes away
//! with the process that held it, however it ends. The lock files stay (empty, one per port
//! ever used, at most the range's 22,000 or so): removing one while another process opens it
//! would let two processes lock two different files of one port.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::net::{Ipv4Addr, TcpListener};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// Ports held by live servers of this process, each with its lock file (`None` when the
/// lock folder cannot be used: the process-local reservation still holds); a killed server
/// keeps its port here until it is dropped so that no other test takes it before the
/// restart.
static RESERVED: Mutex<Option<HashMap<u16, Option<File>>>> = Mutex::new(None);

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
        if port != 0 {
            if try_reserve(port) {
                return port;
            }
            continue;
        }
        // No range of our own: the kernel picks, and only then can the port be locked.
        let Ok(listener) = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)) else {
            continue;
        };
        let Ok(port) = listener.local_addr().map(|a| a.port()) else {
            continue;
        };
        drop(listener);
        if try_reserve(port) {
            return port;
        }
    }
    panic!("session-testkit: found no free port on 127.0.0.1 after 200 tries");
}

/// Reserves `port` when no process holds it and nothing listens on it.
fn try_reserve(port: u16) -> bool {
    with_reserved(|set| {
        if set.contains_key(&port) {
            return false;
        }
        let lock = match lock_file(port) {
            Locked::Held(file) => Some(file),
            Locked::ByAnother => return false,
            Locked::Unavailable => None,
        };
        // The listener closes here; redis-server binds the port right after. The window is
        // tiny and a lost race is retried by the caller; the lock keeps other test
        // processes out of it.
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_err() {
            return false;
        }
        set.insert(port, lock);
        true
    })
}

/// Gives the port back to the pool (and its lock to other processes).
pub(crate) fn release(port: u16) {
    with_reserved(|set| set.remove(&port));
}

fn with_reserved<R>(f: impl FnOnce(&mut HashMap<u16, Option<File>>) -> R) -> R {
    // A panic while holding the lock cannot leave the set inconsistent.
    let mut guard = RESERVED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    f(guard.get_or_insert_with(HashMap::new))
}

enum Locked {
    Held(File),
    ByAnother,
    /// The folder or file cannot be made (a read-only temporary folder): no lock.
    Unavailable,
}

/// The shared folder of the port locks.
fn lock_dir() -> PathBuf {
    std::env::temp_dir().join("session-testkit-ports")
}

/// Takes the exclusive lock of `port` without waiting.
fn lock_file(port: u16) -> Locked {
    let dir = lock_dir();
    let _ = std::fs::create_dir_all(&dir);
    let Ok(file) = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(port.to_string()))
    else {
        return Locked::Unavailable;
    };
    // SAFETY: `flock` on a file descriptor this function owns; no memory is passed.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        Locked::Held(file)
    } else if std::io::Error::last_os_error().raw_os_error() == Some(libc::EWOULDBLOCK) {
        Locked::ByAnother
    } else {
        Locked::Unavailable
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Another process's lock, as far as `flock` can tell: a second open of the file (locks
    /// belong to an open file, not to a process).
    fn lock_as_another(port: u16) -> Option<File> {
        match lock_file(port) {
            Locked::Held(file) => Some(file),
            _ => None,
        }
    }

    #[test]
    fn a_port_locked_by_another_process_is_not_reserved() {
        let port = reserve_free_port();
        // Held by this process: nobody else gets its lock.
        assert!(lock_as_another(port).is_none());
        release(port);
        let other = lock_as_another(port).expect("free once released");
        assert!(!try_reserve(port), "locked elsewhere");
        drop(other);
        assert!(try_reserve(port));
        release(port);
    }
}
