//! memray's `HighWaterMarkAggregator`: each location's contribution to the
//! heap's peak, over the whole run (the `--aggregate` writer) or within every
//! snapshot (the temporal reports), and what it leaked.
//!
//! Peaks are numbered: a new number starts on each falling edge of the heap
//! and at each snapshot. A location remembers what it contributed to the last
//! peak it knows of plus what changed since; counters are modular, so frees
//! after a peak are "negative" deltas, exactly as memray's `size_t` maths.

use std::hash::Hash;

use rustc_hash::FxHashMap as HashMap;

use crate::live::{Change, LiveHeap};
use crate::ranges::Removal;
use memray_allocators::Allocator;

/// Allocations and bytes, modular (a decrease is a wrapped negative).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Contribution {
    pub allocations: u64,
    pub bytes: u64,
}

impl Contribution {
    fn plus(self, other: Contribution) -> Contribution {
        Contribution {
            allocations: self.allocations.wrapping_add(other.allocations),
            bytes: self.bytes.wrapping_add(other.bytes),
        }
    }
}

/// A location's contribution as of a snapshot (a run until the next entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Historical {
    pub as_of_snapshot: u64,
    pub contribution: Contribution,
}

/// A location's share of the final peak, and what it leaked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub at_peak: Contribution,
    pub leaked: Contribution,
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
            self.at_last_peak = self.at_last_peak.plus(self.since_last_peak);
            self.since_last_peak = Contribution::default();
            self.last_known_peak = peak;
        }
    }

    /// Its share of `final_peak`, and everything it still holds.
    fn totals(mut self, final_peak: u64) -> Totals {
        self.rebase(final_peak);
        Totals {
            at_peak: self.at_last_peak,
            leaked: self.at_last_peak.plus(self.since_last_peak),
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
        self.usage.since_last_peak = self.usage.since_last_peak.plus(delta);
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
        let totals = last.totals(final_peak);
        // Unlike for completed snapshots, an empty history does not stand for
        // zero here: every location gets at least one interval.
        for (as_of_snapshot, contribution) in [
            (current_snapshot, totals.at_peak),
            (current_snapshot + 1, totals.leaked),
        ] {
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

/// A live block: the index of its location's history, and its size (a
/// free finds its location's history without a lookup).
type Block = (usize, u64);

/// The aggregator, over locations `L` (memray's `HighWaterMarkLocationKey`).
/// Locations come out in the order they were first seen.
#[derive(Debug)]
pub struct HighWaterMarkAggregator<L> {
    current_heap: u64,
    heap_at_last_peak: u64,
    peak_count: u64,
    /// Per completed snapshot: the number of its highest peak, and its bytes.
    peak_by_snapshot: Vec<u64>,
    bytes_by_snapshot: Vec<u64>,
    histories: Vec<(L, UsageHistory)>,
    history_index: HashMap<L, usize>,
    /// Blocks and mappings by the index of their location's history.
    heap: LiveHeap<Block, usize>,
}

impl<L> Default for HighWaterMarkAggregator<L> {
    fn default() -> Self {
        HighWaterMarkAggregator {
            current_heap: 0,
            heap_at_last_peak: 0,
            peak_count: 0,
            peak_by_snapshot: Vec::new(),
            bytes_by_snapshot: Vec::new(),
            histories: Vec::new(),
            history_index: HashMap::default(),
            heap: LiveHeap::default(),
        }
    }
}

impl<L: Copy + Eq + Hash> HighWaterMarkAggregator<L> {
    /// One allocation record made at `location`.
    pub fn add(&mut self, location: L, allocator: Allocator, address: u64, size: u64) {
        // A deallocation's location is the one its block or mapping keeps.
        let history = if allocator.is_deallocator() {
            usize::MAX
        } else {
            self.history_of(location)
        };
        let change = self
            .heap
            .apply(allocator, address, size, || (history, size), || history);
        match change {
            Change::Allocated { .. } | Change::Mapped => self.record_delta(history, 1, size),
            Change::Freed(Some((allocated_at, size))) => {
                self.record_delta(allocated_at, u64::MAX, size.wrapping_neg())
            }
            Change::Freed(None) => {}
            Change::Unmapped(removals) => {
                for removal in removals {
                    let allocations = match removal {
                        Removal::Freed(..) => u64::MAX,
                        Removal::Shrunk(..) => 0,
                        // Split in two: one more allocation.
                        Removal::Split(..) => 1,
                    };
                    let bytes = removal.bytes().wrapping_neg();
                    self.record_delta(*removal.value(), allocations, bytes);
                }
            }
        }
    }

    /// The index of `location`'s history, made on its first allocation.
    fn history_of(&mut self, location: L) -> usize {
        *self.history_index.entry(location).or_insert_with(|| {
            self.histories.push((location, UsageHistory::default()));
            self.histories.len() - 1
        })
    }

    fn record_delta(&mut self, history: usize, allocations: u64, bytes: u64) {
        let new_heap = self.current_heap.wrapping_add(bytes);
        if self.current_heap >= self.heap_at_last_peak && new_heap < self.current_heap {
            // The falling edge of a peak not yet counted.
            self.peak_count += 1;
            self.heap_at_last_peak = self.current_heap;
        }
        self.current_heap = new_heap;
        self.histories[history].1.record_delta(
            &self.peak_by_snapshot,
            self.peak_count,
            Contribution { allocations, bytes },
        );
    }

    /// The heap size now.
    pub fn current_heap(&self) -> u64 {
        self.current_heap
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

    /// The number of the last peak.
    fn final_peak(&self) -> u64 {
        if self.current_heap >= self.heap_at_last_peak {
            // At a peak not yet fallen from.
            self.peak_count + 1
        } else {
            self.peak_count
        }
    }

    /// Each location's share of the final peak and its leaks (memray's
    /// `getHighWaterMarkAllocations` and `getLeakedAllocations`).
    pub fn totals(&self) -> impl Iterator<Item = (L, Totals)> + '_ {
        let final_peak = self.final_peak();
        self.histories
            .iter()
            .map(move |(location, history)| (*location, history.usage.totals(final_peak)))
    }

    /// Each location's contribution to every snapshot's peak, as changes: an
    /// entry holds until the next one; the last two are the final peak's (as
    /// of the open snapshot) and the leaks (one past it).
    pub fn history(&self) -> impl Iterator<Item = (L, Vec<Historical>)> + '_ {
        let final_peak = self.final_peak();
        self.histories.iter().map(move |(location, history)| {
            let contributions = history.contributions(&self.peak_by_snapshot, final_peak);
            (*location, contributions)
        })
    }

    /// The heap's high-water mark within each snapshot, the open one after
    /// the last [`capture_snapshot`](Self::capture_snapshot) included.
    pub fn high_water_mark_by_snapshot(&self) -> Vec<u64> {
        let mut by_snapshot = self.bytes_by_snapshot.clone();
        by_snapshot.push(self.heap_at_last_peak);
        by_snapshot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: u64 = 0x1000;

    fn totals(aggregator: &HighWaterMarkAggregator<u64>) -> (u64, u64) {
        aggregator.totals().fold((0, 0), |(peak, leaked), (_, t)| {
            (peak + t.at_peak.bytes, leaked + t.leaked.bytes)
        })
    }

    #[test]
    fn peak_and_leaks_of_a_spike() {
        let mut aggregator = HighWaterMarkAggregator::default();
        aggregator.add(1, Allocator::Malloc, 0x1000, 100);
        aggregator.add(2, Allocator::Malloc, 0x2000, 1000);
        aggregator.add(0, Allocator::Free, 0x2000, 0);
        aggregator.add(3, Allocator::Malloc, 0x3000, 10);
        assert_eq!(totals(&aggregator), (1100, 110));
        assert_eq!(aggregator.current_heap(), 110);
    }

    #[test]
    fn partial_munmap_shrinks_and_splits_ranges() {
        let mut aggregator = HighWaterMarkAggregator::default();
        aggregator.add(1, Allocator::Mmap, 0x10000, 4 * P);
        aggregator.add(0, Allocator::Munmap, 0x10000 + P, P);
        aggregator.add(0, Allocator::Munmap, 0x10000, P);
        assert_eq!(aggregator.current_heap(), 2 * P);
        let totals: Vec<_> = aggregator.totals().collect();
        assert_eq!(totals.len(), 1, "the munmaps are charged to the mmap");
        let (location, t) = totals[0];
        assert_eq!(location, 1);
        assert_eq!((t.at_peak.bytes, t.at_peak.allocations), (4 * P, 1));
        assert_eq!((t.leaked.bytes, t.leaked.allocations), (2 * P, 1));
    }

    #[test]
    fn each_snapshot_keeps_its_own_peak() {
        let mut aggregator = HighWaterMarkAggregator::default();
        aggregator.add(1, Allocator::Malloc, 0x1000, 100);
        aggregator.add(0, Allocator::Free, 0x1000, 0);
        aggregator.capture_snapshot();
        aggregator.add(1, Allocator::Malloc, 0x1000, 40);
        aggregator.add(0, Allocator::Free, 0x1000, 0);
        assert_eq!(aggregator.high_water_mark_by_snapshot(), vec![100, 40]);
        let history: Vec<_> = aggregator.history().collect();
        let contribution = |allocations, bytes| Contribution { allocations, bytes };
        assert_eq!(
            history,
            vec![(
                1,
                vec![
                    Historical {
                        as_of_snapshot: 0,
                        contribution: contribution(1, 100)
                    },
                    Historical {
                        as_of_snapshot: 1,
                        contribution: contribution(1, 40)
                    },
                    Historical {
                        as_of_snapshot: 2,
                        contribution: contribution(0, 0)
                    },
                ]
            )]
        );
    }
}
