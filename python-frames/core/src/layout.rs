//! Every offset the walkers read, as plain data: built-in tables for 3.8-3.12
//! (measured from each version's internal headers; docs/cpython-frames.md),
//! CPython's own `_Py_DebugOffsets` for 3.13+. `#[repr(C)]` and made of plain
//! integers only (no enums, no padding), so that userspace can put the same
//! struct in a BPF map and the probes read it as is.

use crate::linetable::LineTableKind;

/// An offset that this version does not have.
pub const ABSENT: u64 = u64::MAX;

/// Frame owner values at and above this mark the C-stack/interpreter boundary
/// frames of 3.12+ (`FRAME_OWNED_BY_CSTACK` = 3 in 3.12/3.13,
/// `FRAME_OWNED_BY_INTERPRETER` = 3 and `..._CSTACK` = 4 in 3.14).
pub const ENTRY_OWNER_MIN: u8 = 3;

/// How frames are chained and how the instruction offset is found (stored
/// in `Layout::frame_kind` as its `u32` value).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    /// 3.8/3.9 `PyFrameObject`, `f_lasti` in bytes.
    FrameObjectBytes = 0,
    /// 3.10 `PyFrameObject`, `f_lasti` in code units.
    FrameObjectUnits = 1,
    /// 3.11+ `_PyInterpreterFrame`: instruction pointer into `co_code_adaptive`.
    Interpreter = 2,
}

impl FrameKind {
    /// The kind stored as `code` (unknown values read as `Interpreter`, the
    /// kind of every version after 3.10).
    pub const fn from_code(code: u32) -> FrameKind {
        match code {
            0 => FrameKind::FrameObjectBytes,
            1 => FrameKind::FrameObjectUnits,
            _ => FrameKind::Interpreter,
        }
    }
}

/// Offsets (bytes) for one CPython minor version on x86-64.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub major: u32,
    pub minor: u32,
    /// A `FrameKind` as `u32` (read it with `frame_kind()`).
    pub frame_kind: u32,
    /// A `LineTableKind` as `u32` (read it with `linetable()`).
    pub linetable_kind: u32,
    /// `_PyRuntime._finalizing` (a thread-state pointer, non-NULL once finalizing).
    pub runtime_finalizing: u64,
    pub runtime_interpreters_head: u64,
    pub interp_threads_head: u64,
    /// 3.14: `interp->_code_object_generation`, bumped at every code-object dealloc.
    pub interp_code_object_generation: u64,
    pub tstate_next: u64,
    /// `frame` (3.8-3.10), `cframe` (3.11, 3.12) or `current_frame` (3.13+).
    pub tstate_frame: u64,
    /// `_PyCFrame.current_frame` (3.11, 3.12), else `ABSENT`.
    pub cframe_current_frame: u64,
    pub tstate_thread_id: u64,
    pub tstate_native_thread_id: u64,
    pub frame_code: u64,
    pub frame_previous: u64,
    /// `f_lasti` (int) up to 3.10; `prev_instr`/`instr_ptr` (pointer) after.
    pub frame_instr: u64,
    /// 3.12+ `owner` (3.11 marks entry frames with `is_entry` instead).
    pub frame_owner: u64,
    /// 3.11 `is_entry`.
    pub frame_is_entry: u64,
    pub code_filename: u64,
    pub code_name: u64,
    pub code_qualname: u64,
    pub code_firstlineno: u64,
    pub code_linetable: u64,
    pub code_adaptive: u64,
    pub object_type: u64,
    pub unicode_length: u64,
    pub unicode_state: u64,
    /// Where the characters of a compact ASCII string start (`sizeof(PyASCIIObject)`).
    pub unicode_ascii_data: u64,
    /// Where a compact non-ASCII string's characters (or a legacy string's data
    /// pointer) start (`sizeof(PyCompactUnicodeObject)`).
    pub unicode_compact_data: u64,
    pub bytes_size: u64,
    pub bytes_data: u64,
    /// Mask applied to `f_executable` (3.14 tags the low bits of stack references).
    pub code_pointer_mask: u64,
}

// Plain integers without padding: every byte pattern is a valid `Layout`, as
// a BPF map value must be.
const _: () = assert!(core::mem::size_of::<Layout>() == 4 * 4 + 28 * 8);

/// Why a `Layout` could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// Not a version this crate knows.
    Unsupported { major: u32, minor: u32 },
    /// `_PyRuntime` does not start with `_Py_DebugOffsets` ("xdebugpy").
    NoDebugOffsets,
    /// A free-threaded (no-GIL) build, whose frames this walker does not read.
    FreeThreaded,
}

