//! The large replies at the top of each thread's heap, held so that glibc keeps its heap.
//!
//! redis-rs hands every `GET` reply over in a `Vec` of its own, allocated for it. With glibc's
//! allocator, freeing a large one can leave enough free memory at the top of the heap to pass
//! its trim threshold: glibc gives those pages back to the kernel, and the next large reply
//! takes them again, faulting in (and the kernel zeroing) every page it touches. In a profile
//! of the 20 KB read (docs/benchmarks.md, the eighth round), the page faults under redis-rs'
//! copy of the reply were 10% of the server's CPU and the trim another 2%; with the trim turned
//! off (`GLIBC_TUNABLES=glibc.malloc.trim_threshold=...`) our read of a 20 KB session cost
//! tower-sessions' server CPU instead of a fifth more.
//!
//! Until the twelfth round the thread held its last large reply until the next one arrived,
//! so that the reply freed was usually the one before, no longer next to the top. That
//! stopped working when the axum layer began reading replies in place (`LoadedState`), each
//! kept until its request ends: at 128 connections a burst of replies is freed together, and
//! the heap was trimmed and grown again burst after burst (1.2 page faults per 20 KB read,
//! about 5% of the server's samples in the fault handler, and the 20 KB read a fifth dearer),
//! in some runs at 32 connections too. So a thread now holds the two large replies at the
//! highest addresses it has seen, and frees any other: what is freed then usually lies below
//! a held chunk, and does not join the free space at the top of the heap. Usually: with
//! several threads, a reply may have been allocated in another thread's heap (glibc gives
//! each thread its own), whose top the replies held here do not pin.
//! Measured with the in-place reads: 24-64 faults per CPU second of the server, against
//! 4,000-55,000 with the last reply held (docs/benchmarks.md, the twelfth round). A heuristic
//! about glibc's behaviour, not a guarantee.
//!
//! What it costs: the memory of two replies per thread that loads sessions (each of at most
//! [`HELD_MAX`]; held until replies at higher addresses replace them, or the thread ends), and
//! the heap below them stays the process's, as glibc keeps freed memory anywhere but at the
//! top: the heap stays as large as the largest burst of large replies made it. The held bytes
//! are a session's, which stay in the process's memory as freed memory does until reused;
//! nothing reads them. Only on Linux with glibc (`target_env = "gnu"`): elsewhere (musl,
//! other systems) replies are freed at once. Replies under 4 KB are freed at once too: holding them
//! from 1 KB changed nothing measurable on a 2 KB read.

use std::cell::RefCell;

/// Replies smaller than this are freed at once.
const HELD_MIN: usize = 4 * 1024;

/// Replies larger than this are freed at once: below glibc's default threshold for serving an
/// allocation with its own `mmap` (128 KB), so a held reply is a chunk of the heap, whose
/// address says where in the heap it sits.
const HELD_MAX: usize = 64 * 1024;

/// How many replies a thread holds: those at the highest addresses it has seen.
const HELD_REPLIES: usize = 2;

thread_local! {
    static HELD: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// Done with `reply`: held when it is large, and of the held replies and it, the one at the
/// lowest address is freed when there are more than [`HELD_REPLIES`]; freed at once otherwise.
pub(crate) fn release(reply: Vec<u8>) {
    if cfg!(all(target_os = "linux", target_env = "gnu"))
        && (HELD_MIN..=HELD_MAX).contains(&reply.capacity())
    {
        // `try_with`: a thread being torn down has no slot left; the reply is freed instead.
        let _ = HELD.try_with(|held| {
            let mut held = held.borrow_mut();
            held.push(reply);
            if held.len() > HELD_REPLIES {
                let lowest = (0..held.len())
                    .min_by_key(|&i| held[i].as_ptr() as usize)
                    .expect("more than two are held");
                let freed = held.swap_remove(lowest);
                // Freed once the slot is let go of: `free` runs no code of ours, but keeps
                // the borrow short all the same.
                drop(held);
                drop(freed);
            }
        });
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    /// The addresses of the held replies, lowest first.
    fn held() -> Vec<usize> {
        let mut at: Vec<usize> = HELD.with(|held| {
            held.borrow()
                .iter()
                .map(|reply| reply.as_ptr() as usize)
                .collect()
        });
        at.sort_unstable();
        at
    }

    #[test]
    fn holds_the_two_large_replies_at_the_highest_addresses() {
        release(vec![1; 100]);
        release(vec![1; HELD_MAX + 1]);
        assert!(
            held().is_empty(),
            "small and too large replies are freed at once"
        );
        let mut replies: Vec<Vec<u8>> = (0..5).map(|i| vec![i; 8_000 + usize::from(i)]).collect();
        let mut at: Vec<usize> = replies.iter().map(|r| r.as_ptr() as usize).collect();
        at.sort_unstable();
        // Highest address first: the two held at the end are the first two released, which
        // "the last two" would have freed.
        replies.sort_unstable_by_key(|r| std::cmp::Reverse(r.as_ptr() as usize));
        for reply in replies {
            release(reply);
            assert!(held().len() <= HELD_REPLIES);
        }
        assert_eq!(held(), at[3..]);
    }
}
