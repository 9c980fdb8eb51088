//! What the engine consumes: the events a capture replays, in file order.

use memray_format::Allocator;

/// One ALLOCATION record (or one pre-aggregated contribution), with its stack
/// identified by trie node ids that a [`crate::StackResolver`] can render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocation {
    /// memray-assigned thread id.
    pub tid: u64,
    pub address: u64,
    /// Bytes; 0 for simple deallocations.
    pub size: u64,
    pub allocator: Allocator,
    /// Python trie node of the allocating stack (0 = no Python stack).
    pub python_node: u32,
    /// Native trie leaf (0 = no native stack).
    pub native_node: u64,
    /// Segment-map generation current when the record was read.
    pub generation: u32,
    /// 1 for a real record; the stored count for aggregated contributions.
    pub n_allocations: u64,
}

impl Allocation {
    /// A single allocation event, as a streaming capture records it.
    pub fn new(tid: u64, address: u64, size: u64, allocator: Allocator) -> Allocation {
        Allocation {
            tid,
            address,
            size,
            allocator,
            python_node: 0,
            native_node: 0,
            generation: 0,
            n_allocations: 1,
        }
    }

    /// The same event attributed to a Python stack.
    pub fn at(mut self, python_node: u32) -> Allocation {
        self.python_node = python_node;
        self
    }

    /// The same event attributed to a native stack.
    pub fn with_native(mut self, native_node: u64) -> Allocation {
        self.native_node = native_node;
        self
    }
}

/// One AGGREGATED_ALLOCATION record: a location's contribution to the peak
/// and to the leaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggregatedAllocation {
    pub tid: u64,
    pub allocator: Allocator,
    pub python_node: u32,
    pub native_node: u64,
    pub generation: u32,
    pub n_allocations_in_high_water_mark: u64,
    pub n_allocations_leaked: u64,
    pub bytes_in_high_water_mark: u64,
    pub bytes_leaked: u64,
}

impl AggregatedAllocation {
    fn contribution(&self, size: u64, n_allocations: u64) -> Allocation {
        Allocation {
            tid: self.tid,
            address: 0,
            size,
            allocator: self.allocator,
            python_node: self.python_node,
            native_node: self.native_node,
            generation: self.generation,
            n_allocations,
        }
    }

    /// memray's `contributionToHighWaterMark`.
    pub fn to_high_water_mark(&self) -> Allocation {
        self.contribution(
            self.bytes_in_high_water_mark,
            self.n_allocations_in_high_water_mark,
        )
    }

    /// memray's `contributionToLeaks`.
    pub fn to_leaks(&self) -> Allocation {
        self.contribution(self.bytes_leaked, self.n_allocations_leaked)
    }
}

/// Process memory at one moment: resident set size and the tracked heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemorySnapshot {
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    pub rss: u64,
    pub heap: u64,
}

/// One event of a capture, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// An ALLOCATION record of a streaming capture.
    Allocation(Allocation),
    /// A MEMORY_RECORD of a streaming capture (the heap is computed by replay).
    MemoryRecord { time_ms: u64, rss: u64 },
    /// An AGGREGATED_ALLOCATION record of an aggregated capture.
    Aggregated(AggregatedAllocation),
    /// A MEMORY_SNAPSHOT of an aggregated capture.
    MemorySnapshot(MemorySnapshot),
}
