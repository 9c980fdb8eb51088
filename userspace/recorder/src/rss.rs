//! Clock and resident-set-size readings for MEMORY_RECORDs, and how often
//! to take them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// memray's default `memory_interval_ms`: how often RSS is sampled.
pub const MEMORY_INTERVAL: Duration = Duration::from_millis(10);

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The process a capture describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    /// The calling process itself (the preload tracker).
    Current,
    /// Another process, by pid (the eBPF consumer).
    Other(u32),
}

impl Process {
    pub fn pid(self) -> u32 {
        match self {
            Process::Current => std::process::id(),
            Process::Other(pid) => pid,
        }
    }

    /// Its resident set size in bytes; `None` when the process has none
    /// to read (it has exited: a zombie has no memory).
    pub fn resident_set_size(self) -> Option<u64> {
        resident_bytes(self)
    }
}

/// `VmRSS` + `HugetlbPages` from the process's `/proc/…/status` (as memray reads it).
#[cfg(target_os = "linux")]
fn resident_bytes(process: Process) -> Option<u64> {
    let status = match process {
        Process::Current => std::fs::read_to_string("/proc/self/status"),
        Process::Other(pid) => std::fs::read_to_string(format!("/proc/{pid}/status")),
    };
    let status = status.ok()?;
    let kib = |key: &str| {
        status.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            let value = value.trim().trim_end_matches("kB").trim();
            (name == key).then(|| value.parse::<u64>().ok()).flatten()
        })
    };
    let resident = kib("VmRSS")?;
    Some((resident + kib("HugetlbPages").unwrap_or(0)) * 1024)
}

/// `resident_size` of the task's `mach_task_basic_info` (as memray reads it
/// on macOS); another process's from `proc_pidinfo`, which needs no task port.
#[cfg(target_os = "macos")]
#[allow(unsafe_code)]
fn resident_bytes(process: Process) -> Option<u64> {
    use mach2::task_info::{
        mach_task_basic_info, MACH_TASK_BASIC_INFO, MACH_TASK_BASIC_INFO_COUNT,
    };
    match process {
        Process::Current => {
            // SAFETY: a plain C struct of integers.
            let mut info: mach_task_basic_info = unsafe { std::mem::zeroed() };
            let mut count = MACH_TASK_BASIC_INFO_COUNT;
            // SAFETY: `info` holds `count` words, as task_info is told.
            let rc = unsafe {
                mach2::task::task_info(
                    mach2::traps::mach_task_self(),
                    MACH_TASK_BASIC_INFO,
                    (&mut info as *mut mach_task_basic_info).cast(),
                    &mut count,
                )
            };
            (rc == mach2::kern_return::KERN_SUCCESS).then_some(info.resident_size)
        }
        Process::Other(pid) => {
            // SAFETY: a plain C struct of integers.
            let mut info: libc::proc_taskinfo = unsafe { std::mem::zeroed() };
            let size = std::mem::size_of::<libc::proc_taskinfo>() as libc::c_int;
            // SAFETY: `info` is `size` bytes long.
            let got = unsafe {
                libc::proc_pidinfo(
                    pid as libc::c_int,
                    libc::PROC_PIDTASKINFO,
                    0,
                    (&mut info as *mut libc::proc_taskinfo).cast(),
                    size,
                )
            };
            (got == size).then_some(info.pti_resident_size)
        }
    }
}
