//! Pass 1 of the high-water-mark query (memray's `HighWatermarkFinder`): the
//! heap size after every record, and the last record at which it reached its
//! maximum.

use memray_heap::{Change, LiveHeap};

use memray_format::AllocationEvent;

/// Where the heap peaked: the index of the last record with `current >= peak`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HighWaterMark {
    pub index: u64,
    pub bytes: u64,
}

/// Follows the heap, whose live blocks carry `B` (their size, unless the
/// caller needs more of them).
#[derive(Debug)]
pub struct PeakFinder<B = u64> {
    current: u64,
    peak: HighWaterMark,
    seen: u64,
    heap: LiveHeap<B, ()>,
}

impl<B> Default for PeakFinder<B> {
    fn default() -> Self {
        PeakFinder {
            current: 0,
            peak: HighWaterMark::default(),
            seen: 0,
            heap: LiveHeap::default(),
        }
    }
}

impl PeakFinder {
    pub fn add(&mut self, allocation: &AllocationEvent) {
        self.apply(allocation, || allocation.size, |size| *size);
    }
}

impl<B> PeakFinder<B> {
    /// Applies one record; `block` makes what a new block keeps and
    /// `block_size` reads its size back.
    pub(crate) fn apply(
        &mut self,
        allocation: &AllocationEvent,
        block: impl FnOnce() -> B,
        block_size: impl FnOnce(&B) -> u64,
    ) -> Change<B, ()> {
        let index = self.seen;
        self.seen += 1;
        let change = self.heap.apply(
            allocation.allocator,
            allocation.address,
            allocation.size,
            block,
            || (),
        );
        let (added, removed) = change.bytes(allocation.size, block_size);
        self.current = self.current + added - removed;
        if self.current >= self.peak.bytes {
            self.peak = HighWaterMark {
                index,
                bytes: self.current,
            };
        }
        change
    }

    /// The live blocks by address.
    pub(crate) fn blocks(&self) -> impl Iterator<Item = (u64, &B)> {
        self.heap.blocks()
    }

    /// The heap size now.
    pub fn current(&self) -> u64 {
        self.current
    }

    pub fn high_water_mark(&self) -> HighWaterMark {
        self.peak
    }

    /// How many records were replayed.
    pub fn records_seen(&self) -> u64 {
        self.seen
    }
}
