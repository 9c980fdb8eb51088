//! The frame walk of python-frames-core over recorded memory: synthetic
//! frames for the version-specific cases, and pages recorded from real
//! processes of every installed CPython, walked again offline step by step
//! (the way a BPF probe drives `FrameReader::step`).

use memray_tests::interpreters;
use memray_tests::parked_python::ParkedPython;
use python_frames::walk::top_frame;
use python_frames::{
    thread_states, walk_stack, FrameReader, Layout, PageCache, PythonProcess, RawFrame,
    SnapshotMemory, Target,
};

const TSTATE: u64 = 0x10_000;
const CFRAME: u64 = 0x11_000;
const CODE_TYPE: u64 = 0x12_000;

/// A 3.12 or 3.14 frame: code (maybe tagged) at 0, previous at 8, instr at 56, owner.
fn frame(layout: &Layout, code: u64, previous: u64, units: u64, owner: u8) -> Vec<u8> {
    let mut bytes = vec![0u8; 96];
    let untagged = code & layout.code_pointer_mask;
    let instr = untagged + layout.code_adaptive + 2 * units;
    bytes[0..8].copy_from_slice(&code.to_le_bytes());
    bytes[8..16].copy_from_slice(&previous.to_le_bytes());
    bytes[56..64].copy_from_slice(&instr.to_le_bytes());
    bytes[layout.frame_owner as usize] = owner;
    bytes
}

fn code_object(memory: &mut SnapshotMemory, at: u64) {
    let mut bytes = vec![0u8; 16];
    bytes[8..16].copy_from_slice(&CODE_TYPE.to_le_bytes());
    memory.insert(at, bytes);
}

/// inner (0x20_000) -> shim (owner 3) -> outer (0x22_000) -> NULL.
fn three_frames(layout: Layout, tag: u64) -> (SnapshotMemory, Target) {
    let mut memory = SnapshotMemory::new();
    let mut tstate = vec![0u8; 256];
    let at = layout.tstate_frame as usize;
    tstate[at..at + 8].copy_from_slice(&CFRAME.to_le_bytes());
    memory.insert(TSTATE, tstate);
    memory.insert(CFRAME, 0x20_000u64.to_le_bytes().to_vec());
    code_object(&mut memory, 0x30_000);
    code_object(&mut memory, 0x31_000);
    memory.insert(0x20_000, frame(&layout, 0x30_000 | tag, 0x21_000, 5, 0));
    memory.insert(0x21_000, frame(&layout, 0x31_000, 0x22_000, 0, 3));
    memory.insert(0x22_000, frame(&layout, 0x31_000 | tag, 0, 7, 0));
    let target = Target {
        layout,
        runtime: 0,
        code_type: CODE_TYPE,
    };
    (memory, target)
}

#[test]
fn boundary_frames_are_skipped_and_mark_the_frame_inside_as_entry() {
    let layout = Layout::builtin(3, 12).unwrap();
    let (memory, target) = three_frames(layout, 0);
    let mut out = [RawFrame::default(); 8];
    let walk = walk_stack(&memory, &target, TSTATE, &mut out);
    assert_eq!(walk.depth, 2);
    assert!(!walk.truncated && !walk.broken);
    assert_eq!(
        out[0],
        RawFrame {
            code: 0x30_000,
            instruction_offset: 10,
            is_entry: true
        }
    );
    assert_eq!(out[1].instruction_offset, 14);
}

#[test]
fn deep_stacks_keep_the_innermost_frames() {
    let layout = Layout::builtin(3, 12).unwrap();
    let (memory, target) = three_frames(layout, 0);
    let mut out = [RawFrame::default(); 1];
    let walk = walk_stack(&memory, &target, TSTATE, &mut out);
    assert_eq!((walk.depth, walk.truncated), (1, true));
    assert_eq!(out[0].code, 0x30_000);
}

#[test]
fn tagged_stack_references_are_masked_on_3_14() {
    let layout = Layout {
        code_pointer_mask: !3,
        frame_owner: 74,
        cframe_current_frame: 0,
        ..Layout::builtin(3, 12).unwrap()
    };
    let (memory, target) = three_frames(layout, 1);
    let mut out = [RawFrame::default(); 8];
    let walk = walk_stack(&memory, &target, TSTATE, &mut out);
    assert_eq!(walk.depth, 2);
    assert_eq!((out[0].code, out[1].code), (0x30_000, 0x31_000));
}

#[test]
fn unreadable_frames_end_the_walk_as_broken() {
    let layout = Layout::builtin(3, 12).unwrap();
    let (mut memory, target) = three_frames(layout, 0);
    memory.insert(0x22_000, frame(&layout, 0x31_000, 0xdead_0000, 7, 0));
    let mut out = [RawFrame::default(); 8];
    let walk = walk_stack(&memory, &target, TSTATE, &mut out);
    assert_eq!((walk.depth, walk.broken), (2, true));
}

#[test]
fn recorded_pages_of_real_processes_walk_the_same_offline() {
    for python in interpreters::all_for_tests() {
        let parked = ParkedPython::start(&python.path);
        let process = PythonProcess::attach(parked.pid())
            .unwrap_or_else(|e| panic!("{}: attach: {e}", python.label()));
        let target = *process.target();
        let pages = PageCache::new(*process.memory());
        let threads = thread_states(&pages, &target).expect("thread list");
        let live: Vec<Vec<RawFrame>> = threads
            .iter()
            .map(|thread| walk(&pages, &target, thread.address))
            .collect();
        drop(parked);

        let snapshot = pages.into_snapshot();
        for (thread, live) in threads.iter().zip(&live) {
            assert!(!live.is_empty(), "{}: an empty stack", python.label());
            assert_eq!(
                &walk(&snapshot, &target, thread.address),
                live,
                "{}: walk_stack over the recorded pages",
                python.label()
            );
            assert_eq!(
                &step_by_step(&snapshot, &target, thread.address),
                live,
                "{}: FrameReader::step over the recorded pages",
                python.label()
            );
        }
        eprintln!("{}: {} threads replayed", python.label(), threads.len());
    }
}

fn walk<M: python_frames::Memory>(memory: &M, target: &Target, tstate: u64) -> Vec<RawFrame> {
    let mut out = vec![RawFrame::default(); 1024];
    let walk = walk_stack(memory, target, tstate, &mut out);
    assert!(!walk.truncated && !walk.broken, "{walk:?}");
    out.truncate(walk.depth);
    out
}

/// The walk as a probe writes it: one `step` per frame, the entry mark set on
/// the Python frame inside each boundary.
fn step_by_step(memory: &SnapshotMemory, target: &Target, tstate: u64) -> Vec<RawFrame> {
    let reader = FrameReader::new(target);
    let mut frames: Vec<RawFrame> = Vec::new();
    let mut frame = top_frame(memory, &target.layout, tstate).expect("top frame");
    while frame != 0 {
        let step = reader.step(memory, frame).expect("a readable frame");
        if step.is_boundary {
            if let Some(inner) = frames.last_mut() {
                inner.is_entry = true;
            }
        }
        frames.extend(step.python_frame);
        frame = step.previous;
    }
    frames
}
