//! The temporal high-water mark (memray's `HighWaterMarkAggregator`): each
//! location's contribution to the heap's peak within every snapshot.
//!
//! Peaks are numbered: a new number starts on each falling edge of the heap
//! and at each snapshot. A location remembers what it contributed to the last
//! peak it knows of plus what changed since; counters are modular, so frees
//! after a peak are "negative" deltas, exactly as in memray.

use rustc_hash::FxHashMap as HashMap;

use crate::event::Allocation;
use crate::ranges::{RangeSet, Removal};
use crate::temporal::{into_records, Lifetime, TemporalHighWaterMark, TemporalLocation, NEVER};
use memray_format::AllocatorKind;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Contribution {
    bytes: u64,
    allocations: u64,
}

/// A location's contribution as of a snapshot (a run until the next entry).
#[derive(Debug, Clone, Copy)]
struct Historical {
    as_of_snapshot: u64,
    contribution: Contribution,
}

/// memray's `UsageHistoryImpl`.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    last_known_snapshot: u64,
    last_known_peak: u64,
    at_last_peak: Contribution,
    since_last_peak: Contribution,
}

impl Usage {
    /// Moves to `peak`: what changed since the last one is part of it.
    fn rebase(&mut self, peak: u64) {
        if self.last_known_peak != peak {
            self.at_last_peak.allocations = self
                .at_last_peak
                .allocations
                .wrapping_add(self.since_last_peak.allocations);
            self.at_last_peak.bytes = self
                .at_last_peak
                .bytes
                .wrapping_add(self.since_last_peak.bytes);
            self.since_last_peak = Contribution::default();
            self.last_known_peak = peak;
        }
    }
}

#[derive(Debug, Default)]
struct UsageHistory {
    usage: Usage,
    by_snapshot: Vec<Historical>,
}

/// Appends `entry` unless it repeats the last recorded contribution (runs
/// are implicit); an empty history stands for "nothing contributed".
fn push_if_changed(history: &mut Vec<Historical>, entry: Historical) {
    let last = history
        .last()
        .map_or(Contribution::default(), |h| h.contribution);
    if last != entry.contribution {
        history.push(entry);
    }
}

impl UsageHistory {
    /// Records what this location contributed to the peaks of snapshots
    /// completed since it last changed; returns the usage moved past them.
    fn close_completed(&self, peak_by_snapshot: &[u64], history: &mut Vec<Historical>) -> Usage {
        let current_snapshot = peak_by_snapshot.len() as u64;
        let mut usage = self.usage;
        while usage.last_known_snapshot != current_snapshot {
            usage.rebase(peak_by_snapshot[usage.last_known_snapshot as usize]);
            push_if_changed(
                history,
                Historical {
                    as_of_snapshot: usage.last_known_snapshot,
                    contribution: usage.at_last_peak,
                },
            );
            // Changes after that snapshot's peak belong to the next one only.
            if usage.since_last_peak.allocations != 0 {
                usage.last_known_snapshot += 1;
            } else {
                usage.last_known_snapshot = current_snapshot;
            }
        }
        usage
    }

    fn record_delta(&mut self, peak_by_snapshot: &[u64], peak: u64, delta: Contribution) {
        if self.usage.last_known_snapshot < peak_by_snapshot.len() as u64 {
            let mut history = std::mem::take(&mut self.by_snapshot);
            self.usage = self.close_completed(peak_by_snapshot, &mut history);
            self.by_snapshot = history;
        }
        self.usage.rebase(peak);
        let since = &mut self.usage.since_last_peak;
        since.allocations = since.allocations.wrapping_add(delta.allocations);
        since.bytes = since.bytes.wrapping_add(delta.bytes);
    }

    /// Every change of contribution, ending with the final peak's and then
    /// the leaks' (as of one snapshot past the end).
    fn contributions(&self, peak_by_snapshot: &[u64], final_peak: u64) -> Vec<Historical> {
        let current_snapshot = peak_by_snapshot.len() as u64;
        let mut history = self.by_snapshot.clone();
        let mut last = self.usage;
        if last.last_known_snapshot < current_snapshot {
            last = self.close_completed(peak_by_snapshot, &mut history);
        }
        last.rebase(final_peak);
        let at_peak = last.at_last_peak;
        let leaked = Contribution {
            allocations: at_peak
                .allocations
                .wrapping_add(last.since_last_peak.allocations),
            bytes: at_peak.bytes.wrapping_add(last.since_last_peak.bytes),
        };
        // Unlike for completed snapshots, an empty history does not stand for
        // zero here: every location gets at least one interval.
        for (as_of_snapshot, contribution) in
            [(current_snapshot, at_peak), (current_snapshot + 1, leaked)]
        {
            if history
                .last()
                .is_none_or(|h| h.contribution != contribution)
            {
                history.push(Historical {
                    as_of_snapshot,
                    contribution,
                });
            }
        }
        history
    }
}

