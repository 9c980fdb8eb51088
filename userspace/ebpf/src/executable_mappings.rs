//! The executable mappings a process makes, as they happen: the kernel's
//! perf MMAP2 records (a dummy software event per thread and CPU — the
//! kernel maps no ring of an inherited event for any CPU — inherited by
//! the threads and children created after it; only executable mappings
//! are reported), as bytehound follows a process's libraries. Each record
//! carries the file's name and the time of the mapping on
//! `CLOCK_MONOTONIC` (the probes' clock), so that a library loaded and
//! unloaded between two drains is still known to the allocations it made.
//! perf reports no unmappings: the probes send them (`native.rs`).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

use perf_ring::Ring;

/// One executable mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub pid: u32,
    /// `CLOCK_MONOTONIC` nanoseconds.
    pub time_ns: u64,
    pub address: u64,
    pub file_offset: u64,
    pub path: String,
}

/// The perf events of one process's threads.
pub struct ExecutableMappings {
    rings: Vec<Ring>,
}

impl ExecutableMappings {
    /// Follows the mappings of every thread of process `pid` from now on.
    pub fn follow(pid: u32) -> io::Result<ExecutableMappings> {
        let cpus = aya::util::online_cpus().map_err(|(_, error)| error)?;
        let mut rings = Vec::new();
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
            let Some(tid) = task?.file_name().to_str().and_then(|t| t.parse().ok()) else {
                continue;
            };
            for &cpu in &cpus {
                match Ring::open(tid, cpu) {
                    Ok(ring) => rings.push(ring),
                    // A thread that exited meanwhile.
                    Err(error) if error.raw_os_error() == Some(libc::ESRCH) => break,
                    Err(error) => return Err(error),
                }
            }
        }
        Ok(ExecutableMappings { rings })
    }

    /// Appends the mappings reported since the last call to `out`, in the
    /// order they were made.
    pub fn drain(&mut self, out: &mut Vec<Mapping>) {
        let known = out.len();
        for ring in &mut self.rings {
            ring.drain(|record| out.extend(parse_mmap2(record)));
        }
        out[known..].sort_by_key(|mapping| mapping.time_ns);
    }
}

const PERF_RECORD_MMAP2: u32 = 10;

