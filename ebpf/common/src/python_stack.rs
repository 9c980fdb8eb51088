//! The Python stack walk of the probes: what userspace hands in per process,
//! and the records the walk sends back.
//!
//! A walk runs in the program array `STACK_WALK_PROGRAMS`: the probe that
//! wants a stack starts it, slot [`WALK_SLOT`] walks [`FRAMES_PER_PROGRAM`]
//! frames and tail-calls itself until the stack ends, then tail-calls the
//! slot the starting probe named, which finds the stack id in the per-CPU
//! walk state. Identical stacks share an id; a stack's frames are sent once,
//! as a [`StackHeader`] followed by `depth` [`StackFrame`]s in the
//! `PYTHON_STACKS` ring buffer, before any record that uses the id.

/// Frames one program of the walk reads, in a `bpf_loop` (the verifier
/// checks the loop's body once, whatever the count; an unrolled loop of 24
/// took it 0.57 s, a third of `run --ebpf`'s start-up).
pub const FRAMES_PER_PROGRAM: usize = 128;
/// The deepest stack kept (innermost frames); deeper stacks are cut, marked
/// `STATUS_TRUNCATED` and counted. A power of two (the probe masks indexes).
pub const MAX_FRAMES: usize = 512;
/// Programs one walk may chain: enough for `MAX_FRAMES` frames plus the
/// boundary frames of 3.12+ between them, and within the kernel's 33 tail
/// calls per chain with room for the probe that starts the walk.
pub const MAX_WALK_PROGRAMS: u32 = 24;

/// Slots of `STACK_WALK_PROGRAMS`.
pub const WALK_SLOT: u32 = 0;
/// The sampling probe's continuation ([`StackSample`]s).
pub const SAMPLE_DONE_SLOT: u32 = 1;
/// The allocator entry probe's continuation: the stack id goes into the
/// thread's pending call.
pub const ALLOCATION_DONE_SLOT: u32 = 2;
pub const STACK_WALK_SLOTS: u32 = 3;

/// What the walk needs of each profiled process besides its interpreter's
/// `Target` (by tgid).
///
/// The allocating thread's own `PyThreadState` is
/// `*(task->thread.fsbase + tstate_slot)`, the value of CPython's
/// `autoTSSkey` in glibc's in-thread pthread-specific block.
///
/// Where the process's code object deallocation is probed
/// ([`CODE_FREED_PROGRAM`]), the walk remembers the id of each stack under
/// its code objects' addresses: a stack walked again needs no fingerprint
/// read (`CodeFingerprint`, 40 % of a walk). An address names the same code
/// object as long as no code object of the process was freed, so the
/// remembered ids hold for one value of `code_freed_at`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessWalk {
    /// Offset of `thread.fsbase` in the kernel's `task_struct` (from BTF).
    pub task_fsbase: u64,
    /// Offset of the key's value from the thread pointer.
    pub tstate_slot: u64,
    /// 0: the process's code object deallocation is not probed, nothing is
    /// remembered. Else a number of this registration, unique in the session.
    pub remembered: u64,
    /// When the process last freed a code object (`bpf_ktime_get_ns`; 0:
    /// not since it was registered). A time, not a count: each free stores
    /// a value never stored before, with no atomic increment.
    pub code_freed_at: u64,
}

/// One frame, innermost first.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct StackFrame {
    /// Address of the code object.
    pub code: u64,
    /// `CodeFingerprint::digest` of the code object, read during the walk.
    pub fingerprint: u64,
    /// memray's FRAME_PUSH offset.
    pub instruction_offset: i32,
    /// 1 for the first frame of a C-level call into the eval loop.
    pub is_entry: u32,
}

/// Bits of `StackHeader::status`.
pub const STATUS_TRUNCATED: u16 = 1;
/// A frame could not be read: the stack ends there.
pub const STATUS_BROKEN: u16 = 2;
/// The stack's record did not fit in the ring buffer: its id is unknown to userspace.
pub const STATUS_LOST: u16 = 4;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StackHeader {
    /// 0: no Python stack (no interpreter, no thread state, or no frame).
    pub id: u64,
    pub tgid: u32,
    pub depth: u16,
    pub status: u16,
}

/// A stack record as the walk builds it (only `depth` frames are sent).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct StackRecord {
    pub header: StackHeader,
    pub frames: [StackFrame; MAX_FRAMES],
}

/// What the sampling probe reports for each hit.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StackSample {
    pub tgid: u32,
    pub tid: u32,
    pub stack: StackHeader,
}

/// Slots of the per-CPU walk counters (`PYTHON_STACK_COUNTERS`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkCounter {
    /// Walks started.
    Walks = 0,
    /// The process has no interpreter registered.
    NoTarget = 1,
    /// The thread has no Python thread state (or its key is unreadable).
    NoThreadState = 2,
    /// A frame could not be read.
    UnreadableFrame = 3,
    /// Deeper than `MAX_FRAMES` (or than the programs of one walk reach).
    DepthCut = 4,
    /// A new stack's record found the ring buffer full.
    StackLost = 5,
    /// Walks whose stack id was remembered (no fingerprint read).
    Remembered = 6,
}

impl WalkCounter {
    pub const ALL: [WalkCounter; 7] = [
        WalkCounter::Walks,
        WalkCounter::NoTarget,
        WalkCounter::NoThreadState,
        WalkCounter::UnreadableFrame,
        WalkCounter::DepthCut,
        WalkCounter::StackLost,
        WalkCounter::Remembered,
    ];
}

/// Map and program names.
pub const PROCESS_WALKS_MAP: &str = "PROCESS_WALKS";
pub const PYTHON_TARGETS_MAP: &str = "PYTHON_TARGETS";
pub const PYTHON_STACKS_MAP: &str = "PYTHON_STACKS";
pub const PYTHON_STACK_COUNTERS_MAP: &str = "PYTHON_STACK_COUNTERS";
pub const STACK_WALK_PROGRAMS_MAP: &str = "STACK_WALK_PROGRAMS";
pub const STACK_SAMPLES_MAP: &str = "STACK_SAMPLES";
pub const STACK_WALK_PROGRAM: &str = "python_stack_walk";
pub const STACK_SAMPLE_PROGRAM: &str = "python_stack_sample";
pub const STACK_SAMPLE_DONE_PROGRAM: &str = "python_stack_sample_done";
pub const ALLOCATION_STACK_DONE_PROGRAM: &str = "allocation_stack_done";
/// The uprobe on the interpreter's code object deallocation (`ProcessWalk`).
pub const CODE_FREED_PROGRAM: &str = "code_freed";