#[derive(Debug, Default)]
pub struct HighWaterMarkHistory {
    current_heap: u64,
    heap_at_last_peak: u64,
    peak_count: u64,
    /// Per completed snapshot: the number of its highest peak, and its bytes.
    peak_by_snapshot: Vec<u64>,
    bytes_by_snapshot: Vec<u64>,
    by_location: HashMap<TemporalLocation, UsageHistory>,
    blocks: HashMap<u64, Allocation>,
    mappings: RangeSet<Allocation>,
}

impl HighWaterMarkHistory {
    fn record_delta(&mut self, allocation: &Allocation, allocations: i64, bytes: i64) {
        let new_heap = self.current_heap.wrapping_add(bytes as u64);
        if self.current_heap >= self.heap_at_last_peak && new_heap < self.current_heap {
            // The falling edge of a peak not yet counted.
            self.peak_count += 1;
            self.heap_at_last_peak = self.current_heap;
        }
        self.current_heap = new_heap;
        let history = self
            .by_location
            .entry(TemporalLocation::of(allocation))
            .or_default();
        history.record_delta(
            &self.peak_by_snapshot,
            self.peak_count,
            Contribution {
                allocations: allocations as u64,
                bytes: bytes as u64,
            },
        );
    }

    pub fn add(&mut self, event: &Allocation) {
        match event.allocator.kind() {
            AllocatorKind::SimpleAllocator => {
                self.record_delta(event, 1, event.size as i64);
                // A reused address replaces the old block without freeing it, as in memray.
                self.blocks.insert(event.address, *event);
            }
            AllocatorKind::SimpleDeallocator => {
                if let Some(allocation) = self.blocks.remove(&event.address) {
                    self.record_delta(&allocation, -1, -(allocation.size as i64));
                }
            }
            AllocatorKind::RangedAllocator => {
                self.record_delta(event, 1, event.size as i64);
                self.mappings.add(event.address, event.size, *event);
            }
            AllocatorKind::RangedDeallocator => {
                for removal in self.mappings.remove(event.address, event.size) {
                    let allocations = match removal {
                        Removal::Freed(..) => -1,
                        Removal::Shrunk(..) => 0,
                        Removal::Split(..) => 1,
                    };
                    self.record_delta(removal.value(), allocations, -(removal.bytes() as i64));
                }
            }
        }
    }

    /// Closes the current snapshot (at a kept MEMORY_RECORD).
    pub fn capture_snapshot(&mut self) {
        if self.current_heap >= self.heap_at_last_peak {
            // On the rising edge of a new peak.
            self.peak_by_snapshot.push(self.peak_count + 1);
            self.bytes_by_snapshot.push(self.current_heap);
        } else {
            self.peak_by_snapshot.push(self.peak_count);
            self.bytes_by_snapshot.push(self.heap_at_last_peak);
        }
        // A snapshot's start counts as a peak, even below an earlier one.
        self.peak_count += 1;
        self.heap_at_last_peak = self.current_heap;
    }

    pub fn finish(self) -> TemporalHighWaterMark {
        let mut final_peak = self.peak_count;
        if self.current_heap >= self.heap_at_last_peak {
            // At a peak not yet fallen from.
            final_peak += 1;
        }
        let mut lifetimes = Vec::new();
        for (location, history) in &self.by_location {
            let contributions = history.contributions(&self.peak_by_snapshot, final_peak);
            let ends = contributions
                .iter()
                .skip(1)
                .map(|next| next.as_of_snapshot)
                .chain([NEVER]);
            for (current, deallocated_before) in contributions.iter().zip(ends) {
                lifetimes.push(Lifetime {
                    location: *location,
                    allocated_before: current.as_of_snapshot,
                    deallocated_before,
                    n_allocations: current.contribution.allocations,
                    n_bytes: current.contribution.bytes,
                });
            }
        }
        let mut high_water_mark_by_snapshot = self.bytes_by_snapshot;
        high_water_mark_by_snapshot.push(self.heap_at_last_peak);
        TemporalHighWaterMark {
            records: into_records(lifetimes),
            high_water_mark_by_snapshot,
        }
    }
}
