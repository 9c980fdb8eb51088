//! Linux: `process_vm_readv` and `/proc/<pid>`.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use crate::discover::{files_mapped_at_offset_zero, MappedFile};
use crate::error::Error;
use crate::file::{map_file, Mmap};
use crate::mounts::{parse_mountinfo, translations};

/// The format of executables and libraries, as errors name it.
pub const EXECUTABLE_FORMAT: &str = "ELF";

/// What to do when reading another process's memory is refused.
pub const PERMISSION_HINT: &str =
    "run as root or the same user with CAP_SYS_PTRACE, or set kernel.yama.ptrace_scope=0";

/// Access to another process's memory: the pid is all `process_vm_readv` needs.
#[derive(Clone, Copy, Debug)]
pub struct RemoteHandle;

impl RemoteHandle {
    pub fn open(_pid: libc::pid_t) -> RemoteHandle {
        RemoteHandle
    }

    /// Reads several ranges with one system call; fails if any is short.
    pub fn read_batch(
        &self,
        pid: libc::pid_t,
        requests: &mut [(u64, &mut [u8])],
    ) -> io::Result<()> {
        let mut local = Vec::with_capacity(requests.len());
        let mut remote = Vec::with_capacity(requests.len());
        let mut wanted = 0usize;
        for (addr, buf) in requests.iter_mut() {
            local.push(libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            });
            remote.push(libc::iovec {
                iov_base: *addr as *mut libc::c_void,
                iov_len: buf.len(),
            });
            wanted += buf.len();
        }
        // IOV_MAX is 1024 on Linux.
        if local.len() > 1024 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        // SAFETY: every local iovec points into a live, exclusively borrowed buffer.
        let got = unsafe {
            libc::process_vm_readv(
                pid,
                local.as_ptr(),
                local.len() as libc::c_ulong,
                remote.as_ptr(),
                remote.len() as libc::c_ulong,
                0,
            )
        };
        if got >= 0 && got as usize == wanted {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

/// Files mapped at offset 0 in the process, in address order, and its executable.
pub fn mapped_files(pid: i32) -> Result<(Vec<MappedFile>, Option<PathBuf>), Error> {
    let maps =
        std::fs::read_to_string(format!("/proc/{pid}/maps")).map_err(|e| match e.kind() {
            io::ErrorKind::PermissionDenied => Error::PermissionDenied { pid },
            _ => Error::NoSuchProcess { pid },
        })?;
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    Ok((files_mapped_at_offset_zero(&maps), exe))
}

/// A file as the target sees it (through its root, so containers and deleted
/// files work); `path` as `/proc/PID/maps` names it.
pub fn map_target_file(pid: i32, path: &Path) -> io::Result<Mmap> {
    map_file(&reported_file(pid as u32, path)).or_else(|_| map_file(path))
}

/// Where this process reaches the file process `pid` names `path` (an
/// absolute path in its own file system: a library search directory, an
/// interpreter): through `/proc/PID/root`, so that a process in another
/// mount namespace (a container) gets its own file.
pub fn process_file(pid: u32, path: &Path) -> PathBuf {
    through_root(pid, path.strip_prefix("/").unwrap_or(path))
}

/// Where this process reaches the file that `/proc/PID/maps` or
/// `/proc/PID/exe` names `path`. The kernel writes those paths as seen from
/// the reader's root: for a process whose root is a directory below ours
/// (`chroot`) they start with that directory, which is taken off; for one
/// whose root we cannot reach (a container's `pivot_root`) they are as it
/// sees them already.
pub fn reported_file(pid: u32, path: &Path) -> PathBuf {
    let root = std::fs::read_link(format!("/proc/{pid}/root")).unwrap_or_else(|_| "/".into());
    let inner = path
        .strip_prefix(&root)
        .or_else(|_| path.strip_prefix("/"))
        .unwrap_or(path);
    through_root(pid, inner)
}

/// Where this process reaches file `path` of process `pid` (as its maps
/// name it) for as long as the file exists, not only while that process
/// lives as through `/proc/PID/root`: `path` itself in a shared mount
/// namespace, else the same file through our own mount of its filesystem
/// (`mounts::translations`). `None` if there is no such path.
pub fn lasting_file(pid: u32, path: &Path) -> Option<PathBuf> {
    let namespace = |process: &str| std::fs::read_link(format!("/proc/{process}/ns/mnt")).ok();
    if namespace("self") == namespace(&pid.to_string()) {
        return Some(path.to_path_buf());
    }
    let table = |process: &str| {
        std::fs::read_to_string(format!("/proc/{process}/mountinfo"))
            .ok()
            .map(|text| parse_mountinfo(&text))
    };
    let (theirs, ours) = (table(&pid.to_string())?, table("self")?);
    let wanted = file_id(&reported_file(pid, path))?;
    std::iter::once(path.to_path_buf())
        .chain(translations(&theirs, &ours, path))
        .find(|candidate| file_id(candidate) == Some(wanted))
}

/// A file's (device, inode).
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.dev(), metadata.ino()))
}

fn through_root(pid: u32, relative: &Path) -> PathBuf {
    Path::new(&format!("/proc/{pid}/root")).join(relative)
}

/// The kernel thread ids of the process's tasks.
pub fn task_ids(pid: i32) -> HashSet<u32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}
