//! Pass 1 of the high-water-mark query (memray's `HighWatermarkFinder`): the
//! heap size after every record, and the last record at which it reached its
//! maximum.

use rustc_hash::FxHashMap as HashMap;

use crate::event::Allocation;
use crate::ranges::RangeSet;
use memray_format::AllocatorKind;

/// Where the heap peaked: the index of the last record with `current >= peak`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HighWaterMark {
    pub index: u64,
    pub bytes: u64,
}

#[derive(Debug, Default)]
pub struct PeakFinder {
    current: u64,
    peak: HighWaterMark,
    seen: u64,
    sizes: HashMap<u64, u64>,
    mappings: RangeSet<()>,
}

impl PeakFinder {
    pub fn add(&mut self, allocation: &Allocation) {
        let freed_block = match allocation.allocator.kind() {
            AllocatorKind::SimpleAllocator => {
                // A reused address replaces the old size without freeing it, as in memray.
                self.sizes.insert(allocation.address, allocation.size);
                None
            }
            AllocatorKind::SimpleDeallocator => self.sizes.remove(&allocation.address),
            AllocatorKind::RangedAllocator | AllocatorKind::RangedDeallocator => None,
        };
        self.account(allocation, freed_block);
    }

    /// Like [`PeakFinder::add`] for a caller that keeps the live blocks
    /// itself (one map instead of two): `freed_block` is the size of the
    /// block a simple deallocation removed, if it was live.
    pub(crate) fn account(&mut self, allocation: &Allocation, freed_block: Option<u64>) {
        let index = self.seen;
        self.seen += 1;
        match allocation.allocator.kind() {
            AllocatorKind::SimpleAllocator => self.current += allocation.size,
            AllocatorKind::SimpleDeallocator => self.current -= freed_block.unwrap_or(0),
            AllocatorKind::RangedAllocator => {
                self.mappings.add(allocation.address, allocation.size, ());
                self.current += allocation.size;
            }
            AllocatorKind::RangedDeallocator => {
                let freed: u64 = self
                    .mappings
                    .remove(allocation.address, allocation.size)
                    .iter()
                    .map(|r| r.bytes())
                    .sum();
                self.current -= freed;
            }
        }
        if self.current >= self.peak.bytes {
            self.peak = HighWaterMark {
                index,
                bytes: self.current,
            };
        }
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
