//! macOS: the target's task port (`task_for_pid`), `mach_vm_read_overwrite`,
//! and its regions through `mach_vm_region` and `proc_regionfilename`.

use std::collections::HashSet;
use std::ffi::c_int;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use mach2::kern_return::KERN_SUCCESS;
use mach2::port::mach_port_t;
use mach2::traps::{mach_task_self, task_for_pid};
use mach2::vm::{mach_vm_read_overwrite, mach_vm_region};
use mach2::vm_region::{vm_region_basic_info_64, VM_REGION_BASIC_INFO_64};

use crate::discover::MappedFile;
use crate::error::Error;
use crate::file::{map_file, Mmap};

/// The format of executables and libraries, as errors name it.
pub const EXECUTABLE_FORMAT: &str = "Mach-O";

/// What to do when reading another process's memory is refused.
pub const PERMISSION_HINT: &str = "macOS refused the task port (task_for_pid): run as root, \
     and the target must not use the hardened runtime";

/// The target's task port, or the errno that explains why there is none.
#[derive(Clone, Copy, Debug)]
pub struct RemoteHandle {
    task: Result<mach_port_t, c_int>,
}

impl RemoteHandle {
    pub fn open(pid: libc::pid_t) -> RemoteHandle {
        RemoteHandle {
            task: task_port(pid),
        }
    }

    /// Reads each range with `mach_vm_read_overwrite`; fails if any is short.
    pub fn read_batch(
        &self,
        _pid: libc::pid_t,
        requests: &mut [(u64, &mut [u8])],
    ) -> io::Result<()> {
        let task = self.task.map_err(io::Error::from_raw_os_error)?;
        for (addr, buf) in requests.iter_mut() {
            let mut got = 0u64;
            // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`,
            // which is live and exclusively borrowed.
            let rc = unsafe {
                mach_vm_read_overwrite(
                    task,
                    *addr,
                    buf.len() as u64,
                    buf.as_mut_ptr() as u64,
                    &mut got,
                )
            };
            if rc != KERN_SUCCESS || got != buf.len() as u64 {
                return Err(io::Error::from_raw_os_error(libc::EFAULT));
            }
        }
        Ok(())
    }
}

fn task_port(pid: libc::pid_t) -> Result<mach_port_t, c_int> {
    // SAFETY: no preconditions.
    let this = unsafe { mach_task_self() };
    if pid as u32 == std::process::id() {
        return Ok(this);
    }
    // SAFETY: signal 0 only checks that the process exists.
    if unsafe { libc::kill(pid, 0) } != 0
        && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
    {
        return Err(libc::ESRCH);
    }
    let mut task: mach_port_t = 0;
    // SAFETY: a plain out-parameter.
    let rc = unsafe { task_for_pid(this, pid, &mut task) };
    if rc == KERN_SUCCESS {
        Ok(task)
    } else {
        Err(libc::EPERM)
    }
}

/// Files mapped at offset 0 in the process, in address order, and its executable.
pub fn mapped_files(pid: i32) -> Result<(Vec<MappedFile>, Option<PathBuf>), Error> {
    let task = task_port(pid).map_err(|errno| match errno {
        libc::ESRCH => Error::NoSuchProcess { pid },
        _ => Error::PermissionDenied { pid },
    })?;
    let mut files: Vec<MappedFile> = Vec::new();
    let mut address = 0u64;
    loop {
        let mut size = 0u64;
        // SAFETY: a plain C struct of integers.
        let mut info: vm_region_basic_info_64 = unsafe { std::mem::zeroed() };
        let mut count = vm_region_basic_info_64::count();
        let mut object: mach_port_t = 0;
        // SAFETY: out-parameters sized as `count` says.
        let rc = unsafe {
            mach_vm_region(
                task,
                &mut address,
                &mut size,
                VM_REGION_BASIC_INFO_64,
                (&mut info as *mut vm_region_basic_info_64).cast(),
                &mut count,
                &mut object,
            )
        };
        if rc != KERN_SUCCESS || size == 0 {
            break;
        }
        if info.offset == 0 {
            if let Some(path) = region_file(pid, address) {
                if !files.iter().any(|f| f.path == path) {
                    files.push(MappedFile {
                        path,
                        base: address,
                    });
                }
            }
        }
        address = address.saturating_add(size);
    }
    Ok((files, executable(pid)))
}

fn region_file(pid: i32, address: u64) -> Option<PathBuf> {
    let mut buffer = [0u8; libc::PATH_MAX as usize];
    // SAFETY: the buffer is as long as the size passed.
    let len = unsafe {
        libc::proc_regionfilename(
            pid,
            address,
            buffer.as_mut_ptr().cast(),
            buffer.len() as u32,
        )
    };
    path_from(&buffer, len)
}

fn executable(pid: i32) -> Option<PathBuf> {
    let mut buffer = [0u8; libc::PROC_PIDPATHINFO_MAXSIZE as usize];
    // SAFETY: the buffer is as long as the size passed.
    let len = unsafe { libc::proc_pidpath(pid, buffer.as_mut_ptr().cast(), buffer.len() as u32) };
    path_from(&buffer, len)
}

fn path_from(buffer: &[u8], len: c_int) -> Option<PathBuf> {
    let bytes = buffer.get(..usize::try_from(len).ok().filter(|&n| n > 0)?)?;
    Some(PathBuf::from(std::ffi::OsStr::from_bytes(bytes)))
}

/// A file as the target sees it: macOS has no per-process roots.
pub fn map_target_file(_pid: i32, path: &Path) -> io::Result<Mmap> {
    map_file(path)
}

/// No kernel thread ids to check glibc's `struct pthread` against: the
/// interpreter's own record (3.11+) is the only source.
pub fn task_ids(_pid: i32) -> HashSet<u32> {
    HashSet::new()
}
