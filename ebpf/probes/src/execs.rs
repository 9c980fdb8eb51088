//! Following processes through `exec`. A process of the pid set that follows
//! execs loses its old interpreter's entries (its memory is gone), is not
//! recorded until userspace has placed the probes its new program needs, and
//! is stopped until userspace has looked at its new program (placed the probes
//! that hold a CPython at its start, or found it is not one); userspace hears
//! of it through the `EXECS` ring. Another process of the set leaves it at
//! its exec (its capture ends), except `run`'s program at the exec that
//! starts it. While `EXEC_WATCH` is set (`attach --all`), every other exec
//! on the machine is only reported.

use aya_ebpf::{
    bindings::BPF_RB_FORCE_WAKEUP,
    helpers::{bpf_get_current_pid_tgid, bpf_send_signal},
    macros::{map, tracepoint},
    maps::{Array, RingBuf},
    programs::TracePointContext,
};
use memray_ebpf_common::execs::ExecNotice;
use memray_ebpf_common::TrackedProcess;

use crate::processes::{PROCESSES, SIGSTOP};
use crate::python_stack::{PROCESS_WALKS, PYTHON_TARGETS};

#[map]
static EXECS: RingBuf = RingBuf::with_byte_size(64 * 1024, 0);

#[map]
static EXEC_WATCH: Array<u32> = Array::with_max_entries(1, 0);

#[tracepoint]
pub fn process_exec(_ctx: TracePointContext) -> u32 {
    // After exec the calling thread is the process's leader: pid == tgid.
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    // SAFETY: the value is copied out at once.
    match unsafe { PROCESSES.get(tgid) }.copied() {
        Some(process) if process.flags & TrackedProcess::FOLLOW_EXEC != 0 => {
            let flags = process.flags & !TrackedProcess::RECORDED;
            let _ = PROCESSES.insert(tgid, TrackedProcess { flags, ..process }, 0);
            let _ = PYTHON_TARGETS.remove(tgid);
            let _ = PROCESS_WALKS.remove(tgid);
            if notify(tgid, ExecNotice::TRACKED) {
                // SAFETY: no memory arguments; the signal goes to the current process.
                unsafe { bpf_send_signal(SIGSTOP) };
            }
        }
        Some(process) if process.flags & TrackedProcess::BEFORE_EXEC != 0 => {
            let flags = process.flags & !TrackedProcess::BEFORE_EXEC;
            let _ = PROCESSES.insert(tgid, TrackedProcess { flags, ..process }, 0);
        }
        Some(_) => {
            let _ = PROCESSES.remove(tgid);
            let _ = PYTHON_TARGETS.remove(tgid);
            let _ = PROCESS_WALKS.remove(tgid);
            notify(tgid, ExecNotice::LEFT);
        }
        None => {
            if EXEC_WATCH.get(0).is_some_and(|&watch| watch != 0) {
                notify(tgid, ExecNotice::WATCHED);
            }
        }
    }
    0
}

/// Sends the notice, waking userspace at once (execs are rare). False if
/// the ring is full: then the process is not stopped, nobody would resume it.
#[inline(always)]
pub fn notify(tgid: u32, tracked: u32) -> bool {
    EXECS
        .output::<ExecNotice>(&ExecNotice { tgid, tracked }, BPF_RB_FORCE_WAKEUP as u64)
        .is_ok()
}
