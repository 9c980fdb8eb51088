//! The allocations live at the high-water mark, found in the same pass that
//! finds the peak (no second replay up to the peak's record).
//!
//! Live blocks remember their record index. A block made at or before the
//! current candidate peak and freed (or replaced) after it was live at that
//! peak, so it is kept aside; when the peak moves on, those are dropped.
//! Mappings at the peak are a second range set that lags behind: the mmap
//! and munmap records since the candidate peak are applied to it when the
//! peak moves on.

use memray_heap::{Change, LiveHeap};

use crate::block::LiveBlock;
use crate::groups::{AllocationGroup, Grouper};
use crate::peak::{HighWaterMark, PeakFinder};
use memray_format::AllocationEvent;

#[derive(Debug, Default)]
pub struct PeakAllocations {
    /// Follows the heap; the blocks are only kept here.
    peak: PeakFinder<LiveBlock>,
    /// Blocks live at the candidate peak that are gone since, by address.
    gone_since_peak: Vec<(u64, LiveBlock)>,
    /// The mappings live at the candidate peak.
    at_peak: LiveHeap<(), (AllocationEvent, u64)>,
    /// mmap and munmap records after the candidate peak, with their index.
    ranged_since_peak: Vec<(AllocationEvent, u64)>,
}

impl PeakAllocations {
    pub fn add(&mut self, allocation: &AllocationEvent) {
        let index = self.peak.records_seen();
        let peak_index = self.peak.high_water_mark().index;
        let change = self.peak.apply(
            allocation,
            || LiveBlock::new(allocation, index),
            |block| block.size,
        );
        let gone = match change {
            Change::Allocated { replaced } => replaced,
            Change::Freed(block) => block,
            Change::Mapped | Change::Unmapped(_) => {
                self.ranged_since_peak.push((*allocation, index));
                None
            }
        };
        if let Some(block) = gone.filter(|block| block.index <= peak_index) {
            self.gone_since_peak.push((allocation.address, block));
        }
        if self.peak.high_water_mark().index == index {
            // Nothing freed before this record is live at the new peak.
            self.gone_since_peak.clear();
            for (event, index) in self.ranged_since_peak.drain(..) {
                self.at_peak.apply(
                    event.allocator,
                    event.address,
                    event.size,
                    || (),
                    || (event, index),
                );
            }
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
            .peak
            .blocks()
            .filter(|(_, block)| block.index <= peak_index);
        let gone_blocks = self
            .gone_since_peak
            .iter()
            .map(|(address, block)| (*address, block));
        for (address, block) in live_blocks.chain(gone_blocks) {
            grouper.add(&block.allocation(address), block.size, block.index);
        }
        for (size, (allocation, index)) in self.at_peak.mappings().iter() {
            grouper.add(allocation, size, *index);
        }
        grouper.finish()
    }
}
