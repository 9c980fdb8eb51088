//! Allocation probes: a uprobe/uretprobe pair on libc `malloc` and a uprobe on
//! `free`. They count calls and bytes into per-CPU counters; userspace scopes
//! them to one process when it attaches them.
#![no_std]
#![no_main]

use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid,
    macros::{map, uprobe, uretprobe},
    maps::{HashMap, PerCpuArray},
    programs::{ProbeContext, RetProbeContext},
};
use memray_ebpf_common::Counter;

mod python_stack;

#[map]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(Counter::ALL.len() as u32, 0);

/// Size requested by the `malloc` call in flight on each thread (keyed by
/// pid_tgid), consumed by the return probe once the result is known.
#[map]
static PENDING_MALLOC: HashMap<u64, u64> = HashMap::with_max_entries(16 * 1024, 0);

#[uprobe]
pub fn malloc_entry(ctx: ProbeContext) -> u32 {
    let size: u64 = ctx.arg(0).unwrap_or(0);
    // A full table only loses this sample; nothing to report from a probe.
    let _ = PENDING_MALLOC.insert(bpf_get_current_pid_tgid(), size, 0);
    0
}

#[uretprobe]
pub fn malloc_return(ctx: RetProbeContext) -> u32 {
    let thread = bpf_get_current_pid_tgid();
    // SAFETY: the value is copied out before the entry is removed.
    let Some(size) = (unsafe { PENDING_MALLOC.get(thread) }).copied() else {
        return 0;
    };
    let _ = PENDING_MALLOC.remove(thread);
    let address: u64 = ctx.ret();
    if address != 0 {
        add(Counter::MallocCalls, 1);
        add(Counter::MallocBytes, size);
    }
    0
}

#[uprobe]
pub fn free_entry(ctx: ProbeContext) -> u32 {
    let address: u64 = ctx.arg(0).unwrap_or(0);
    if address != 0 {
        add(Counter::FreeCalls, 1);
    }
    0
}

#[inline(always)]
fn add(counter: Counter, amount: u64) {
    if let Some(slot) = COUNTERS.get_ptr_mut(counter.slot()) {
        // SAFETY: per-CPU slot, and a probe is not preempted on its CPU.
        unsafe { *slot += amount };
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

// The helpers used here are GPL-only.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
