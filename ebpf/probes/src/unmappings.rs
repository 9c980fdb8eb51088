//! The munmaps of the processes whose native stacks are copied (`--native`),
//! sent through the copies' ring: userspace drops a library unloaded
//! (`dlclose`) from the process's objects at the time it went. Every other
//! process's munmap costs one lookup in the pid set.

use aya_ebpf::{
    bindings::BPF_RB_NO_WAKEUP,
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns},
    macros::tracepoint,
    programs::TracePointContext,
};
use memray_ebpf_common::native_stack::{
    NativeUnmapping, NATIVE_UNMAPPING, NATIVE_UNMAP_ADDR_OFFSET, NATIVE_UNMAP_LEN_OFFSET,
};
use memray_ebpf_common::TrackedProcess;

use crate::native_stack::NATIVE_STACKS;
use crate::processes::PROCESSES;

#[tracepoint]
pub fn native_unmap(ctx: TracePointContext) -> u32 {
    let thread = bpf_get_current_pid_tgid();
    let tgid = (thread >> 32) as u32;
    // SAFETY: the value is read at once.
    let copied = unsafe { PROCESSES.get(tgid) }
        .is_some_and(|process| process.flags & TrackedProcess::NATIVE_STACKS != 0);
    if !copied {
        return 0;
    }
    // SAFETY: the syscall's arguments, at their offsets in the tracepoint's record.
    let arguments = unsafe {
        (
            ctx.read_at::<u64>(NATIVE_UNMAP_ADDR_OFFSET),
            ctx.read_at::<u64>(NATIVE_UNMAP_LEN_OFFSET),
        )
    };
    let (Ok(start), Ok(length)) = arguments else {
        return 0;
    };
    let unmapping = NativeUnmapping {
        tgid,
        tid: thread as u32,
        serial: NATIVE_UNMAPPING,
        _padding: 0,
        // SAFETY: no preconditions.
        time_ns: unsafe { bpf_ktime_get_ns() },
        start,
        length,
    };
    // A full ring loses it: the library stays among the process's objects.
    let _ = NATIVE_STACKS.output::<NativeUnmapping>(&unmapping, BPF_RB_NO_WAKEUP as u64);
    0
}
