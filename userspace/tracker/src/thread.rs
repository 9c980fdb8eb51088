//! Per-thread tracker state: the thread as the recorder knows it (memray's
//! thread id, a counter from 1 in order of first use that carries on across
//! fork, and the stack last written) and a reusable walk buffer.
//! Thread-local storage holds only a pointer, so the library's static TLS
//! stays tiny.

use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

use memray_recorder::RecordedThread;

use crate::native::NativeStack;
use crate::platform::thread_word;
use crate::python::{self, Frames};
use crate::tracking;

static NEXT_TID: AtomicU64 = AtomicU64::new(1);

/// What the tracker remembers about one thread.
pub struct ThreadState {
    pub recorded: RecordedThread,
    /// The last walk of the thread's Python frames.
    pub walked: Frames,
    /// The thread's native unwinder (`--native`).
    pub native: NativeStack,
    /// The capture `recorded` last wrote to ([`tracking::session_number`]).
    session: u64,
}

impl ThreadState {
    /// Reads the calling thread's Python frames (outside the recorder's lock).
    pub fn walk(&mut self) {
        python::walk_current_thread(&mut self.walked);
    }
}

// The thread's `ThreadState`: null before first use, [`LENT`] while
// [`with_current`] lends it out.
thread_word!(static STATE);

/// Marks the state as lent out, so a nested call cannot alias it.
const LENT: *mut ThreadState = ptr::dangling_mut();

static DESTRUCTOR_KEY: Once = Once::new();
static mut KEY: libc::pthread_key_t = 0;

/// Runs `body` with the calling thread's state, created on first use
/// (inside the recursion guard: creating it allocates). `None` if the state
/// is already lent out further up this thread's stack.
pub fn with_current<R>(body: impl FnOnce(&mut ThreadState) -> R) -> Option<R> {
    let state = STATE.get() as *mut ThreadState;
    STATE.set(LENT as usize);
    let state = match state {
        LENT => return None,
        existing if !existing.is_null() => existing,
        _ => create(),
    };
    // SAFETY: this thread's own state, freed only at thread exit; while it
    // is lent here the cell holds LENT, so no other reference to it exists.
    let state_ref = unsafe { &mut *state };
    // A new capture in this process (another Tracker) knows none of the
    // stacks written to the previous one.
    let session = tracking::session_number();
    if state_ref.session != session {
        state_ref.recorded.forget_written();
        state_ref.session = session;
    }
    let result = body(state_ref);
    STATE.set(state as usize);
    Some(result)
}

fn create() -> *mut ThreadState {
    let tid = NEXT_TID.fetch_add(1, Ordering::Relaxed);
    // SAFETY: pthread_self has no preconditions.
    let key = unsafe { libc::pthread_self() } as u64;
    let state = Box::into_raw(Box::new(ThreadState {
        recorded: RecordedThread::new(tid, key),
        walked: Frames::default(),
        native: NativeStack::default(),
        session: tracking::session_number(),
    }));
    register_destructor(state);
    state
}

/// The calling thread's memray id, assigning one if needed (0 if lent out).
pub fn current_tid() -> u64 {
    with_current(|state| state.recorded.tid()).unwrap_or(0)
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
    STATE.set(0);
    // SAFETY: `state` came from Box::into_raw in `create`; the thread is
    // exiting, so nothing lends it out any more.
    drop(unsafe { Box::from_raw(state.cast::<ThreadState>()) });
}

/// After fork, only the forking thread exists; the others' states are gone with them.
pub fn forget_stack_after_fork() {
    if STATE.get() == 0 {
        return;
    }
    with_current(|state| state.recorded.forget_written());
}
