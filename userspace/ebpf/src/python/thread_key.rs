//! Where a profiled process keeps each thread's own `PyThreadState`: the
//! value of CPython's gilstate key `autoTSSkey` (a pthread key, bound for
//! every thread with a thread state, whether it holds the GIL or not).

use python_frames::memory::MemoryExt;
use python_frames::{thread_states, PythonProcess};

use super::Error;
use crate::PthreadKeyLayout;

/// Offset of `autoTSSkey` (`Py_tss_t {int _is_initialized; pthread_key_t
/// _key}`) in `_PyRuntime`: in `gilstate` up to 3.11, at the top level from
/// 3.12. Measured with `offsetof` against each version's internal headers;
/// checked against the live process by [`thread_state_slot`].
fn auto_tss_key_offset(major: u32, minor: u32) -> Option<u64> {
    match (major, minor) {
        (3, 8) => Some(1392),
        (3, 9) | (3, 10) => Some(584),
        (3, 11) => Some(592),
        (3, 12) => Some(1544),
        (3, 13) => Some(2160),
        (3, 14) => Some(2336),
        _ => None,
    }
}

/// Offset from a thread's thread pointer (its `pthread_t`) of the slot that
/// holds its `PyThreadState`, with `keys` the layout of the target libc's
/// pthread-specific values.
/// The main thread's state (the oldest in the interpreter's list; a newer
/// one may not be bound yet) must be found there.
pub fn thread_state_slot(process: &PythonProcess, keys: &PthreadKeyLayout) -> Result<u64, Error> {
    let layout = process.layout();
    let memory = process.memory();
    let offset = auto_tss_key_offset(layout.major, layout.minor).ok_or(Error::Unsupported {
        major: layout.major,
        minor: layout.minor,
    })?;
    let at = process.target().runtime + offset;
    let initialized = memory.read_i32(at);
    let key = memory.read_u32(at + 4);
    let (Some(1), Some(key)) = (initialized, key) else {
        return Err(Error::NoThreadKey("autoTSSkey is not initialized"));
    };
    let slot = keys.value_address(0, key).ok_or(Error::NoThreadKey(
        "autoTSSkey is not kept in the thread itself",
    ))?;
    let threads = thread_states(memory, process.target())
        .ok_or(Error::NoThreadKey("the thread list is unreadable"))?;
    let main_is_bound = threads
        .last()
        .is_some_and(|t| memory.read_u64(t.thread_id.wrapping_add(slot)) == Some(t.address));
    if !main_is_bound {
        return Err(Error::NoThreadKey(
            "autoTSSkey does not hold the threads' states",
        ));
    }
    Ok(slot)
}
