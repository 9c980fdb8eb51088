//! Code objects: names, file name, first line and raw line table, read from
//! memory without calling into CPython; and a cache keyed by address.

use std::collections::HashMap;
use std::sync::Arc;

use crate::fingerprint::CodeFingerprint;
use crate::layout::{present, Layout};
use crate::linetable::line_number;
use crate::memory::{Memory, MemoryExt};

/// Bound on strings read from a target (names and paths are far shorter).
const MAX_STRING_CHARS: u64 = 1 << 16;
/// Bound on line tables.
const MAX_LINETABLE_BYTES: i64 = 1 << 24;

/// What a code object says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeInfo {
    pub name: String,
    /// `co_qualname` (3.11+).
    pub qualname: Option<String>,
    pub filename: String,
    pub firstlineno: i32,
    /// `co_lnotab` (≤ 3.9) or `co_linetable` (3.10+), as memray's CODE_OBJECT record carries it.
    pub linetable: Vec<u8>,
}

impl CodeInfo {
    /// The line at a frame's instruction offset.
    pub fn line(&self, layout: &Layout, instruction_offset: i64) -> i32 {
        line_number(
            layout.linetable(),
            &self.linetable,
            self.firstlineno,
            instruction_offset,
        )
    }
}

/// A code object (or one of its strings) could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot read the code object at {address:#x}")]
pub struct UnreadableCode {
    pub address: u64,
}

/// Reads the code object at `code`. Its names must be strings without a
/// NUL (what `compile` makes): a code object read from another process
/// after it died still has its fields, but their strings may already be
/// other objects.
pub fn read_code<M: Memory + ?Sized>(
    mem: &M,
    layout: &Layout,
    code: u64,
) -> Result<CodeInfo, UnreadableCode> {
    let fail = UnreadableCode { address: code };
    let pointer = |offset: u64| mem.read_u64(code + offset).ok_or(fail);
    let name = |offset: u64| {
        read_str(mem, layout, pointer(offset)?)
            .filter(|name| !name.contains('\0'))
            .ok_or(fail)
    };
    let qualname = match present(layout.code_qualname) {
        Some(offset) => Some(name(offset)?),
        None => None,
    };
    Ok(CodeInfo {
        name: name(layout.code_name)?,
        qualname,
        filename: name(layout.code_filename)?,
        firstlineno: mem.read_i32(code + layout.code_firstlineno).ok_or(fail)?,
        linetable: read_bytes(mem, layout, pointer(layout.code_linetable)?).ok_or(fail)?,
    })
}

/// Decodes a `str` object (compact ASCII, compact latin-1/UCS-2/UCS-4, or a
/// legacy string with a separate buffer).
pub fn read_str<M: Memory + ?Sized>(mem: &M, layout: &Layout, object: u64) -> Option<String> {
    let state = mem.read_u32(object + layout.unicode_state)?;
    let length = mem.read_u64(object + layout.unicode_length)?;
    if length > MAX_STRING_CHARS {
        return None;
    }
    let kind = (state >> 2) & 7;
    let compact = state & (1 << 5) != 0;
    let ascii = state & (1 << 6) != 0;
    let data = match (compact, ascii) {
        (true, true) => object + layout.unicode_ascii_data,
        (true, false) => object + layout.unicode_compact_data,
        (false, _) => mem.read_u64(object + layout.unicode_compact_data)?,
    };
    let width = match kind {
        1 | 2 | 4 => kind as usize,
        _ => return None,
    };
    let mut raw = vec![0u8; length as usize * width];
    if !mem.read(data, &mut raw) {
        return None;
    }
    match width {
        1 => Some(raw.iter().map(|&b| char::from(b)).collect()),
        2 => {
            let units = raw
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]));
            Some(
                char::decode_utf16(units)
                    .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                    .collect(),
            )
        }
        _ => raw
            .chunks_exact(4)
            .map(|c| char::from_u32(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
    }
}

/// The contents of a `bytes` object.
pub fn read_bytes<M: Memory + ?Sized>(mem: &M, layout: &Layout, object: u64) -> Option<Vec<u8>> {
    let size = mem.read_u64(object + layout.bytes_size)? as i64;
    if !(0..=MAX_LINETABLE_BYTES).contains(&size) {
        return None;
    }
    let mut out = vec![0u8; size as usize];
    mem.read(object + layout.bytes_data, &mut out)
        .then_some(out)
}

/// Code objects by address.
///
/// Addresses are reused once a code object dies, and a new code object can
/// land on the same address with the same name, file and even line-table
/// pointer (compile-call-drop loops do this), so a fingerprint check alone
/// gives wrong lines. The cache therefore has two layers:
/// * the owner must drive invalidation: call `invalidate(addr)` from a
///   code-object destruction hook (in process: `PyCode_AddWatcher` on 3.12+,
///   a wrapper around `PyCode_Type.tp_dealloc` before), or
///   `sync_interpreter_generation` with 3.14's `_code_object_generation`
///   when reading another process;
/// * every lookup also re-checks a cheap fingerprint, which catches most reuse
///   when no hook is available.
///
/// Each invalidation bumps `generation()`: a tracker that has already written
/// stacks naming the old object should make every thread resend its full
/// stack when the generation moves.
#[derive(Debug, Default)]
pub struct CodeCache {
    entries: HashMap<u64, (CodeFingerprint, Arc<CodeInfo>)>,
    generation: u64,
    interpreter_generation: Option<u64>,
}

impl CodeCache {
    pub fn new() -> CodeCache {
        CodeCache::default()
    }

