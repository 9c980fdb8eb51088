//! The interpreter's thread states, and runtime-wide flags read next to them.

use crate::layout::present;
use crate::memory::{Memory, MemoryExt};
use crate::walk::Target;

/// Bound on the thread list (a torn `next` chain must not loop forever).
const MAX_THREADS: usize = 4096;

/// One thread state of the main interpreter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadState {
    /// Address of the `PyThreadState`.
    pub address: u64,
    /// `thread_id`: the thread's `pthread_t`.
    pub thread_id: u64,
    /// The OS thread id, recorded by CPython 3.11+ (`native_thread_id`).
    pub native_thread_id: Option<u32>,
}

/// The main interpreter's thread states, newest first (CPython's order).
pub fn thread_states<M: Memory + ?Sized>(mem: &M, target: &Target) -> Option<Vec<ThreadState>> {
    let layout = &target.layout;
    let interp = main_interpreter(mem, target)?;
    if interp == 0 {
        return Some(Vec::new());
    }
    let mut tstate = mem.read_u64(interp + layout.interp_threads_head)?;
    let mut out = Vec::new();
    while tstate != 0 && out.len() < MAX_THREADS {
        let native_thread_id = match present(layout.tstate_native_thread_id) {
            Some(offset) => Some(mem.read_u32(tstate + offset)?),
            None => None,
        };
        out.push(ThreadState {
            address: tstate,
            thread_id: mem.read_u64(tstate + layout.tstate_thread_id)?,
            native_thread_id,
        });
        tstate = mem.read_u64(tstate + layout.tstate_next)?;
    }
    Some(out)
}

/// Whether `Py_Finalize` has started (`_PyRuntime._finalizing` is set). Once
/// it has, other threads' states may be freed under them: stop walking.
pub fn is_finalizing<M: Memory + ?Sized>(mem: &M, target: &Target) -> bool {
    finalizing_thread(mem, target).is_some()
}

/// The thread state running `Py_Finalize` (`_PyRuntime._finalizing`), if any.
pub fn finalizing_thread<M: Memory + ?Sized>(mem: &M, target: &Target) -> Option<u64> {
    mem.read_u64(target.runtime + target.layout.runtime_finalizing)
        .filter(|&tstate| tstate != 0)
}

/// 3.14's `interp->_code_object_generation`, which CPython bumps whenever a
/// code object is freed (`None` before 3.14): a cheap "are my cached code
/// addresses still valid" check for remote readers.
pub fn code_object_generation<M: Memory + ?Sized>(mem: &M, target: &Target) -> Option<u64> {
    let offset = present(target.layout.interp_code_object_generation)?;
    mem.read_u64(main_interpreter(mem, target)? + offset)
}

/// The main interpreter's `PyInterpreterState` (0 before it exists).
pub fn main_interpreter<M: Memory + ?Sized>(mem: &M, target: &Target) -> Option<u64> {
    mem.read_u64(target.runtime + target.layout.runtime_interpreters_head)
}
