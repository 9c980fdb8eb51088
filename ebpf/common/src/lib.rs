//! Names and layouts shared by the eBPF probes and the userspace loader.
#![no_std]

pub mod python_stack;

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
/// Program names: the probes' function names in the eBPF object.
pub const MALLOC_ENTRY_PROGRAM: &str = "malloc_entry";
pub const MALLOC_RETURN_PROGRAM: &str = "malloc_return";
pub const FREE_ENTRY_PROGRAM: &str = "free_entry";
