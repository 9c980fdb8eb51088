//! A code object's fingerprint: the fields that change when a freed code
//! object's address is reused by a new one, in almost every case. Read with
//! plain integer reads, so a probe can take it at the moment of the stack walk
//! and userspace can compare it with what its cache holds.
//!
//! Pointers alone are not enough: a compile-call-drop loop (a template
//! engine) gets new code objects whose name, file name and line table all
//! land on the addresses of the previous round's, with other line numbers.
//! So the fingerprint also takes the line table's length and its first bytes.

use crate::layout::Layout;
use crate::memory::{Memory, MemoryExt};

/// Bytes of the line table read into the fingerprint (a short function's
/// whole table).
const LINETABLE_HEAD: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeFingerprint {
    name: u64,
    filename: u64,
    linetable: u64,
    firstlineno: i32,
    linetable_size: u64,
    /// The first `LINETABLE_HEAD` bytes of the line table, folded.
    linetable_head: u64,
}

impl CodeFingerprint {
    /// The fingerprint of the code object at `code`.
    #[inline(always)]
    pub fn read<M: Memory + ?Sized>(
        mem: &M,
        layout: &Layout,
        code: u64,
    ) -> Option<CodeFingerprint> {
        let linetable = mem.read_u64(code.wrapping_add(layout.code_linetable))?;
        let linetable_size = mem.read_u64(linetable.wrapping_add(layout.bytes_size))?;
        let data = linetable.wrapping_add(layout.bytes_data);
        let mut linetable_head = 0u64;
        for start in (0..LINETABLE_HEAD as u64).step_by(8) {
            if start >= linetable_size {
                break;
            }
            // Whole words, the last one masked to the table's bytes (a
            // bytes object's data ends with a NUL and sits in a block of
            // 16-byte steps): a read of variable length would be a copy
            // loop the BPF verifier walks for every length.
            let word = mem.read_u64(data.wrapping_add(start))?;
            let kept = linetable_size - start;
            let word = match kept {
                8.. => word,
                _ => word & ((1u64 << (kept * 8)) - 1),
            };
            linetable_head = mix(linetable_head, word);
        }
        Some(CodeFingerprint {
            name: mem.read_u64(code.wrapping_add(layout.code_name))?,
            filename: mem.read_u64(code.wrapping_add(layout.code_filename))?,
            linetable,
            firstlineno: mem.read_i32(code.wrapping_add(layout.code_firstlineno))?,
            linetable_size,
            linetable_head,
        })
    }

    /// The fingerprint folded into one word, for places that carry a fixed
    /// 8 bytes per frame (the BPF probe's stack records).
    #[inline(always)]
    pub fn digest(&self) -> u64 {
        let hash = mix(self.name, self.filename);
        let hash = mix(hash, self.linetable);
        let hash = mix(hash, u64::from(self.firstlineno as u32));
        let hash = mix(hash, self.linetable_size);
        mix(hash, self.linetable_head)
    }
}

#[inline(always)]
fn mix(hash: u64, value: u64) -> u64 {
    (hash ^ value)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .rotate_left(27)
}
