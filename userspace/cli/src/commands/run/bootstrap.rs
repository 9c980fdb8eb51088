//! The bootstrap module handed to the interpreter as `/dev/fd/N`: a file
//! descriptor it inherits (and closes), so nothing is left on disk.

use std::fs::File;
use std::io::Write;
use std::os::fd::IntoRawFd;
use std::path::PathBuf;

const BOOTSTRAP: &str = include_str!("../../../../python/memray/_bootstrap.py");

/// The bootstrap in a memory file.
#[cfg(target_os = "linux")]
pub fn file() -> std::io::Result<PathBuf> {
    use std::os::fd::FromRawFd;
    // SAFETY: a NUL-terminated name; no MFD_CLOEXEC, so it survives exec.
    let fd = unsafe { libc::memfd_create(c"memray-bootstrap".as_ptr(), 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a descriptor we just created and own.
    let mut file = unsafe { File::from_raw_fd(fd) };
    file.write_all(BOOTSTRAP.as_bytes())?;
    Ok(PathBuf::from(format!("/dev/fd/{}", file.into_raw_fd())))
}

/// The bootstrap in a temporary file, unlinked once opened for reading
/// (macOS has no memory files).
#[cfg(target_os = "macos")]
pub fn file() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = std::env::temp_dir().join(format!("memray-bootstrap.{}.py", std::process::id()));
    let mut writer = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    let written = writer.write_all(BOOTSTRAP.as_bytes());
    let reader = File::open(&path);
    std::fs::remove_file(&path)?;
    written?;
    let fd = reader?.into_raw_fd();
    // SAFETY: clears close-on-exec (which std sets) on a descriptor we own.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(PathBuf::from(format!("/dev/fd/{fd}")))
}
