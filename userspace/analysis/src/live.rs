//! What is allocated at a point of the capture (memray's
//! `SnapshotAllocationAggregator`): used for the peak (replaying up to the
//! high-water-mark record) and for leaks (replaying everything).

use memray_heap::LiveHeap;

use crate::block::LiveBlock;
use crate::groups::{AllocationGroup, Grouper};
use memray_format::AllocationEvent;

#[derive(Debug, Default)]
pub struct LiveAllocations {
    index: u64,
    heap: LiveHeap<LiveBlock, (AllocationEvent, u64)>,
}

impl LiveAllocations {
    /// Applies one record; returns the bytes it added to the heap and
    /// removed from it (memray's accounting: a replaced block is not freed).
    pub fn add(&mut self, allocation: &AllocationEvent) -> (u64, u64) {
        let index = self.index;
        self.index += 1;
        self.heap
            .apply(
                allocation.allocator,
                allocation.address,
                allocation.size,
                || LiveBlock::new(allocation, index),
                || (*allocation, index),
            )
            .bytes(allocation.size, |block| block.size)
    }

    /// The live allocations grouped by location, in capture order. Each
    /// surviving piece of a partially unmapped mapping counts as one allocation.
    pub fn groups(&self, merge_threads: bool) -> Vec<AllocationGroup> {
        let mut grouper = Grouper::new(merge_threads);
        for (address, block) in self.heap.blocks() {
            grouper.add(&block.allocation(address), block.size, block.index);
        }
        for (size, (allocation, index)) in self.heap.mappings().iter() {
            grouper.add(allocation, size, *index);
        }
        grouper.finish()
    }
}
