//! The recursion guard: while a thread is inside the tracker (or inside a real
//! allocator called by a hook), its allocations are not recorded.
//!
//! The flag lives in a pthread key, not in Rust's thread-local storage: when
//! the library is loaded late (`memray.Tracker`), its thread-locals are
//! dynamic TLS, which glibc allocates with `malloc` on a thread's first
//! access — from inside the first hook, before the guard could be set.
//! Reading and setting a key's value never allocates.

use crate::platform::thread_word;

thread_word!(static INSIDE_TRACKER);

/// Held while the current thread runs tracker code; dropping it re-enables recording.
pub struct RecursionGuard {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl RecursionGuard {
    /// Enters the tracker, or `None` if this thread is already inside it.
    #[inline]
    pub fn enter() -> Option<RecursionGuard> {
        if INSIDE_TRACKER.get() != 0 {
            return None;
        }
        INSIDE_TRACKER.set(1);
        Some(RecursionGuard {
            _not_send: std::marker::PhantomData,
        })
    }

    /// Marks the current thread as permanently inside the tracker (our own threads).
    pub fn disable_tracking_for_this_thread() {
        INSIDE_TRACKER.set(1);
    }

    /// Sets or clears the flag without a scope (fork handlers span two callbacks).
    pub fn set(inside: bool) {
        INSIDE_TRACKER.set(usize::from(inside));
    }
}

impl Drop for RecursionGuard {
    #[inline]
    fn drop(&mut self) {
        INSIDE_TRACKER.set(0);
    }
}
