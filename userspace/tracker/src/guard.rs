//! The recursion guard: while a thread is inside the tracker (or inside a real
//! allocator called by a hook), its allocations are not recorded.

use std::cell::Cell;

thread_local! {
    // A plain `Cell` needs no destructor, so touching it never allocates.
    static INSIDE_TRACKER: Cell<bool> = const { Cell::new(false) };
}

/// Held while the current thread runs tracker code; dropping it re-enables recording.
pub struct RecursionGuard {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl RecursionGuard {
    /// Enters the tracker, or `None` if this thread is already inside it.
    #[inline]
    pub fn enter() -> Option<RecursionGuard> {
        INSIDE_TRACKER.with(|inside| {
            if inside.get() {
                None
            } else {
                inside.set(true);
                Some(RecursionGuard {
                    _not_send: std::marker::PhantomData,
                })
            }
        })
    }

    /// Marks the current thread as permanently inside the tracker (our own threads).
    pub fn disable_tracking_for_this_thread() {
        INSIDE_TRACKER.with(|inside| inside.set(true));
    }

    /// Sets or clears the flag without a scope (fork handlers span two callbacks).
    pub fn set(inside: bool) {
        INSIDE_TRACKER.with(|flag| flag.set(inside));
    }
}

impl Drop for RecursionGuard {
    #[inline]
    fn drop(&mut self) {
        INSIDE_TRACKER.with(|inside| inside.set(false));
    }
}