/// An MMAP2 record after its header: pid, tid, addr, len, pgoff, the file's
/// identity (24 bytes), prot, flags, the NUL-padded file name, then the
/// sample id (pid, tid, time).
fn parse_mmap2(record: &[u8]) -> Option<Mapping> {
    let u32_at = |at: usize| Some(u32::from_le_bytes(record.get(at..at + 4)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_le_bytes(record.get(at..at + 8)?.try_into().ok()?));
    if u32_at(0)? != PERF_RECORD_MMAP2 {
        return None;
    }
    const NAME: usize = 8 + 8 + 3 * 8 + 24 + 8;
    let name = record.get(NAME..record.len().checked_sub(16)?)?;
    let name = &name[..name.iter().position(|&b| b == 0)?];
    Some(Mapping {
        pid: u32_at(8)?,
        time_ns: u64_at(record.len() - 8)?,
        address: u64_at(16)?,
        file_offset: u64_at(32)?,
        path: String::from_utf8_lossy(name).into_owned(),
    })
}

/// perf_event_open and its ring, kept apart from the parsing above.
mod perf_ring {
    use super::*;

    /// Pages of ring per thread and CPU (a power of two): 16 KiB holds
    /// about a hundred mappings between two drains.
    const PAGES: usize = 4;
    const PAGE: usize = 4096;
    /// Offsets in the ring's first page (`struct perf_event_mmap_page`).
    const DATA_HEAD: usize = 1024;
    const DATA_TAIL: usize = 1032;

    /// `struct perf_event_attr` up to `clockid` (`PERF_ATTR_SIZE_VER3`).
    #[repr(C)]
    #[derive(Default)]
    struct Attr {
        kind: u32,
        size: u32,
        config: u64,
        sample_period: u64,
        sample_type: u64,
        read_format: u64,
        flags: u64,
        wakeup_events: u32,
        bp_type: u32,
        config1: u64,
        config2: u64,
        branch_sample_type: u64,
        sample_regs_user: u64,
        sample_stack_user: u32,
        clockid: i32,
    }

    const PERF_TYPE_SOFTWARE: u32 = 1;
    const PERF_COUNT_SW_DUMMY: u64 = 9;
    const PERF_SAMPLE_TID: u64 = 1 << 1;
    const PERF_SAMPLE_TIME: u64 = 1 << 2;
    // Bits of `flags`.
    const INHERIT: u64 = 1 << 1;
    const MMAP: u64 = 1 << 8;
    const SAMPLE_ID_ALL: u64 = 1 << 18;
    const MMAP2: u64 = 1 << 23;
    const USE_CLOCKID: u64 = 1 << 25;
    const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;

    /// One thread's event and its mapped ring.
    pub struct Ring {
        _event: OwnedFd,
        base: *mut u8,
    }

    impl Ring {
        pub fn open(tid: u32, cpu: u32) -> io::Result<Ring> {
            let attr = Attr {
                kind: PERF_TYPE_SOFTWARE,
                size: size_of::<Attr>() as u32,
                config: PERF_COUNT_SW_DUMMY,
                sample_type: PERF_SAMPLE_TID | PERF_SAMPLE_TIME,
                flags: INHERIT | MMAP | SAMPLE_ID_ALL | MMAP2 | USE_CLOCKID,
                clockid: libc::CLOCK_MONOTONIC,
                ..Attr::default()
            };
            // SAFETY: `attr` is a valid perf_event_attr of the size it states, alive for
            // the call; the other arguments are plain integers.
            let fd = unsafe {
                libc::syscall(
                    libc::SYS_perf_event_open,
                    &attr as *const Attr,
                    tid as libc::pid_t,
                    cpu as libc::c_int,
                    -1 as libc::c_int,
                    PERF_FLAG_FD_CLOEXEC,
                )
            };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: a new descriptor that nothing else owns.
            let event = unsafe { OwnedFd::from_raw_fd(fd as i32) };
            // SAFETY: maps the event's ring (a header page and PAGES data pages) from its
            // descriptor; the result is checked before use.
            let base = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    (PAGES + 1) * PAGE,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    fd as i32,
                    0,
                )
            };
            if base == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            Ok(Ring {
                _event: event,
                base: base.cast(),
            })
        }

        /// Calls `record` with each record written since the last drain (header
        /// included), then frees their room.
        pub fn drain(&mut self, mut record: impl FnMut(&[u8])) {
            use std::sync::atomic::{AtomicU64, Ordering};
            // SAFETY: the header page is mapped for as long as `self`; the kernel
            // writes `data_head` and we write `data_tail`, both aligned u64s.
            let (head, tail) = unsafe {
                (
                    &*self.base.add(DATA_HEAD).cast::<AtomicU64>(),
                    &*self.base.add(DATA_TAIL).cast::<AtomicU64>(),
                )
            };
            let end = head.load(Ordering::Acquire);
            let mut at = tail.load(Ordering::Relaxed);
            let size = PAGES * PAGE;
            let mut bytes = Vec::new();
            while at < end {
                bytes.clear();
                let byte = |offset: u64| {
                    // SAFETY: inside the data pages (offset taken modulo their size).
                    unsafe { *self.base.add(PAGE + (offset as usize % size)) }
                };
                let length = u16::from_le_bytes([byte(at + 6), byte(at + 7)]) as u64;
                if length < 8 {
                    break;
                }
                bytes.extend((at..at + length).map(byte));
                record(&bytes);
                at += length;
            }
            tail.store(end, Ordering::Release);
        }
    }

    impl Drop for Ring {
        fn drop(&mut self) {
            // SAFETY: the mapping made in `open`, unmapped once.
            unsafe { libc::munmap(self.base.cast(), (PAGES + 1) * PAGE) };
        }
    }
}
