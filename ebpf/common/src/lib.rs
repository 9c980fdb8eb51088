//! Names and layouts shared by the eBPF probes and the userspace loader.
#![no_std]

mod allocators;
pub mod code_snapshot;
pub mod execs;
pub mod native_stack;
pub mod python_stack;

pub use allocators::{AllocationEvent, Function, PendingCall, TrackedProcess};
pub use memray_allocators::Allocator;

/// Slots of the per-CPU counters array: one `u64` per CPU per slot, summed by
/// userspace (per-CPU slots need no atomics in the probes).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Successful `malloc` calls (non-NULL result).
    MallocCalls = 0,
    /// Bytes requested by the successful `malloc` calls.
    MallocBytes = 1,
    /// `free` calls with a non-NULL pointer.
    FreeCalls = 2,
}

impl Counter {
    pub const ALL: [Counter; 3] = [
        Counter::MallocCalls,
        Counter::MallocBytes,
        Counter::FreeCalls,
    ];

    pub const fn slot(self) -> u32 {
        self as u32
    }
}

/// Name of the per-CPU counters map (`PerCpuArray<u64>` with `Counter::ALL.len()` slots).
pub const COUNTERS_MAP: &str = "COUNTERS";
/// The pid set: `HashMap<u32 tgid, TrackedProcess>`.
pub const PROCESSES_MAP: &str = "PROCESSES";
/// The allocator calls in flight: `HashMap<u64 pid_tgid, PendingCall>`.
pub const PENDING_MAP: &str = "PENDING";
/// The ring buffer of [`AllocationEvent`]s.
pub const EVENTS_MAP: &str = "EVENTS";
/// Records lost because the ring buffer was full: `PerCpuHashMap<u32 tgid, u64>`.
pub const DROPS_MAP: &str = "DROPS";
/// Default size of the ring buffer (bytes, a power of two): 16 MiB holds
/// 349,525 records.
pub const EVENTS_DEFAULT_BYTES: u32 = 16 << 20;

/// Program names: the probes' function names in the eBPF object.
pub const ALLOCATOR_ENTRY_PROGRAM: &str = "allocator_entry";
pub const ALLOCATOR_RETURN_PROGRAM: &str = "allocator_return";
pub const PROCESS_FORK_PROGRAM: &str = "process_fork";
pub const PROCESS_EXIT_PROGRAM: &str = "process_exit";
pub const INTERPRETER_HOLD_PROGRAM: &str = "interpreter_hold";
pub const CHILD_EXIT_HOLD_PROGRAM: &str = "child_exit_hold";
pub const PROCESS_CLONED_PROGRAM: &str = "process_cloned";

/// The tracepoints and the offsets of the fields the probes read (from their
/// `format` files in tracefs; userspace checks them before attaching).
pub const FORK_TRACEPOINT: (&str, &str) = ("sched", "sched_process_fork");
pub const FORK_CHILD_PID_OFFSET: usize = 20;
pub const EXIT_TRACEPOINT: (&str, &str) = ("sched", "sched_process_exit");
pub const EXIT_PID_OFFSET: usize = 24;
/// The system calls that make a process, whose exit [`PROCESS_CLONED_PROGRAM`]
/// sees in the new child.
pub const CLONE_EXIT_TRACEPOINTS: [(&str, &str); 4] = [
    ("syscalls", "sys_exit_clone"),
    ("syscalls", "sys_exit_clone3"),
    ("syscalls", "sys_exit_fork"),
    ("syscalls", "sys_exit_vfork"),
];
pub const SYSCALL_EXIT_RET_OFFSET: usize = 16;
