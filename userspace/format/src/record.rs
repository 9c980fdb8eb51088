//! One decoded record of either file format. Strings and line tables borrow
//! from the reader's buffer: they are valid until the next record is read.

use memray_heap::Allocator;

/// An ALLOCATION record. Deallocations have `size == 0` (except munmap) and
/// `native_frame_id == 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocationRecord {
    pub address: u64,
    pub size: u64,
    pub allocator: Allocator,
    pub native_frame_id: u64,
}

/// One per-location aggregate of an AGGREGATED_ALLOCATIONS file (72 raw bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggregatedAllocation {
    pub tid: u64,
    pub allocator: Allocator,
    pub native_frame_id: u64,
    /// Python trie node (0 = no Python stack).
    pub python_frame_id: u64,
    pub native_segment_generation: u64,
    pub n_allocations_in_high_water_mark: u64,
    pub n_allocations_leaked: u64,
    pub bytes_in_high_water_mark: u64,
    pub bytes_leaked: u64,
}

/// The size of an encoded [`AggregatedAllocation`] on LP64.
pub const AGGREGATED_ALLOCATION_SIZE: usize = 72;

impl AggregatedAllocation {
    pub fn encode(&self) -> [u8; AGGREGATED_ALLOCATION_SIZE] {
        let mut out = [0u8; AGGREGATED_ALLOCATION_SIZE];
        out[0..8].copy_from_slice(&self.tid.to_ne_bytes());
        out[8] = self.allocator.id();
        // Bytes 9..16 are struct padding (uninitialised in memray); we write zeros.
        let words = [
            self.native_frame_id,
            self.python_frame_id,
            self.native_segment_generation,
            self.n_allocations_in_high_water_mark,
            self.n_allocations_leaked,
            self.bytes_in_high_water_mark,
            self.bytes_leaked,
        ];
        for (i, w) in words.iter().enumerate() {
            out[16 + 8 * i..24 + 8 * i].copy_from_slice(&w.to_ne_bytes());
        }
        out
    }

    pub fn decode(bytes: &[u8; AGGREGATED_ALLOCATION_SIZE], allocator: Allocator) -> Self {
        let word = |i: usize| u64::from_ne_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
        AggregatedAllocation {
            tid: word(0),
            allocator,
            native_frame_id: word(16),
            python_frame_id: word(24),
            native_segment_generation: word(32),
            n_allocations_in_high_water_mark: word(40),
            n_allocations_leaked: word(48),
            bytes_in_high_water_mark: word(56),
            bytes_leaked: word(64),
        }
    }
}

/// A v11 frame with its resolved location (FRAME_INDEX in the stream,
/// PYTHON_FRAME_INDEX in aggregated files).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegacyFrame<'a> {
    pub frame_id: u64,
    pub function_name: &'a [u8],
    pub filename: &'a [u8],
    pub lineno: i32,
    pub is_entry_frame: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record<'a> {
    // ---- ALL_ALLOCATIONS stream (v12/v13; v11 maps onto these where it can) ----
    Allocation(AllocationRecord),
    FramePush {
        code_object_id: u64,
        instruction_offset: i64,
        is_entry_frame: bool,
    },
    FramePop {
        count: u32,
    },
    ObjectRecord {
        address: u64,
        created: bool,
        native_frame_id: u64,
    },
    /// Absolute time (header start time + stored delta).
    MemoryRecord {
        time_ms: u64,
        rss: u64,
    },
    /// A native trie node; its id is its 1-based position among these records.
    NativeTraceIndex {
        ip: u64,
        parent: u64,
    },
    MemoryMapStart,
    SegmentHeader {
        filename: &'a [u8],
        num_segments: u64,
        load_address: u64,
    },
    Segment {
        vaddr: u64,
        memsz: u64,
    },
    ThreadRecord {
        name: &'a [u8],
    },
    ContextSwitch {
        tid: u64,
    },
    CodeObject {
        code_object_id: u64,
        function_name: &'a [u8],
        filename: &'a [u8],
        firstlineno: i32,
        linetable: &'a [u8],
    },
    /// End of the stream (TRAILER or AGGREGATED_TRAILER).
    Trailer,

    // ---- v11 only: frames carried their resolved location ----
    LegacyFrameIndex(LegacyFrame<'a>),
    LegacyFramePush {
        frame_id: u64,
    },
    /// v11 ALLOCATION_WITH_NATIVE (the tracker ran with native traces):
    /// replayed like [`Record::Allocation`], dumped under its own name.
    LegacyNativeAllocation(AllocationRecord),

    // ---- AGGREGATED_ALLOCATIONS ----
    MemorySnapshot {
        time_ms: u64,
        rss: u64,
        heap: u64,
    },
    AggregatedAllocation(AggregatedAllocation),
    PythonFrameIndex {
        frame_id: u64,
        code_object_id: u64,
        instruction_offset: i64,
        is_entry_frame: bool,
    },
    /// v11 aggregated frames carried their resolved location.
    LegacyPythonFrameIndex(LegacyFrame<'a>),
    PythonTraceIndex {
        frame_id: u64,
        parent_index: u64,
    },
    SurvivingObject {
        address: u64,
        native_frame_id: u64,
    },
}
