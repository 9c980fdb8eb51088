//! A code object's fingerprint: the fields that change when a freed code
//! object's address is reused by a new one, in almost every case. Read with
//! plain integer reads, so a probe can take it at the moment of the stack walk
//! and userspace can compare it with what its cache holds.

use crate::layout::Layout;
use crate::memory::{Memory, MemoryExt};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeFingerprint {
    name: u64,
    filename: u64,
    linetable: u64,
    firstlineno: i32,
}

impl CodeFingerprint {
    /// The fingerprint of the code object at `code`.
    pub fn read<M: Memory + ?Sized>(
        mem: &M,
        layout: &Layout,
        code: u64,
    ) -> Option<CodeFingerprint> {
        Some(CodeFingerprint {
            name: mem.read_u64(code.wrapping_add(layout.code_name))?,
            filename: mem.read_u64(code.wrapping_add(layout.code_filename))?,
            linetable: mem.read_u64(code.wrapping_add(layout.code_linetable))?,
            firstlineno: mem.read_i32(code.wrapping_add(layout.code_firstlineno))?,
        })
    }
}
