//! The Python stack of the calling thread, walked inside the probe.
//!
//! The thread's own `PyThreadState` comes from CPython's `autoTSSkey`, read
//! in glibc's pthread-specific slots off the task's `fsbase` (right even when
//! the thread released the GIL, unlike `_Py_tss_tstate` on 3.12+). Frames are
//! decoded by the frame core's `FrameReader::step`, in a `bpf_loop` callback
//! (the verifier checks one frame's code once, not once per frame),
//! `FRAMES_PER_PROGRAM` per program, into per-CPU scratch; the walk program
//! tail-calls itself to go on and, at the end, tail-calls the slot its
//! starter named. See
//! `memray_ebpf_common::python_stack` for the protocol.
//!
//! A stack's id is a hash of its frames: code object addresses, offsets and
//! the code objects' fingerprints, read only for stacks not remembered under
//! their addresses (`ProcessWalk`).

use core::ffi::c_void;

use aya_ebpf::{
    helpers::{
        self, bpf_get_current_pid_tgid, bpf_get_current_task, bpf_ktime_get_ns, bpf_loop,
        generated::bpf_probe_read_kernel,
    },
    macros::{map, uprobe},
    maps::{HashMap, LruHashMap, PerCpuArray, ProgramArray, RingBuf},
    programs::ProbeContext,
    EbpfContext,
};
use aya_log_ebpf::debug;
use memray_ebpf_common::python_stack::{
    ProcessWalk, StackFrame, StackHeader, StackRecord, StackSample, WalkCounter,
    FRAMES_PER_PROGRAM, MAX_FRAMES, MAX_WALK_PROGRAMS, SAMPLE_DONE_SLOT, STACK_WALK_SLOTS,
    STATUS_BROKEN, STATUS_LOST, STATUS_TRUNCATED, WALK_SLOT,
};
use python_frames_core::{top_frame, CodeFingerprint, FrameReader, Memory, Target};

use crate::code_snapshots;
use crate::memory_windows::{self, WindowedMemory};

/// The interpreter of each profiled process (keyed by tgid), written by
/// userspace from python-frames' remote reader: the offsets the probes walk
/// Python stacks with are the ones every other walker uses.
#[map]
pub static PYTHON_TARGETS: HashMap<u32, Target> = HashMap::with_max_entries(1024, 0);

/// The rest of what the walk needs of each profiled process (by tgid).
#[map]
pub static PROCESS_WALKS: HashMap<u32, ProcessWalk> = HashMap::with_max_entries(1024, 0);

/// New stacks' records (header and frames), sent once per stack id.
#[map]
static PYTHON_STACKS: RingBuf = RingBuf::with_byte_size(4 << 20, 0);

/// Stack ids already sent. An evicted id is only sent again.
#[map]
static SENT_STACKS: LruHashMap<u64, u8> = LruHashMap::with_max_entries(64 * 1024, 0);

/// Ids of sent stacks by the hash of their code addresses and offsets, for
/// one registration and count of freed code objects (`ProcessWalk`). An
/// evicted entry costs one fingerprinted walk.
#[map]
static REMEMBERED_STACKS: LruHashMap<u64, u64> = LruHashMap::with_max_entries(64 * 1024, 0);

#[map]
static PYTHON_STACK_COUNTERS: PerCpuArray<u64> =
    PerCpuArray::with_max_entries(WalkCounter::ALL.len() as u32, 0);

#[map]
static STACK_WALK_PROGRAMS: ProgramArray = ProgramArray::with_max_entries(STACK_WALK_SLOTS, 0);

/// The sampling probe's reports.
#[map]
static STACK_SAMPLES: RingBuf = RingBuf::with_byte_size(1 << 20, 0);

/// One walk in progress on this CPU (a probe runs to its end, tail calls
/// included, without another walk starting on the same CPU).
#[repr(C)]
struct WalkState {
    /// The next frame to decode (0: the stack is walked).
    frame: u64,
    /// Of the frames' addresses and offsets, then of their fingerprints.
    hash: u64,
    /// The key `hash` is remembered under: 0 for none.
    remembered: u64,
    done_slot: u32,
    programs: u32,
    /// The process's interpreter, copied at the start.
    target: Target,
    record: StackRecord,
}

