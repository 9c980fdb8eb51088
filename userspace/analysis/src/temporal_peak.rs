//! The temporal high-water mark: each location's contribution to the heap's
//! peak within every snapshot, from the heap model's high-water-mark
//! aggregator.

use memray_heap::HighWaterMarkAggregator;

use crate::temporal::{into_records, Lifetime, TemporalHighWaterMark, TemporalLocation, NEVER};
use memray_format::AllocationEvent;

#[derive(Debug, Default)]
pub struct HighWaterMarkHistory {
    aggregator: HighWaterMarkAggregator<TemporalLocation>,
}

impl HighWaterMarkHistory {
    pub fn add(&mut self, event: &AllocationEvent) {
        self.aggregator.add(
            TemporalLocation::of(event),
            event.allocator,
            event.address,
            event.size,
        );
    }

    /// Closes the current snapshot (at a kept MEMORY_RECORD).
    pub fn capture_snapshot(&mut self) {
        self.aggregator.capture_snapshot();
    }

    pub fn finish(self) -> TemporalHighWaterMark {
        let mut lifetimes = Vec::new();
        for (location, contributions) in self.aggregator.history() {
            let ends = contributions
                .iter()
                .skip(1)
                .map(|next| next.as_of_snapshot)
                .chain([NEVER]);
            for (current, deallocated_before) in contributions.iter().zip(ends) {
                lifetimes.push(Lifetime {
                    location,
                    allocated_before: current.as_of_snapshot,
                    deallocated_before,
                    n_allocations: current.contribution.allocations,
                    n_bytes: current.contribution.bytes,
                });
            }
        }
        TemporalHighWaterMark {
            records: into_records(lifetimes),
            high_water_mark_by_snapshot: self.aggregator.high_water_mark_by_snapshot(),
        }
    }
}
