//! Per-thread tracker state: memray's thread id (a counter from 1, in order of
//! first use) and the Python stack last written for the thread. Thread-local
//! storage holds only a pointer, so the library's static TLS stays tiny.

use std::cell::Cell;
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

use crate::stack::ThreadStack;

static NEXT_TID: AtomicU64 = AtomicU64::new(1);

/// What the tracker remembers about one thread.
pub struct ThreadState {
    pub tid: u64,
    pub stack: ThreadStack,
}

thread_local! {
    static STATE: Cell<*mut ThreadState> = const { Cell::new(ptr::null_mut()) };
}

static DESTRUCTOR_KEY: Once = Once::new();
static mut KEY: libc::pthread_key_t = 0;

/// The calling thread's state, created on first use. Must be called inside the
/// recursion guard (creating it allocates).
pub fn current() -> &'static mut ThreadState {
    let existing = STATE.with(Cell::get);
    if !existing.is_null() {
        // SAFETY: created below for this thread only; freed at thread exit.
        return unsafe { &mut *existing };
    }
    let state = Box::into_raw(Box::new(ThreadState {
        tid: NEXT_TID.fetch_add(1, Ordering::Relaxed),
        stack: ThreadStack::default(),
    }));
    STATE.with(|cell| cell.set(state));
    register_destructor(state);
    // SAFETY: just allocated, owned by this thread.
    unsafe { &mut *state }
}

/// The calling thread's memray id, assigning one if needed.
pub fn current_tid() -> u64 {
    current().tid
}

/// Frees a thread's state when the thread exits (through a pthread key, which
/// unlike Rust's TLS destructors needs no allocation to register).
fn register_destructor(state: *mut ThreadState) {
    DESTRUCTOR_KEY.call_once(|| {
        // SAFETY: KEY is written once, here, before any read.
        unsafe { libc::pthread_key_create(ptr::addr_of_mut!(KEY), Some(free_state)) };
    });
    // SAFETY: the key was created above.
    unsafe { libc::pthread_setspecific(KEY, state.cast()) };
}

extern "C" fn free_state(state: *mut libc::c_void) {
    let _guard = crate::guard::RecursionGuard::enter();
    STATE.with(|cell| cell.set(ptr::null_mut()));
    // SAFETY: `state` came from Box::into_raw in `current`.
    drop(unsafe { Box::from_raw(state.cast::<ThreadState>()) });
}

/// After fork, only the forking thread exists; the others' states are gone with them.
pub fn forget_stack_after_fork() {
    let existing = STATE.with(Cell::get);
    if !existing.is_null() {
        // SAFETY: this thread's own state.
        unsafe { (*existing).stack.forget_written() };
    }
}
