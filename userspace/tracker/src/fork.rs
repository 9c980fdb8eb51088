//! fork: without `--follow-fork` the child stops recording; with it, the child
//! writes its own capture to `<output>.<child pid>`.

use std::sync::Once;

use crate::guard::RecursionGuard;
use crate::session::Session;
use crate::thread;
use crate::tracking;

static INSTALLED: Once = Once::new();

pub fn install_handlers() {
    INSTALLED.call_once(|| {
        // SAFETY: registering plain extern "C" callbacks.
        unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
    });
}

// Nothing the forking thread does inside fork() itself is recorded.
extern "C" fn prepare() {
    RecursionGuard::set(true);
}

extern "C" fn parent() {
    RecursionGuard::set(false);
}

extern "C" fn child() {
    memray_unwind::forget_other_threads_after_fork();
    if tracking::is_active() {
        follow_or_stop();
    }
    RecursionGuard::set(false);
}

fn follow_or_stop() {
    let Some(parent_session) = tracking::session() else {
        return;
    };
    // Another thread may have held the parent's lock at fork: never touch it again.
    tracking::abandon();
    if !parent_session.follow_fork {
        return;
    }
    // SAFETY: plain syscalls.
    let (parent_pid, child_pid) = unsafe { (libc::getppid(), libc::getpid()) };
    let settings = parent_session
        .settings
        .for_child(parent_pid as u32, child_pid as u32);
    thread::forget_stack_after_fork();
    let interval = parent_session.memory_interval;
    if let Ok(session) = Session::open(settings, true, interval, thread::current_tid()) {
        tracking::start(session);
        if let Some(session) = tracking::session() {
            session.start_sampling();
        }
    }
}