#[map]
static WALKS: PerCpuArray<WalkState> = PerCpuArray::with_max_entries(1, 0);

/// Starts walking the calling thread's Python stack; when it is done,
/// `done_slot` of `STACK_WALK_PROGRAMS` runs and reads it with
/// [`finished_stack`]. Returns only if a tail call failed.
#[inline(always)]
pub fn start<C: EbpfContext>(ctx: &C, done_slot: u32) {
    count(WalkCounter::Walks);
    let Some(state) = WALKS.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: this CPU's walk state; nothing else runs on it until the walk ends.
    let state = unsafe { &mut *state };
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    memory_windows::reset();
    state.done_slot = done_slot;
    state.programs = 0;
    state.hash = mix(0x6d65_6d72_6179_2d72, u64::from(tgid));
    state.record.header = StackHeader {
        id: 0,
        tgid,
        depth: 0,
        status: 0,
    };
    state.frame = match first_frame(tgid, state) {
        Ok(frame) => frame,
        Err(reason) => {
            count(reason);
            debug!(ctx, "python stack of {}: none ({})", tgid, reason as u32);
            0
        }
    };
    let slot = if state.frame == 0 {
        done_slot
    } else {
        WALK_SLOT
    };
    // SAFETY: the slots hold programs of this object, loaded by userspace.
    unsafe { STACK_WALK_PROGRAMS.tail_call(ctx, slot) };
}

/// The stack of the walk that just ended on this CPU (for the done slot).
#[inline(always)]
pub fn finished_stack() -> Option<StackHeader> {
    WALKS.get(0).map(|state| state.record.header)
}

/// The innermost frame of the calling thread, through its own thread state;
/// its interpreter is copied into the walk's `target`, and the key of its
/// remembered stacks set.
#[inline(always)]
fn first_frame(tgid: u32, state: &mut WalkState) -> Result<u64, WalkCounter> {
    let target = &mut state.target;
    let source = PYTHON_TARGETS.get_ptr(tgid).ok_or(WalkCounter::NoTarget)?;
    // One helper call: the compiler's copy of a struct this size is a
    // byte-by-byte loop in BPF (2,000 instructions per walk).
    // SAFETY: both are map values of plain integers, the size is theirs;
    // userspace writes targets before attaching and never while a walk runs.
    let copied = unsafe {
        bpf_probe_read_kernel(
            (target as *mut Target).cast(),
            size_of::<Target>() as u32,
            source.cast(),
        )
    };
    if copied != 0 {
        return Err(WalkCounter::NoTarget);
    }
    // SAFETY: as above; `code_freed_at` changes under the walk (an integer).
    let key = unsafe { PROCESS_WALKS.get(tgid) }.ok_or(WalkCounter::NoTarget)?;
    // Read before any frame: a code object freed during the walk is not on
    // the walked stack, whose frames hold theirs.
    state.remembered = match key.remembered {
        0 => 0,
        registration => mix(registration, key.code_freed_at) | 1,
    };
    // SAFETY: bpf_get_current_task returns the current task_struct; the
    // kernel read fails cleanly if the offset were wrong.
    let fsbase = unsafe {
        let task = bpf_get_current_task();
        helpers::bpf_probe_read_kernel((task + key.task_fsbase) as *const u64)
    }
    .map_err(|_| WalkCounter::NoThreadState)?;
    let mut tstate = [0u8; 8];
    if !WindowedMemory.read(fsbase.wrapping_add(key.tstate_slot), &mut tstate) {
        return Err(WalkCounter::NoThreadState);
    }
    let tstate = u64::from_le_bytes(tstate);
    if tstate == 0 {
        return Err(WalkCounter::NoThreadState);
    }
    top_frame(&WindowedMemory, &target.layout, tstate).ok_or(WalkCounter::UnreadableFrame)
}

