//! Dropping what is slow to close without making our exit wait for it.
//!
//! Removing a multi-uprobe link waits for the kernel's grace periods (RCU
//! tasks trace and SRCU; about 0.1 s here), one link after the other, and a
//! recording has several (the entry and return probes of each libc, the
//! holds, the Python allocators'). So a child process keeps copies of the
//! descriptors and closes them, paying the wait, once we have exited.

use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};

/// Drops `value` now; the last close of its descriptors, and the kernel's
/// work behind it, happens in a child process once we have exited. If that
/// child cannot be made, the value is simply dropped here.
pub(crate) fn drop_after_exit<T>(value: T) {
    let mut ends = [0; 2];
    // SAFETY: `ends` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return;
    }
    // SAFETY: pipe2 returned two new descriptors that nothing else owns.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(ends[0]), OwnedFd::from_raw_fd(ends[1])) };
    // SAFETY: the child only makes async-signal-safe system calls, then _exit.
    match unsafe { libc::fork() } {
        0 => {
            // SAFETY: in the child: system calls on descriptors it owns, then
            // _exit (no destructor, no atexit handler of ours runs).
            unsafe { keep_until_parent_exits(read.into_raw_fd(), write.into_raw_fd()) }
        }
        -1 => {}
        _ => {
            // Closed only by our exit, which the child waits for.
            let _ = write.into_raw_fd();
        }
    }
    drop(value);
}

/// The child: off our terminal and stdio (a caller reading our output to its
/// end must not wait for it), it waits for the write end of the pipe to close
/// with our exit, then exits, closing the last copies.
///
/// # Safety
/// Call only in a child just forked; it never returns.
unsafe fn keep_until_parent_exits(read: i32, write: i32) -> ! {
    // SAFETY: plain system calls on this process's own descriptors.
    unsafe {
        libc::setsid();
        libc::close(write);
        for stdio in 0..3 {
            libc::close(stdio);
        }
        let mut byte = 0u8;
        while libc::read(read, (&raw mut byte).cast(), 1) < 0
            && *libc::__errno_location() == libc::EINTR
        {}
        libc::_exit(0)
    }
}
