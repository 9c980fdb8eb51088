//! What is allocated at a point of the capture (memray's
//! `SnapshotAllocationAggregator`): used for the peak (replaying up to the
//! high-water-mark record) and for leaks (replaying everything).

use rustc_hash::FxHashMap as HashMap;

use crate::block::LiveBlock;
use crate::event::Allocation;
use crate::groups::{AllocationGroup, Grouper};
use crate::ranges::RangeSet;
use memray_format::AllocatorKind;

#[derive(Debug, Default)]
pub struct LiveAllocations {
    index: u64,
    blocks: HashMap<u64, LiveBlock>,
    mappings: RangeSet<(Allocation, u64)>,
}

impl LiveAllocations {
    pub fn add(&mut self, allocation: &Allocation) {
        let index = self.index;
        self.index += 1;
        match allocation.allocator.kind() {
            AllocatorKind::SimpleAllocator => {
                self.blocks
                    .insert(allocation.address, LiveBlock::new(allocation, index));
            }
            AllocatorKind::SimpleDeallocator => {
                // Frees of blocks allocated before tracking are not in the map.
                self.blocks.remove(&allocation.address);
            }
            AllocatorKind::RangedAllocator => {
                self.mappings
                    .add(allocation.address, allocation.size, (*allocation, index));
            }
            AllocatorKind::RangedDeallocator => {
                self.mappings.remove(allocation.address, allocation.size);
            }
        }
    }

    /// The live allocations grouped by location, in capture order. Each
    /// surviving piece of a partially unmapped mapping counts as one allocation.
    pub fn groups(&self, merge_threads: bool) -> Vec<AllocationGroup> {
        let mut grouper = Grouper::new(merge_threads);
        for (address, block) in &self.blocks {
            grouper.add(&block.allocation(*address), block.size, block.index);
        }
        for (size, (allocation, index)) in self.mappings.iter() {
            grouper.add(allocation, size, *index);
        }
        grouper.finish()
    }
}