// Written by hand rather than with thiserror: this crate has no dependencies,
// so that the BPF build compiles nothing it does not use.
impl core::fmt::Display for LayoutError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LayoutError::Unsupported { major, minor } => write!(
                f,
                "CPython {major}.{minor} is not supported (supported: 3.8 to 3.14)"
            ),
            LayoutError::NoDebugOffsets => {
                f.write_str("_PyRuntime does not start with CPython's debug offsets")
            }
            LayoutError::FreeThreaded => {
                f.write_str("free-threaded CPython builds are not supported")
            }
        }
    }
}

impl core::error::Error for LayoutError {}

/// The `_Py_DebugOffsets` cookie.
pub const DEBUG_OFFSETS_COOKIE: &[u8; 8] = b"xdebugpy";

/// Bytes of `_Py_DebugOffsets` that `from_debug_offsets` reads (3.14's groups
/// up to `code_object` are the longest).
pub const DEBUG_OFFSETS_PREFIX: usize = 8 * 60;

impl Layout {
    /// The built-in table for 3.8-3.12.
    pub fn builtin(major: u32, minor: u32) -> Result<Layout, LayoutError> {
        let base = |minor| Layout {
            major,
            minor,
            frame_kind: FrameKind::FrameObjectBytes as u32,
            linetable_kind: LineTableKind::for_version(major, minor) as u32,
            runtime_finalizing: 16,
            runtime_interpreters_head: 32,
            interp_threads_head: 8,
            interp_code_object_generation: ABSENT,
            tstate_next: 8,
            tstate_frame: 24,
            cframe_current_frame: ABSENT,
            tstate_thread_id: 176,
            tstate_native_thread_id: ABSENT,
            frame_code: 32,
            frame_previous: 24,
            frame_instr: 104,
            frame_owner: ABSENT,
            frame_is_entry: ABSENT,
            code_filename: 104,
            code_name: 112,
            code_qualname: ABSENT,
            code_firstlineno: 40,
            code_linetable: 120,
            code_adaptive: ABSENT,
            object_type: 8,
            unicode_length: 16,
            unicode_state: 32,
            unicode_ascii_data: 48,
            unicode_compact_data: 72,
            bytes_size: 16,
            bytes_data: 32,
            code_pointer_mask: !0,
        };
        match (major, minor) {
            (3, 8) | (3, 9) => Ok(base(minor)),
            (3, 10) => Ok(Layout {
                frame_kind: FrameKind::FrameObjectUnits as u32,
                frame_instr: 96,
                ..base(minor)
            }),
            (3, 11) => Ok(Layout {
                frame_kind: FrameKind::Interpreter as u32,
                runtime_finalizing: 24,
                runtime_interpreters_head: 40,
                interp_threads_head: 16,
                tstate_frame: 56,
                cframe_current_frame: 8,
                tstate_thread_id: 152,
                tstate_native_thread_id: 160,
                frame_code: 32,
                frame_previous: 48,
                frame_instr: 56,
                frame_is_entry: 68,
                code_filename: 112,
                code_name: 120,
                code_qualname: 128,
                code_firstlineno: 72,
                code_linetable: 136,
                code_adaptive: 184,
                ..base(minor)
            }),
            (3, 12) => Ok(Layout {
                frame_kind: FrameKind::Interpreter as u32,
                runtime_finalizing: 24,
                runtime_interpreters_head: 40,
                interp_threads_head: 72,
                tstate_frame: 56,
                cframe_current_frame: 0,
                tstate_thread_id: 136,
                tstate_native_thread_id: 144,
                frame_code: 0,
                frame_previous: 8,
                frame_instr: 56,
                frame_owner: 70,
                code_filename: 112,
                code_name: 120,
                code_qualname: 128,
                code_firstlineno: 68,
                code_linetable: 136,
                code_adaptive: 192,
                unicode_ascii_data: 40,
                unicode_compact_data: 56,
                ..base(minor)
            }),
            _ => Err(LayoutError::Unsupported { major, minor }),
        }
    }

