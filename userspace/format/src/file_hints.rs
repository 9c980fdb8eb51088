//! The two file calls whose names differ between Linux and macOS: growing a
//! capture file before it is mapped, and asking for sequential readahead.

use std::os::fd::RawFd;

/// Reserves `[offset, offset + len)` of the file; returns 0 or an errno.
#[cfg(target_os = "linux")]
pub fn grow_file(fd: RawFd, offset: u64, len: u64) -> libc::c_int {
    // SAFETY: plain syscall on the caller's descriptor.
    unsafe { libc::posix_fallocate(fd, offset as libc::off_t, len as libc::off_t) }
}

/// Extends the file to `offset + len` (macOS has no `posix_fallocate`; memray
/// truncates upwards there too); returns 0 or an errno.
#[cfg(target_os = "macos")]
pub fn grow_file(fd: RawFd, offset: u64, len: u64) -> libc::c_int {
    // SAFETY: plain syscall on the caller's descriptor.
    match unsafe { libc::ftruncate(fd, (offset + len) as libc::off_t) } {
        0 => 0,
        _ => std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO),
    }
}

/// A hint that the file will be read once from start to end.
#[cfg(target_os = "linux")]
pub fn advise_sequential(fd: RawFd) {
    // SAFETY: a hint on the caller's open descriptor; only readahead changes.
    unsafe { libc::posix_fadvise(fd, 0, 0, libc::POSIX_FADV_SEQUENTIAL) };
}

/// A hint that the file will be read once from start to end.
#[cfg(target_os = "macos")]
pub fn advise_sequential(fd: RawFd) {
    // SAFETY: a hint on the caller's open descriptor; only readahead changes.
    unsafe { libc::fcntl(fd, libc::F_RDAHEAD, 1) };
}
