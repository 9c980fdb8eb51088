//! `_exit` and `_Exit`: a process that leaves without running its exit
//! handlers (`os._exit`, multiprocessing's fork workers) still leaves a
//! complete capture, finished exactly as a deactivation finishes it.
//!
//! glibc's own `exit` reaches the kernel through an internal alias, not
//! through these symbols, so only explicit calls arrive here (on macOS,
//! dyld's interposition leaves libSystem's internal calls alone too).

use std::ffi::c_int;
use std::time::Duration;

use crate::guard::RecursionGuard;
use crate::{real, tracking};

/// How long to wait for a thread that is writing a record to release the
/// capture; past it, the file is left as a crash would leave it.
const LOCK_PATIENCE: Duration = Duration::from_millis(200);

/// # Safety
/// C `_exit`.
#[cfg_attr(target_os = "linux", no_mangle)]
pub unsafe extern "C" fn _exit(status: c_int) -> ! {
    finish_capture_of_this_process();
    // SAFETY: the caller's own call, forwarded to the real function.
    unsafe { real::_exit(status) }
}

/// # Safety
/// C `_Exit`, which POSIX defines as equivalent to `_exit`.
#[allow(non_snake_case)]
#[cfg_attr(target_os = "linux", no_mangle)]
pub unsafe extern "C" fn _Exit(status: c_int) -> ! {
    finish_capture_of_this_process();
    // SAFETY: the caller's own call, forwarded to the real function.
    unsafe { real::_exit(status) }
}

/// Finishes the capture if this very process is recording. Anything else (an
/// untracked child, a vfork child sharing our memory between fork and exec)
/// returns after two loads and a getpid, which are async-signal-safe.
fn finish_capture_of_this_process() {
    if !tracking::is_active() {
        return;
    }
    let Some(session) = tracking::session() else {
        return;
    };
    if !session.belongs_to_this_process() {
        return;
    }
    // A thread inside the tracker (say, a hook that failed) may hold the lock itself.
    let Some(_guard) = RecursionGuard::enter() else {
        return;
    };
    tracking::stop();
    block_signals_in_this_thread();
    // Nothing is left to report a failure to: the process is leaving.
    let _ = session.finish_before_exit(LOCK_PATIENCE);
}

/// The process is leaving anyway: a signal arriving while the file is being
/// finished (multiprocessing's `Pool.terminate` sends SIGTERM to workers that
/// are already exiting) must not kill it halfway through compression.
pub fn block_signals_in_this_thread() {
    // SAFETY: a local signal set, filled before use.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
    }
}