    /// 3.13 and 3.14, from the start of `_PyRuntime` (at least
    /// `DEBUG_OFFSETS_PREFIX` bytes, read from memory or the `.PyRuntime` section).
    pub fn from_debug_offsets(bytes: &[u8]) -> Result<Layout, LayoutError> {
        if bytes.len() < DEBUG_OFFSETS_PREFIX || !has_debug_offsets(bytes) {
            return Err(LayoutError::NoDebugOffsets);
        }
        // Every slot read below lies inside the prefix checked above; a
        // missing one would read as ABSENT rather than panic.
        let slot = |index: usize| debug_offsets_slot(bytes, index).unwrap_or(ABSENT);
        let (major, minor) = version_of_hex(slot(1) as u32);
        if slot(2) != 0 {
            return Err(LayoutError::FreeThreaded);
        }
        // Slot of the first `thread_state` field; 3.14 has three more
        // `interpreter_state` fields (threads_main, code_object_generation,
        // tlbc_generation) and two more `interpreter_frame` fields.
        let (thread, frame_extra, code_generation) = match (major, minor) {
            (3, 13) => (19, 0, ABSENT),
            (3, 14) => (22, 2, slot(20)),
            _ => return Err(LayoutError::Unsupported { major, minor }),
        };
        let frame = thread + 9;
        let code = frame + 6 + frame_extra;
        Ok(Layout {
            major,
            minor,
            frame_kind: FrameKind::Interpreter as u32,
            linetable_kind: LineTableKind::Locations as u32,
            runtime_finalizing: slot(4),
            runtime_interpreters_head: slot(5),
            interp_threads_head: slot(9),
            interp_code_object_generation: code_generation,
            tstate_next: slot(thread + 2),
            tstate_frame: slot(thread + 4),
            cframe_current_frame: ABSENT,
            tstate_thread_id: slot(thread + 5),
            tstate_native_thread_id: slot(thread + 6),
            frame_code: slot(frame + 2),
            frame_previous: slot(frame + 1),
            frame_instr: slot(frame + 3),
            frame_owner: slot(frame + 5),
            frame_is_entry: ABSENT,
            code_filename: slot(code + 1),
            code_name: slot(code + 2),
            code_qualname: slot(code + 3),
            code_linetable: slot(code + 4),
            code_firstlineno: slot(code + 5),
            code_adaptive: slot(code + 9),
            object_type: 8,
            unicode_length: 16,
            unicode_state: 32,
            unicode_ascii_data: 40,
            unicode_compact_data: 56,
            bytes_size: 16,
            bytes_data: 32,
            // Py_TAG_BITS is 3 in the default (GIL) build.
            code_pointer_mask: if minor >= 14 { !3 } else { !0 },
        })
    }

    /// The layout of the interpreter whose `_PyRuntime` starts with
    /// `runtime_head` (at least `DEBUG_OFFSETS_PREFIX` bytes): from its debug
    /// offsets on 3.13+, else the built-in table of the version `version` finds.
    pub fn for_runtime<E: From<LayoutError>>(
        runtime_head: &[u8],
        version: impl FnOnce() -> Result<(u32, u32), E>,
    ) -> Result<Layout, E> {
        if has_debug_offsets(runtime_head) {
            return Ok(Layout::from_debug_offsets(runtime_head)?);
        }
        let (major, minor) = version()?;
        Ok(Layout::builtin(major, minor)?)
    }

    /// How this version chains frames and records the instruction.
    pub const fn frame_kind(&self) -> FrameKind {
        FrameKind::from_code(self.frame_kind)
    }

    /// The line-table format of this version's code objects.
    pub const fn linetable(&self) -> LineTableKind {
        LineTableKind::from_code(self.linetable_kind)
    }
}

/// Word `index` of `_Py_DebugOffsets` (every field is a `u64`; the cookie
/// is word 0), read from the start of `_PyRuntime`, if `bytes` holds it.
pub fn debug_offsets_slot(bytes: &[u8], index: usize) -> Option<u64> {
    let word = bytes.get(index * 8..index * 8 + 8)?;
    Some(u64::from_le_bytes(word.try_into().ok()?))
}

/// Whether the start of `_PyRuntime` is `_Py_DebugOffsets` (3.13+).
fn has_debug_offsets(runtime_head: &[u8]) -> bool {
    runtime_head.starts_with(DEBUG_OFFSETS_COOKIE)
}

/// `(major, minor)` of a `PY_VERSION_HEX` value.
pub fn version_of_hex(hex: u32) -> (u32, u32) {
    (hex >> 24, (hex >> 16) & 0xff)
}

/// `Some(offset)` unless the field is `ABSENT`.
pub fn present(offset: u64) -> Option<u64> {
    (offset != ABSENT).then_some(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_tables_cover_3_8_to_3_12_only() {
        for minor in 8..=12 {
            let layout = Layout::builtin(3, minor).unwrap();
            assert_eq!(layout.linetable(), LineTableKind::for_version(3, minor));
        }
        assert_eq!(
            Layout::builtin(3, 13),
            Err(LayoutError::Unsupported {
                major: 3,
                minor: 13
            })
        );
    }

    #[test]
    fn debug_offsets_need_the_cookie() {
        let bytes = [0u8; DEBUG_OFFSETS_PREFIX];
        assert_eq!(
            Layout::from_debug_offsets(&bytes),
            Err(LayoutError::NoDebugOffsets)
        );
    }
}
