//! The allocations live at the high-water mark, found in the same pass that
//! finds the peak (no second replay up to the peak's record).
//!
//! Live blocks remember their record index. A block made at or before the
//! current candidate peak and freed (or replaced) after it was live at that
//! peak, so it is kept aside; when the peak moves on, those are dropped.
//! Mappings are few: their records are kept and replayed up to the peak.

use rustc_hash::FxHashMap as HashMap;

use crate::block::LiveBlock;
use crate::event::Allocation;
use crate::groups::{AllocationGroup, Grouper};
use crate::peak::{HighWaterMark, PeakFinder};
use crate::ranges::RangeSet;
use memray_format::AllocatorKind;

#[derive(Debug, Default)]
pub struct PeakAllocations {
    /// Follows the heap size; the blocks' sizes are only kept here.
    peak: PeakFinder,
    blocks: HashMap<u64, LiveBlock>,
    /// Blocks live at the candidate peak that are gone since, by address.
    gone_since_peak: Vec<(u64, LiveBlock)>,
    /// Every mmap and munmap record, with its index.
    ranged: Vec<(Allocation, u64)>,
}

impl PeakAllocations {
    pub fn add(&mut self, allocation: &Allocation) {
        let index = self.peak.records_seen();
        let peak_index = self.peak.high_water_mark().index;
        let address = allocation.address;
        let (gone, freed_block) = match allocation.allocator.kind() {
            AllocatorKind::SimpleAllocator => {
                // A reused address replaces the old block (without freeing
                // its bytes), as in memray.
                let block = LiveBlock::new(allocation, index);
                (self.blocks.insert(address, block), None)
            }
            AllocatorKind::SimpleDeallocator => {
                let gone = self.blocks.remove(&address);
                (gone, gone.map(|block| block.size))
            }
            AllocatorKind::RangedAllocator | AllocatorKind::RangedDeallocator => {
                self.ranged.push((*allocation, index));
                (None, None)
            }
        };
        if let Some(block) = gone.filter(|block| block.index <= peak_index) {
            self.gone_since_peak.push((address, block));
        }
        self.peak.account(allocation, freed_block);
        if self.peak.high_water_mark().index == index {
            // Nothing freed before this record is live at the new peak.
            self.gone_since_peak.clear();
        }
    }

    pub fn current(&self) -> u64 {
        self.peak.current()
    }

    pub fn high_water_mark(&self) -> HighWaterMark {
        self.peak.high_water_mark()
    }

    pub fn records_seen(&self) -> u64 {
        self.peak.records_seen()
    }

    /// What was live at the high-water mark, grouped by location in capture
    /// order, exactly as replaying up to the peak's record would group it.
    pub fn groups(&self, merge_threads: bool) -> Vec<AllocationGroup> {
        let mut grouper = Grouper::new(merge_threads);
        if self.records_seen() == 0 {
            return grouper.finish();
        }
        let peak_index = self.high_water_mark().index;
        let live_blocks = self
            .blocks
            .iter()
            .filter(|(_, block)| block.index <= peak_index);
        let gone_blocks = self
            .gone_since_peak
            .iter()
            .map(|(address, block)| (address, block));
        for (address, block) in live_blocks.chain(gone_blocks) {
            grouper.add(&block.allocation(*address), block.size, block.index);
        }
        let mut mappings = RangeSet::default();
        for (event, index) in self.ranged.iter().take_while(|(_, i)| *i <= peak_index) {
            if event.allocator.kind() == AllocatorKind::RangedAllocator {
                mappings.add(event.address, event.size, (*event, *index));
            } else {
                mappings.remove(event.address, event.size);
            }
        }
        for (size, (allocation, index)) in mappings.iter() {
            grouper.add(allocation, size, *index);
        }
        grouper.finish()
    }
}
