//! The floor under any uprobe profiler: the kernel's uprobe traps alone.
//! Perf-event uprobes with no BPF program, at the places `run --ebpf`
//! probes libc's allocator functions (`memray_ebpf::AllocatorSites`), for
//! one process: each hit traps into the kernel and returns. The events
//! belong to the process's first thread (an inherited uprobe event makes
//! the process's thread creation fail); the breakpoints are in its memory,
//! so every thread traps on them, as under `run --ebpf`.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use memray_ebpf::{AllocatorSites, LibcImage};
use perf_event_open_sys::bindings::perf_event_attr;

const UPROBE_PMU: &str = "/sys/bus/event_source/devices/uprobe";

/// The process's uprobes, removed when dropped.
pub struct Traps {
    _events: Vec<File>,
}

impl Traps {
    /// Places them in process `pid` (its libc mapped).
    pub fn place(pid: u32) -> Result<Traps, String> {
        let libc = LibcImage::of_process(pid).map_err(|e| e.to_string())?;
        let sites = AllocatorSites::libc(&libc).map_err(|e| e.to_string())?;
        let path = CString::new(libc.path.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
        let kind = read_pmu("type")?
            .trim()
            .parse()
            .map_err(|_| "the uprobe PMU's type is not a number".to_string())?;
        let retprobe_bit = read_pmu("format/retprobe")?
            .trim()
            .strip_prefix("config:")
            .and_then(|bit| bit.parse::<u32>().ok())
            .ok_or("the uprobe PMU's retprobe format is not config:N")?;
        let places = sites.entries.iter().map(|&offset| (offset, 0)).chain(
            sites
                .returns
                .iter()
                .map(|&offset| (offset, 1 << retprobe_bit)),
        );
        let events = places
            .map(|(offset, config)| open(pid, kind, config, &path, offset))
            .collect::<Result<_, _>>()?;
        Ok(Traps { _events: events })
    }
}

fn read_pmu(file: &str) -> Result<String, String> {
    std::fs::read_to_string(format!("{UPROBE_PMU}/{file}"))
        .map_err(|e| format!("{UPROBE_PMU}/{file}: {e}"))
}

/// One counting uprobe at `offset` of the file at `path`.
fn open(pid: u32, kind: u32, config: u64, path: &CString, offset: u64) -> Result<File, String> {
    let mut attr = perf_event_attr {
        type_: kind,
        size: size_of::<perf_event_attr>() as u32,
        config,
        ..perf_event_attr::default()
    };
    attr.__bindgen_anon_3.uprobe_path = path.as_ptr() as u64;
    attr.__bindgen_anon_4.probe_offset = offset;
    // SAFETY: `attr` is a valid attribute block whose path outlives the call.
    let fd =
        unsafe { perf_event_open_sys::perf_event_open(&mut attr, pid as libc::pid_t, -1, -1, 0) };
    if fd < 0 {
        return Err(format!(
            "perf_event_open of a uprobe at {offset:#x}: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: a new descriptor, owned by nothing else.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}