    /// The cached code object at `code`, read (and cached) if new or stale.
    pub fn get_or_read<M: Memory + ?Sized>(
        &mut self,
        mem: &M,
        layout: &Layout,
        code: u64,
    ) -> Result<Arc<CodeInfo>, UnreadableCode> {
        let fingerprint =
            CodeFingerprint::read(mem, layout, code).ok_or(UnreadableCode { address: code })?;
        if let Some((cached, info)) = self.entries.get(&code) {
            if *cached == fingerprint {
                return Ok(Arc::clone(info));
            }
            self.generation += 1;
        }
        let info = Arc::new(read_code(mem, layout, code)?);
        self.entries.insert(code, (fingerprint, Arc::clone(&info)));
        Ok(info)
    }

    /// Forgets the code object at `code` (it is being freed).
    pub fn invalidate(&mut self, code: u64) {
        if self.entries.remove(&code).is_some() {
            self.generation += 1;
        }
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.generation += 1;
    }

    /// Clears the cache if the interpreter's code-object generation moved.
    pub fn sync_interpreter_generation(&mut self, observed: Option<u64>) {
        if observed != self.interpreter_generation {
            if self.interpreter_generation.is_some() {
                self.clear();
            }
            self.interpreter_generation = observed;
        }
    }

    /// Changes whenever a cached entry is dropped.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::SnapshotMemory;

    /// A compact `str` for 3.12+: ASCII data at 40, other kinds at 56.
    fn string(text: &str) -> Vec<u8> {
        let units: Vec<u32> = text.chars().map(u32::from).collect();
        let width = match units.iter().max().copied().unwrap_or(0) {
            0..=0x7f => 0,
            0x80..=0xff => 1,
            0x100..=0xffff => 2,
            _ => 4,
        };
        let state: u32 = (1 << 5)
            | if width == 0 {
                (1 << 6) | (1 << 2)
            } else {
                width << 2
            };
        let mut bytes = vec![0u8; if width == 0 { 40 } else { 56 }];
        bytes[16..24].copy_from_slice(&(units.len() as u64).to_le_bytes());
        bytes[32..36].copy_from_slice(&state.to_le_bytes());
        for unit in units {
            bytes.extend_from_slice(&unit.to_le_bytes()[..width.max(1) as usize]);
        }
        bytes
    }

    fn code_at(memory: &mut SnapshotMemory, layout: &Layout, at: u64, name: u64, first: i32) {
        let mut code = vec![0u8; 208];
        let put = |code: &mut Vec<u8>, offset: u64, value: u64| {
            code[offset as usize..offset as usize + 8].copy_from_slice(&value.to_le_bytes())
        };
        put(&mut code, layout.code_name, name);
        put(&mut code, layout.code_qualname, name);
        put(&mut code, layout.code_filename, 0x5000);
        put(&mut code, layout.code_linetable, 0x6000);
        let first_at = layout.code_firstlineno as usize;
        code[first_at..first_at + 4].copy_from_slice(&first.to_le_bytes());
        memory.insert(at, code);
    }

    fn memory_with_strings() -> SnapshotMemory {
        let mut memory = SnapshotMemory::new();
        memory.insert(0x3000, string("ascii_name"));
        memory.insert(0x4000, string("čřž_λ"));
        memory.insert(0x4800, string("emoji_😀"));
        memory.insert(0x5000, string("/tmp/é.py"));
        let mut table = vec![0u8; 32];
        table[16..24].copy_from_slice(&2u64.to_le_bytes());
        table.extend_from_slice(&[0x80 | (13 << 3), 2]);
        // The NUL after a bytes object's data, and the rest of its block.
        table.resize(48, 0);
        memory.insert(0x6000, table);
        memory
    }

    #[test]
    fn reads_names_of_every_string_kind_and_the_line_table() {
        let layout = Layout::builtin(3, 12).unwrap();
        let mut memory = memory_with_strings();
        code_at(&mut memory, &layout, 0x1000, 0x4000, 7);
        let info = read_code(&memory, &layout, 0x1000).unwrap();
        assert_eq!(info.name, "čřž_λ");
        assert_eq!(info.qualname.as_deref(), Some("čřž_λ"));
        assert_eq!(info.filename, "/tmp/é.py");
        assert_eq!(info.linetable, vec![0x80 | (13 << 3), 2]);
        assert_eq!(info.line(&layout, 0), 8);
        assert_eq!(read_str(&memory, &layout, 0x4800).unwrap(), "emoji_😀");
        assert_eq!(read_str(&memory, &layout, 0x3000).unwrap(), "ascii_name");
        assert_eq!(
            read_code(&memory, &layout, 0x9000),
            Err(UnreadableCode { address: 0x9000 })
        );
    }

    #[test]
    fn cache_notices_a_new_code_object_at_a_reused_address() {
        let layout = Layout::builtin(3, 12).unwrap();
        let mut memory = memory_with_strings();
        code_at(&mut memory, &layout, 0x1000, 0x3000, 7);
        let mut cache = CodeCache::new();
        assert_eq!(
            cache.get_or_read(&memory, &layout, 0x1000).unwrap().name,
            "ascii_name"
        );
        assert_eq!(cache.generation(), 0);
        // Freed, and a different function allocated at the same address.
        code_at(&mut memory, &layout, 0x1000, 0x4000, 7);
        assert_eq!(
            cache.get_or_read(&memory, &layout, 0x1000).unwrap().name,
            "čřž_λ"
        );
        assert_eq!(cache.generation(), 1);
        // Driven by a destruction hook: forgotten even if nothing visible changed.
        cache.invalidate(0x1000);
        assert_eq!((cache.len(), cache.generation()), (0, 2));
        cache.sync_interpreter_generation(Some(5));
        cache.get_or_read(&memory, &layout, 0x1000).unwrap();
        cache.sync_interpreter_generation(Some(6));
        assert!(cache.is_empty());
    }
}
