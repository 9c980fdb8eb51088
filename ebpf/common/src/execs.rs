//! Following processes through `exec`: the notices the exec tracepoint sends.

/// A process of the pid set, or any process while userspace watches every
/// exec (`attach --all`), has just run `exec`: sent in the `EXECS` ring
/// buffer. A process of the pid set that follows execs is stopped (SIGSTOP)
/// until userspace has looked at its new program.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecNotice {
    pub tgid: u32,
    /// [`ExecNotice::WATCHED`], [`ExecNotice::TRACKED`],
    /// [`ExecNotice::FORKED`] or [`ExecNotice::LEFT`].
    pub tracked: u32,
}

impl ExecNotice {
    /// Not in the pid set: only watched (`attach --all`).
    pub const WATCHED: u32 = 0;
    /// In the pid set, stopped at its exec.
    pub const TRACKED: u32 = 1;
    /// Not an exec: a new child of a process whose forks are followed,
    /// stopped before its first instruction until its probes are placed.
    pub const FORKED: u32 = 2;
    /// In the pid set without following execs: taken out of it at its exec
    /// (as memray's tracker leaves a process that execs), not stopped. Its
    /// capture ends there.
    pub const LEFT: u32 = 3;
}

/// The ring buffer of [`ExecNotice`]s.
pub const EXECS_MAP: &str = "EXECS";
/// `Array<u32>` with one slot: non-zero to hear of every exec on the machine.
pub const EXEC_WATCH_MAP: &str = "EXEC_WATCH";
pub const PROCESS_EXEC_PROGRAM: &str = "process_exec";
pub const EXEC_TRACEPOINT: (&str, &str) = ("sched", "sched_process_exec");