/// Walks up to `FRAMES_PER_PROGRAM` frames, then goes on in a fresh program
/// or ends the walk.
#[uprobe]
pub fn python_stack_walk(ctx: ProbeContext) -> u32 {
    let Some(state) = WALKS.get_ptr_mut(0) else {
        return 0;
    };
    // SAFETY: this CPU's walk state, started by `start` in this chain.
    let state = unsafe { &mut *state };
    // SAFETY: `walk_frame` has the callback signature bpf_loop expects and
    // takes no context.
    unsafe {
        bpf_loop(
            FRAMES_PER_PROGRAM as u32,
            walk_frame as *mut c_void,
            core::ptr::null_mut(),
            0,
        )
    };
    state.programs += 1;
    if state.frame != 0 {
        if state.programs < MAX_WALK_PROGRAMS {
            // SAFETY: slot WALK_SLOT holds this very program.
            unsafe { STACK_WALK_PROGRAMS.tail_call(&ctx, WALK_SLOT) };
        }
        state.record.header.status |= STATUS_TRUNCATED;
    }
    finish(&ctx, state);
    // SAFETY: the done slot holds a program of this object.
    unsafe { STACK_WALK_PROGRAMS.tail_call(&ctx, state.done_slot) };
    0
}

/// Decodes the walk's next frame: `bpf_loop`'s callback (0 goes on, 1 stops).
extern "C" fn walk_frame(_index: u64, _context: *mut c_void) -> i64 {
    let Some(state) = WALKS.get_ptr_mut(0) else {
        return 1;
    };
    // SAFETY: this CPU's walk state, in the walk program's loop.
    let state = unsafe { &mut *state };
    step_frame(state);
    i64::from(state.frame == 0)
}

#[inline(always)]
fn step_frame(state: &mut WalkState) {
    if state.frame == 0 {
        return;
    }
    let Some(step) = FrameReader::new(&state.target).step(&WindowedMemory, state.frame) else {
        state.record.header.status |= STATUS_BROKEN;
        state.frame = 0;
        return;
    };
    let depth = usize::from(state.record.header.depth);
    if step.is_boundary {
        // 3.12+: the frame inside this boundary entered the eval loop.
        if depth > 0 {
            frame_at(&mut state.record, depth - 1).is_entry = 1;
            state.hash = mix(state.hash, depth as u64);
        }
    } else if let Some(raw) = step.python_frame {
        if depth >= MAX_FRAMES {
            state.record.header.status |= STATUS_TRUNCATED;
            state.frame = 0;
            return;
        }
        let slot = frame_at(&mut state.record, depth);
        slot.code = raw.code;
        slot.fingerprint = 0;
        slot.instruction_offset = raw.instruction_offset as i32;
        slot.is_entry = u32::from(raw.is_entry);
        state.hash = mix(mix(state.hash, raw.code), raw.instruction_offset as u64);
        state.record.header.depth += 1;
    }
    state.frame = step.previous;
}

/// Frame `index` (below `MAX_FRAMES`) of the record. The mask, not a
/// comparison, bounds the index: the verifier follows a mask through the
/// compiler's rewrites, not always a comparison.
#[inline(always)]
fn frame_at(record: &mut StackRecord, index: usize) -> &mut StackFrame {
    const _: () = assert!(MAX_FRAMES.is_power_of_two());
    &mut record.frames[index & (MAX_FRAMES - 1)]
}

/// Names the stack and sends its frames if they are new.
#[inline(always)]
fn finish(ctx: &ProbeContext, state: &mut WalkState) {
    let header = &mut state.record.header;
    if header.status & STATUS_BROKEN != 0 {
        count(WalkCounter::UnreadableFrame);
        debug!(
            ctx,
            "python stack of {}: unreadable frame after {}", header.tgid, header.depth
        );
    }
    if header.status & STATUS_TRUNCATED != 0 {
        count(WalkCounter::DepthCut);
        debug!(
            ctx,
            "python stack of {}: cut at {} frames", header.tgid, header.depth
        );
    }
    if header.depth == 0 {
        return;
    }
    state.hash = mix(state.hash, u64::from(header.status));
    let remembered = match state.remembered {
        0 => 0,
        key => mix(state.hash, key),
    };
    if remembered != 0 {
        // SAFETY: the value is copied out at once.
        if let Some(&id) = unsafe { REMEMBERED_STACKS.get(remembered) } {
            header.id = id;
            count(WalkCounter::Remembered);
            return;
        }
    }
    // SAFETY: `fingerprint_frame` has the callback signature bpf_loop
    // expects and takes no context.
    unsafe {
        bpf_loop(
            u32::from(header.depth).min(MAX_FRAMES as u32),
            fingerprint_frame as *mut c_void,
            core::ptr::null_mut(),
            0,
        )
    };
    // Never 0, which means "no stack".
    let header = &mut state.record.header;
    header.id = state.hash | 1;
    let id = header.id;
    if SENT_STACKS.get_ptr(id).is_none() && !send(ctx, state) {
        return;
    }
    if remembered != 0 {
        let _ = REMEMBERED_STACKS.insert(remembered, id, 0);
    }
}

