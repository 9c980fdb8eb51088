//! The frame walk: from a thread state to `(code object, instruction offset,
//! is entry)` per frame, innermost first, for every supported version.
//!
//! `FrameReader::step` decodes one frame; `walk_stack` loops over it. Both
//! allocate nothing, never recurse and have no panicking path, so the same
//! step serves the in-process tracker (inside `malloc`), remote reads and a
//! BPF probe (which bounds its own loop and resumes it across tail calls).

use crate::layout::{present, FrameKind, Layout, ENTRY_OWNER_MIN};
use crate::memory::{Memory, MemoryExt};

/// What a walker needs to know about one interpreter in one address space.
/// Plain integers, like `Layout`: a BPF map value.
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

const _: () = assert!(core::mem::size_of::<Target>() == core::mem::size_of::<Layout>() + 2 * 8);

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
#[inline(always)]
pub fn top_frame<M: Memory + ?Sized>(mem: &M, layout: &Layout, tstate: u64) -> Option<u64> {
    let frame_or_cframe = mem.read_u64(tstate.wrapping_add(layout.tstate_frame))?;
    match present(layout.cframe_current_frame) {
        Some(current) if frame_or_cframe != 0 => {
            mem.read_u64(frame_or_cframe.wrapping_add(current))
        }
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
    let reader = FrameReader::new(target);
    // Bounds the loop even if boundary frames form a cycle.
    let mut budget = out.len().saturating_mul(2).saturating_add(64);
    while frame != 0 {
        if budget == 0 {
            walk.broken = true;
            break;
        }
        budget -= 1;
        let Some(step) = reader.step(mem, frame) else {
            walk.broken = true;
            break;
        };
        if step.is_boundary {
            // 3.12+: the frame inside this boundary entered the eval loop.
            let inner = walk.depth.checked_sub(1).and_then(|last| out.get_mut(last));
            if let Some(inner) = inner {
                inner.is_entry = true;
            }
        } else if let Some(raw) = step.python_frame {
            let Some(slot) = out.get_mut(walk.depth) else {
                walk.truncated = true;
                break;
            };
            *slot = raw;
            walk.depth += 1;
        }
        frame = step.previous;
    }
    walk
}

/// One frame, decoded for its version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameStep {
    /// The caller's frame (0 at the outermost one): where the next step reads.
    pub previous: u64,
    /// A 3.12+ shim / entry frame owned by the C stack or the interpreter
    /// (`owner >= ENTRY_OWNER_MIN`): the Python frame inside it is an entry frame.
    pub is_boundary: bool,
    /// `None` for frames to skip: boundaries, incomplete frames, or frames
    /// whose executable is not a code object.
    pub python_frame: Option<RawFrame>,
}

impl FrameStep {
    fn skipped(previous: u64, is_boundary: bool) -> FrameStep {
        FrameStep {
            previous,
            is_boundary,
            python_frame: None,
        }
    }
}

/// What the walker reads of each frame, decided once per walk from the target.
/// Each field is read on its own: copying a frame's whole prefix and then
/// reading words back out of the copy stalls on store forwarding, and that
/// was most of the in-process walk's cost.
#[derive(Clone, Copy, Debug)]
pub struct FrameReader {
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

impl FrameReader {
    #[inline(always)]
    pub fn new(target: &Target) -> FrameReader {
        let layout = &target.layout;
        FrameReader {
            previous: layout.frame_previous,
            code: layout.frame_code,
            code_pointer_mask: layout.code_pointer_mask,
            instr: layout.frame_instr,
            owner: present(layout.frame_owner),
            is_entry: present(layout.frame_is_entry),
            instr_is_pointer: layout.frame_kind() == FrameKind::Interpreter,
            code_adaptive: layout.code_adaptive,
            object_type: layout.object_type,
            code_type: target.code_type,
        }
    }

    /// Decodes the frame at `frame`: its caller, and its code object and
    /// instruction offset unless it is one to skip. `None` if a field that
    /// decides the walk cannot be read.
    #[inline(always)]
    pub fn step<M: Memory + ?Sized>(&self, mem: &M, frame: u64) -> Option<FrameStep> {
        let previous = mem.read_u64(frame.wrapping_add(self.previous))?;
        if let Some(owner) = self.owner {
            if mem.read_u8(frame.wrapping_add(owner))? >= ENTRY_OWNER_MIN {
                return Some(FrameStep::skipped(previous, true));
            }
        }
        // 3.14 tags the low bits of `f_executable` (a stack reference).
        let code = mem.read_u64(frame.wrapping_add(self.code))? & self.code_pointer_mask;
        let instruction_offset = if self.instr_is_pointer {
            let first_instruction = code.wrapping_add(self.code_adaptive);
            let delta = mem
                .read_u64(frame.wrapping_add(self.instr))?
                .wrapping_sub(first_instruction) as i64;
            // Incomplete 3.11+ frames (pushed, not started) have no instruction yet.
            if delta < 0 {
                return Some(FrameStep::skipped(previous, false));
            }
            delta
        } else {
            i64::from(mem.read_i32(frame.wrapping_add(self.instr))?)
        };
        let is_code = code != 0
            && (self.code_type == 0
                || mem.read_u64(code.wrapping_add(self.object_type)) == Some(self.code_type));
        let is_entry = match self.is_entry {
            Some(offset) => mem.read_u8(frame.wrapping_add(offset))? != 0,
            None => !self.instr_is_pointer,
        };
        Some(FrameStep {
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
