//! Temporary allocations (memray's `TemporaryAllocationsAggregator`): an
//! allocation is temporary when its own thread frees it while it is still
//! among that thread's last `threshold + 1` allocations. They are grouped as
//! they are found: memory follows the locations, not the (possibly tens of
//! millions of) temporary allocations.

use std::collections::VecDeque;

use rustc_hash::FxHashMap as HashMap;

use crate::groups::{AllocationGroup, Grouper};
use memray_format::AllocationEvent;
use memray_format::AllocatorKind;

#[derive(Debug)]
pub struct TemporaryAllocations {
    capacity: usize,
    index: u64,
    /// Per thread, newest first.
    recent: HashMap<u64, VecDeque<(AllocationEvent, u64)>>,
    temporary: Grouper,
}

impl TemporaryAllocations {
    pub fn new(threshold: usize, merge_threads: bool) -> TemporaryAllocations {
        TemporaryAllocations {
            capacity: threshold + 1,
            index: 0,
            recent: HashMap::default(),
            temporary: Grouper::new(merge_threads),
        }
    }

    pub fn add(&mut self, allocation: &AllocationEvent) {
        let index = self.index;
        self.index += 1;
        let kind = allocation.allocator.kind();
        match kind {
            AllocatorKind::SimpleAllocator | AllocatorKind::RangedAllocator => {
                let recent = self.recent.entry(allocation.tid).or_default();
                recent.push_front((*allocation, index));
                recent.truncate(self.capacity);
            }
            AllocatorKind::SimpleDeallocator | AllocatorKind::RangedDeallocator => {
                let Some(recent) = self.recent.get(&allocation.tid) else {
                    return;
                };
                let ranged = kind == AllocatorKind::RangedDeallocator;
                // Matched entries stay in the deque, exactly as memray does.
                let matched = recent.iter().find(|(candidate, _)| {
                    candidate.address == allocation.address
                        && (!ranged || candidate.size == allocation.size)
                });
                if let Some((allocation, index)) = matched {
                    self.temporary.add(allocation, allocation.size, *index);
                }
            }
        }
    }

    pub fn groups(self) -> Vec<AllocationGroup> {
        self.temporary.finish()
    }
}
