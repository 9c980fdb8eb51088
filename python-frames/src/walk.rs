//! The frame walk: from a thread state to `(code object, instruction offset,
//! is entry)` per frame, innermost first, for every supported version. It
//! allocates nothing and writes into the caller's buffer, so it serves the
//! in-process tracker (inside `malloc`) and remote reads alike.

use crate::layout::{present, FrameKind, Layout, ENTRY_OWNER_MIN};
use crate::memory::{Memory, MemoryExt};

/// What a walker needs to know about one interpreter in one address space.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    pub layout: Layout,
    /// Address of `_PyRuntime`.
    pub runtime: u64,
    /// Address of `PyCode_Type` (0 if unknown): frames whose executable is of
    /// another type (3.13+ entry frames hold `None`) are skipped.
    pub code_type: u64,
}

/// One Python frame as the walker sees it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RawFrame {
    /// Address of the `PyCodeObject`.
    pub code: u64,
    /// memray's FRAME_PUSH offset: give it to `linetable::line_number`.
    pub instruction_offset: i64,
    /// The first frame of a C-level call into the eval loop (always true before 3.11).
    pub is_entry: bool,
}

/// How a walk ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StackWalk {
    /// Frames written to the buffer (innermost first).
    pub depth: usize,
    /// The stack had more (outer) frames than the buffer could hold.
    pub truncated: bool,
    /// A frame pointer could not be read: the stack is cut there.
    pub broken: bool,
}

/// The innermost frame of a thread state (0 if it has none).
pub fn top_frame<M: Memory + ?Sized>(mem: &M, layout: &Layout, tstate: u64) -> Option<u64> {
    let frame_or_cframe = mem.read_u64(tstate + layout.tstate_frame)?;
    match present(layout.cframe_current_frame) {
        Some(current) if frame_or_cframe != 0 => mem.read_u64(frame_or_cframe + current),
        _ => Some(frame_or_cframe),
    }
}

/// Walks the stack of `tstate` into `out`, innermost frame first. When the
/// stack is deeper than `out`, the innermost `out.len()` frames are kept and
/// `truncated` is set.
pub fn walk_stack<M: Memory + ?Sized>(
    mem: &M,
    target: &Target,
    tstate: u64,
    out: &mut [RawFrame],
) -> StackWalk {
    let mut walk = StackWalk::default();
    let Some(mut frame) = top_frame(mem, &target.layout, tstate) else {
        walk.broken = true;
        return walk;
    };
    let offsets = FrameOffsets::new(target);
    // Bounds the loop even if boundary frames form a cycle.
    let mut budget = out.len() * 2 + 64;
    while frame != 0 {
        if budget == 0 {
            walk.broken = true;
            break;
        }
        budget -= 1;
        let Some(fields) = offsets.read(mem, frame) else {
            walk.broken = true;
            break;
        };
        if fields.is_boundary {
            // 3.12+: the frame inside this boundary entered the eval loop.
            if let Some(last) = walk.depth.checked_sub(1) {
                out[last].is_entry = true;
            }
        } else if let Some(raw) = fields.python_frame {
            if walk.depth == out.len() {
                walk.truncated = true;
                break;
            }
            out[walk.depth] = raw;
            walk.depth += 1;
        }
        frame = fields.previous;
    }
    walk
}

/// The fields of one frame, decoded for its version.
struct FrameFields {
    previous: u64,
    /// A 3.12+ shim / entry frame owned by the C stack or the interpreter.
    is_boundary: bool,
    /// `None` for frames to skip: incomplete ones, or ones without a code object.
    python_frame: Option<RawFrame>,
}

impl FrameFields {
    fn skipped(previous: u64, is_boundary: bool) -> FrameFields {
        FrameFields {
            previous,
            is_boundary,
            python_frame: None,
        }
    }
}

/// What the walker reads of each frame, decided once per walk from the layout.
/// Each field is read on its own: copying a frame's whole prefix and then
/// reading words back out of the copy stalls on store forwarding, and that
/// was most of the in-process walk's cost.
struct FrameOffsets {
    previous: u64,
    code: u64,
    code_pointer_mask: u64,
    instr: u64,
    /// 3.12+: the frame's `owner` byte.
    owner: Option<u64>,
    /// 3.11: the frame's `is_entry` byte.
    is_entry: Option<u64>,
    /// 3.11+: the instruction pointer is an address inside the code object.
    instr_is_pointer: bool,
    code_adaptive: u64,
    object_type: u64,
    code_type: u64,
}

impl FrameOffsets {
    fn new(target: &Target) -> FrameOffsets {
        let layout = &target.layout;
        FrameOffsets {
            previous: layout.frame_previous,
            code: layout.frame_code,
            code_pointer_mask: layout.code_pointer_mask,
            instr: layout.frame_instr,
            owner: present(layout.frame_owner),
            is_entry: present(layout.frame_is_entry),
            instr_is_pointer: layout.frame_kind == FrameKind::Interpreter,
            code_adaptive: layout.code_adaptive,
            object_type: layout.object_type,
            code_type: target.code_type,
        }
    }

    #[inline(always)]
    fn read<M: Memory + ?Sized>(&self, mem: &M, frame: u64) -> Option<FrameFields> {
        let previous = mem.read_u64(frame + self.previous)?;
        if let Some(owner) = self.owner {
            if mem.read_u8(frame + owner)? >= ENTRY_OWNER_MIN {
                return Some(FrameFields::skipped(previous, true));
            }
        }
        let code = mem.read_u64(frame + self.code)? & self.code_pointer_mask;
        let instruction_offset = if self.instr_is_pointer {
            let first_instruction = code.wrapping_add(self.code_adaptive);
            let delta = mem
                .read_u64(frame + self.instr)?
                .wrapping_sub(first_instruction) as i64;
            // Incomplete 3.11+ frames (pushed, not started) have no instruction yet.
            if delta < 0 {
                return Some(FrameFields::skipped(previous, false));
            }
            delta
        } else {
            i64::from(mem.read_i32(frame + self.instr)?)
        };
        let is_code = code != 0
            && (self.code_type == 0
                || mem.read_u64(code + self.object_type) == Some(self.code_type));
        let is_entry = match self.is_entry {
            Some(offset) => mem.read_u8(frame + offset)? != 0,
            None => !self.instr_is_pointer,
        };
        Some(FrameFields {
            previous,
            is_boundary: false,
            python_frame: is_code.then_some(RawFrame {
                code,
                instruction_offset,
                is_entry,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::SnapshotMemory;

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
}
