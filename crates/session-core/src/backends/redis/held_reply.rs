//! The last large reply of each thread, held until the next one replaces it.
//!
//! redis-rs hands every `GET` reply over in a `Vec` of its own, allocated for it. With glibc's
//! allocator, freeing a large one right after the load can leave enough free memory at the top
//! of the heap to pass its trim threshold: glibc gives those pages back to the kernel, and the
//! next large reply takes them again, faulting in (and the kernel zeroing) every page it
//! touches. In a profile of the 20 KB read (docs/benchmarks.md, the eighth round), the page
//! faults under redis-rs' copy of the reply were 10% of the server's CPU and the trim another
//! 2%; with the trim turned off (`GLIBC_TUNABLES=glibc.malloc.trim_threshold=...`) our read of a
//! 20 KB session cost tower-sessions' server CPU instead of a fifth more. Holding the last
//! large reply until the next one arrives got the same without touching the allocator's
//! settings, which are the application's: the reply freed is then usually the one before, no
//! longer next to the top, and its chunk serves the next reply of that size. A heuristic about
//! glibc's behaviour, not a guarantee, so it was measured: faults 0.6% of the same profile
//! after, trims 0.3%. At 128 connections it gains little (a poll of the connection parses many
//! replies at once, and only one is held).
//!
//! What it costs: the memory of one reply, the last large one, per thread that loads sessions
//! (at most [`HELD_MAX`]; a thread keeps it until a later large reply replaces it or the thread
//! ends). Its bytes are a session's, which stay in the process's memory as freed memory does
//! until reused; nothing reads them. Only where glibc is the C library (`target_env = "gnu"`):
//! elsewhere (musl) replies are freed at once. Replies under 4 KB are freed at once too:
//! holding them from 1 KB changed nothing measurable on a 2 KB read.

use std::cell::Cell;

/// Replies smaller than this are freed at once.
const HELD_MIN: usize = 4 * 1024;

/// Replies larger than this are freed at once: holding one would keep too much per thread.
const HELD_MAX: usize = 1024 * 1024;

thread_local! {
    static HELD: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Done with `reply`: held when it is large (dropping the one held before), freed otherwise.
pub(crate) fn release(reply: Vec<u8>) {
    if cfg!(target_env = "gnu") && (HELD_MIN..=HELD_MAX).contains(&reply.capacity()) {
        // `try_with`: a thread being torn down has no slot left; the reply is freed instead.
        let _ = HELD.try_with(|held| drop(held.replace(reply)));
    }
}

#[cfg(all(test, target_env = "gnu"))]
mod tests {
    use super::*;

    fn held_len() -> usize {
        HELD.with(|held| {
            let reply = held.take();
            let len = reply.len();
            held.set(reply);
            len
        })
    }

    #[test]
    fn holds_only_the_last_large_reply() {
        release(vec![1; 100]);
        assert_eq!(held_len(), 0);
        release(vec![1; 20_000]);
        assert_eq!(held_len(), 20_000);
        release(vec![1; 8_000]);
        assert_eq!(held_len(), 8_000);
        release(vec![1; HELD_MAX + 1]);
        assert_eq!(held_len(), 8_000);
    }
}
