//! Code objects as they were when their process freed them: the probe on
//! the interpreter's code object deallocation (`CODE_FREED_PROGRAM`) copies
//! the memory userspace reads to name one (the code object, its name,
//! qualified name and file name strings, its line table's `bytes` object)
//! into a [`CodeSnapshot`] of the `CODE_SNAPSHOTS` ring buffer. Records taken
//! in after the code object died (a module's code, freed once the module is
//! imported) are named from it, not from memory the process has reused.

/// The parts copied, in [`CodeSnapshotHeader::addresses`] order.
pub const CODE_PART: usize = 0;
/// The strings: `co_name`, `co_qualname` (3.11+), `co_filename`.
pub const NAME_PARTS: [usize; 3] = [1, 2, 3];
pub const LINETABLE_PART: usize = 4;
pub const CODE_SNAPSHOT_PARTS: usize = 5;

/// Bytes copied of the code object: past every field read of it.
pub const CODE_OBJECT_BYTES: usize = 256;
/// Bytes copied of a string object at most (a power of two: the probe masks
/// sizes): header and data of a name or path of up to ~450 characters.
pub const CODE_STRING_BYTES: usize = 512;
/// Bytes copied of the line table's `bytes` object at most (a power of
/// two); a larger table is not copied, and its code object stays unnamed.
/// The largest in CPython's standard library and pip (module bodies that
/// build big tables of data, such as `html.entities`) are 37–71 KiB.
pub const CODE_LINETABLE_BYTES: usize = 128 * 1024;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CodeSnapshotHeader {
    pub tgid: u32,
    pub _padding: u32,
    /// `CLOCK_MONOTONIC` nanoseconds at the free.
    pub time_ns: u64,
    pub code: u64,
    /// `CodeFingerprint::digest` of the code object, as the walk reads it.
    pub fingerprint: u64,
    /// Where each part was copied from (0: not copied).
    pub addresses: [u64; CODE_SNAPSHOT_PARTS],
    /// Bytes copied of each part.
    pub lengths: [u32; CODE_SNAPSHOT_PARTS],
    pub _padding2: u32,
}

/// A snapshot as the probe builds it; sent up to the line table's length.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CodeSnapshot {
    pub header: CodeSnapshotHeader,
    pub code: [u8; CODE_OBJECT_BYTES],
    pub strings: [[u8; CODE_STRING_BYTES]; 3],
    pub linetable: [u8; CODE_LINETABLE_BYTES],
}

/// Where each part's bytes start in a [`CodeSnapshot`].
pub const fn part_offset(part: usize) -> usize {
    let strings = size_of::<CodeSnapshotHeader>() + CODE_OBJECT_BYTES;
    match part {
        CODE_PART => size_of::<CodeSnapshotHeader>(),
        LINETABLE_PART => strings + 3 * CODE_STRING_BYTES,
        string => strings + (string - 1) * CODE_STRING_BYTES,
    }
}

/// The ring buffer of [`CodeSnapshot`]s, and the probe's scratch: one
/// snapshot a CPU, in a plain array (a per-CPU value is at most 32 KiB), that
/// userspace sizes at load time.
pub const CODE_SNAPSHOTS_MAP: &str = "CODE_SNAPSHOTS";
pub const CODE_SNAPSHOT_SCRATCH_MAP: &str = "CODE_SNAPSHOT_SCRATCH";
