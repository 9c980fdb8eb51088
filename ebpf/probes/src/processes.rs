//! The pid set: the processes whose allocations are recorded, keyed by tgid.
//! Userspace inserts the processes it attaches to; with `FOLLOW_FORK` (or
//! `FOLLOW_EXEC`: a child may exec) the fork tracepoint adds their children,
//! and the exit tracepoint removes the entries of exiting tasks.

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_send_signal},
    macros::{map, tracepoint, uprobe},
    maps::HashMap,
    programs::{ProbeContext, TracePointContext},
};
use memray_ebpf_common::execs::ExecNotice;
use memray_ebpf_common::{
    TrackedProcess, EXIT_PID_OFFSET, FORK_CHILD_PID_OFFSET, SYSCALL_EXIT_RET_OFFSET,
};

use crate::allocators::PENDING;
use crate::execs::notify;
use crate::python_stack::{PROCESS_WALKS, PYTHON_TARGETS};

#[map]
pub static PROCESSES: HashMap<u32, TrackedProcess> = HashMap::with_max_entries(64 * 1024, 0);

/// `sched_process_fork` runs in the parent. Its `child_pid` is a tid: for a
/// new thread of a followed process the entries are useless but harmless (no
/// process has that tgid while the thread lives) and go when it exits.
///
/// The child is a copy of the parent's memory, so the parent's interpreter
/// entries hold for it too: copied here, its stacks are walked from its first
/// allocation (registering it from userspace would miss those made before).
/// A followed child is not recorded until its own probes are placed (the
/// parent's are for the parent alone): [`process_cloned`] stops it for that.
#[tracepoint]
pub fn process_fork(ctx: TracePointContext) -> u32 {
    let parent = (bpf_get_current_pid_tgid() >> 32) as u32;
    // SAFETY: the value is copied out at once.
    let Some(process) = (unsafe { PROCESSES.get(parent) }).copied() else {
        return 0;
    };
    if process.flags & (TrackedProcess::FOLLOW_FORK | TrackedProcess::FOLLOW_EXEC) == 0 {
        return 0;
    }
    // SAFETY: the offset is the field's in the tracepoint's format (checked by userspace).
    if let Ok(child) = unsafe { ctx.read_at::<u32>(FORK_CHILD_PID_OFFSET) } {
        let mut process = process;
        if process.flags & TrackedProcess::FOLLOW_FORK != 0 {
            process.flags &= !TrackedProcess::RECORDED;
        }
        let _ = PROCESSES.insert(child, process, 0);
        // SAFETY: the values are map memory, copied by the insert at once.
        if let Some(target) = unsafe { PYTHON_TARGETS.get(parent) } {
            let _ = PYTHON_TARGETS.insert(child, target, 0);
        }
        // SAFETY: as above.
        if let Some(walk) = unsafe { PROCESS_WALKS.get(parent) } {
            let _ = PROCESS_WALKS.insert(child, walk, 0);
        }
    }
    0
}

/// The exits of the system calls that make processes, seen in the new child
/// (return value 0) before it runs an instruction of its own: a new process
/// (not a thread) of a process whose forks are followed is stopped
/// (SIGSTOP) and announced in the `EXECS` ring; userspace places its probes,
/// records it and lets it go on (SIGCONT).
#[tracepoint]
pub fn process_cloned(ctx: TracePointContext) -> u32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    if pid_tgid as u32 != tgid {
        return 0;
    }
    // SAFETY: the offset is the field's in the tracepoint's format (checked by userspace).
    if unsafe { ctx.read_at::<i64>(SYSCALL_EXIT_RET_OFFSET) } != Ok(0) {
        return 0;
    }
    // SAFETY: the value is copied out at once.
    let Some(process) = (unsafe { PROCESSES.get(tgid) }).copied() else {
        return 0;
    };
    let awaits_probes = process.flags & TrackedProcess::FOLLOW_FORK != 0
        && process.flags & TrackedProcess::RECORDED == 0;
    if awaits_probes && notify(tgid, ExecNotice::FORKED) {
        // SAFETY: no memory arguments; the signal goes to the current process.
        unsafe { bpf_send_signal(SIGSTOP) };
    }
    0
}

/// A process leaves the set, and its interpreter the stack walk's maps,
/// when its main thread exits (the pid may be reused); an exiting thread's
/// pending call goes with it.
#[tracepoint]
pub fn process_exit(ctx: TracePointContext) -> u32 {
    let _ = PENDING.remove(bpf_get_current_pid_tgid());
    // SAFETY: the offset is the field's in the tracepoint's format (checked by userspace).
    if let Ok(task) = unsafe { ctx.read_at::<u32>(EXIT_PID_OFFSET) } {
        let _ = PROCESSES.remove(task);
        let _ = PYTHON_TARGETS.remove(task);
        let _ = PROCESS_WALKS.remove(task);
    }
    0
}

pub const SIGSTOP: u32 = 19;

/// Stops a tracked process where its interpreter starts running the program
/// and where it starts to finalize: userspace registers the interpreter, or
/// takes in the records while the code objects they name are alive, then
/// lets it go on (SIGCONT).
#[uprobe]
pub fn interpreter_hold(_ctx: ProbeContext) -> u32 {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    // SAFETY: only the presence of the entry is read.
    if unsafe { PROCESSES.get(tgid) }.is_some() {
        // SAFETY: no memory arguments; the signal goes to the current process.
        unsafe { bpf_send_signal(SIGSTOP) };
    }
    0
}

/// Stops a followed child (not the attached process itself) at libc's
/// `_exit`: userspace takes in its records and reads its code objects while
/// its memory is still there, then lets it go on (SIGCONT). A child that
/// allocates and exits between two drains would otherwise leave records
/// nothing can name.
#[uprobe]
pub fn child_exit_hold(_ctx: ProbeContext) -> u32 {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    // SAFETY: the value is copied out at once.
    let Some(process) = (unsafe { PROCESSES.get(tgid) }).copied() else {
        return 0;
    };
    if process.origin != u64::from(tgid) {
        // SAFETY: no memory arguments; the signal goes to the current process.
        unsafe { bpf_send_signal(SIGSTOP) };
    }
    0
}