/// Reads the fingerprint of the code object of frame `index` into the
/// record and the hash: `bpf_loop`'s callback (0 goes on).
extern "C" fn fingerprint_frame(index: u64, _context: *mut c_void) -> i64 {
    let Some(state) = WALKS.get_ptr_mut(0) else {
        return 1;
    };
    // SAFETY: this CPU's walk state, in the walk program's loop.
    let state = unsafe { &mut *state };
    let frame = frame_at(&mut state.record, index as usize);
    // The frame holds its code object: it is alive, and the address is its.
    frame.fingerprint = CodeFingerprint::read(&WindowedMemory, &state.target.layout, frame.code)
        .map_or(0, |f| f.digest());
    state.hash = mix(state.hash, frame.fingerprint);
    0
}

/// Sends the stack's record; false (counted) if the ring buffer is full.
#[inline(always)]
fn send(ctx: &ProbeContext, state: &mut WalkState) -> bool {
    let header = &mut state.record.header;
    let size = size_of::<StackHeader>()
        + usize::from(header.depth).min(MAX_FRAMES) * size_of::<StackFrame>();
    let id = header.id;
    // SAFETY: `size` is at most the size of the record, which it reads.
    let bytes =
        unsafe { core::slice::from_raw_parts((&raw const state.record).cast::<u8>(), size) };
    if PYTHON_STACKS.output::<[u8]>(bytes, 0).is_ok() {
        let _ = SENT_STACKS.insert(id, 0, 0);
        return true;
    }
    state.record.header.status |= STATUS_LOST;
    count(WalkCounter::StackLost);
    debug!(
        ctx,
        "python stack of {}: ring buffer full", state.record.header.tgid
    );
    false
}

/// Notes that the process frees a code object: a uprobe on the function
/// behind `PyCode_Type.tp_dealloc` of its interpreter. The stacks remembered
/// so far no longer hold (`ProcessWalk`), and the code object is sent as it
/// is, for the records that hold it and are taken in after it is gone.
#[uprobe]
pub fn code_freed(ctx: ProbeContext) -> u32 {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let Some(walk) = PROCESS_WALKS.get_ptr_mut(tgid) else {
        return 0;
    };
    // SAFETY: a map value, alive while the program runs. A plain store
    // (BPF has no atomic add for this target): two frees on two CPUs at
    // once each store a time never stored before, whichever lands last.
    unsafe { (*walk).code_freed_at = bpf_ktime_get_ns() };
    if let Some(code) = ctx.arg::<u64>(0) {
        code_snapshots::send(tgid, code);
    }
    0
}

/// Samples the Python stack of the thread that called the probed function.
#[uprobe]
pub fn python_stack_sample(ctx: ProbeContext) -> u32 {
    start(&ctx, SAMPLE_DONE_SLOT);
    0
}

/// Reports the sampled stack.
#[uprobe]
pub fn python_stack_sample_done(_ctx: ProbeContext) -> u32 {
    let Some(stack) = finished_stack() else {
        return 0;
    };
    let pid_tgid = bpf_get_current_pid_tgid();
    let sample = StackSample {
        tgid: (pid_tgid >> 32) as u32,
        tid: pid_tgid as u32,
        stack,
    };
    let _ = STACK_SAMPLES.output(sample, 0);
    0
}

#[inline(always)]
fn mix(hash: u64, value: u64) -> u64 {
    (hash ^ value)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .rotate_left(29)
}

#[inline(always)]
fn count(counter: WalkCounter) {
    if let Some(slot) = PYTHON_STACK_COUNTERS.get_ptr_mut(counter as u32) {
        // SAFETY: per-CPU slot, and a probe is not preempted on its CPU.
        unsafe { *slot += 1 };
    }
}
