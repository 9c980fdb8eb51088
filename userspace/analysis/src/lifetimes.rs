//! Temporal leaks (memray's `AllocationLifetimeAggregator`): per location,
//! how many allocations made before snapshot `a` were freed before snapshot
//! `d`, or never. Allocations freed within the snapshot that made them are
//! left out.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use crate::temporal::{into_records, Lifetime, TemporalLocation, TemporalRecord, NEVER};
use memray_format::AllocationEvent;
use memray_heap::{Change, LiveHeap, Removal};

/// A live mapping piece: its mmap, the snapshot it was made in, and which
/// mmap it is (pieces of a split mapping share it).
type Piece = (AllocationEvent, u64, u64);

#[derive(Debug, Default)]
pub struct AllocationLifetimes {
    snapshots: u64,
    /// Blocks with the snapshot they were made in, and mapping pieces.
    heap: LiveHeap<(AllocationEvent, u64), Piece>,
    /// Live pieces per mmap.
    pieces: HashMap<u64, u64>,
    next_mapping: u64,
    /// (allocated before, freed before, location) → (allocations, bytes).
    freed: HashMap<(u64, u64, TemporalLocation), (u64, u64)>,
}

impl AllocationLifetimes {
    fn record_free(
        &mut self,
        allocation: &AllocationEvent,
        allocations: u64,
        bytes: u64,
        made_in: u64,
    ) {
        if made_in == self.snapshots {
            return;
        }
        let totals = self
            .freed
            .entry((made_in, self.snapshots, TemporalLocation::of(allocation)))
            .or_default();
        totals.0 += allocations;
        totals.1 += bytes;
    }

    pub fn add(&mut self, event: &AllocationEvent) {
        let made_in = self.snapshots;
        let mapping = self.next_mapping;
        let change = self.heap.apply(
            event.allocator,
            event.address,
            event.size,
            || (*event, made_in),
            || (*event, made_in, mapping),
        );
        match change {
            Change::Allocated { .. } | Change::Freed(None) => {}
            Change::Freed(Some((allocation, made_in))) => {
                self.record_free(&allocation, 1, allocation.size, made_in);
            }
            Change::Mapped => {
                if event.size != 0 {
                    self.pieces.insert(mapping, 1);
                }
                self.next_mapping += 1;
            }
            Change::Unmapped(removals) => {
                for removal in &removals {
                    let pieces = self
                        .pieces
                        .get_mut(&removal.value().2)
                        .expect("a live mapping");
                    match removal {
                        Removal::Freed(..) => *pieces -= 1,
                        Removal::Split(..) => *pieces += 1,
                        Removal::Shrunk(..) => {}
                    }
                }
                for removal in &removals {
                    let (allocation, made_in, mapping) = removal.value();
                    // memray counts the mmap once, when its last piece goes, and
                    // only if no other piece went with it in this munmap.
                    let same_munmap = removals.iter().filter(|r| r.value().2 == *mapping).count();
                    let fully_freed = self.pieces[mapping] == 0 && same_munmap == 1;
                    self.record_free(
                        allocation,
                        u64::from(fully_freed),
                        removal.bytes(),
                        *made_in,
                    );
                }
                self.pieces.retain(|_, live| *live > 0);
            }
        }
    }

    /// Closes the current snapshot (at a kept MEMORY_RECORD).
    pub fn capture_snapshot(&mut self) {
        self.snapshots += 1;
    }

    pub fn finish(self) -> Vec<TemporalRecord> {
        let mut leaked: HashMap<(u64, TemporalLocation), (u64, u64)> = HashMap::default();
        for (_, (allocation, made_in)) in self.heap.blocks() {
            let totals = leaked
                .entry((*made_in, TemporalLocation::of(allocation)))
                .or_default();
            totals.0 += 1;
            totals.1 += allocation.size;
        }
        let mut counted = HashSet::default();
        for (size, (allocation, made_in, mapping)) in self.heap.mappings().iter() {
            let totals = leaked
                .entry((*made_in, TemporalLocation::of(allocation)))
                .or_default();
            // A split mapping is still one allocation.
            totals.0 += u64::from(counted.insert(*mapping));
            totals.1 += size;
        }
        let still_live = leaked
            .into_iter()
            .map(|((made_in, location), (n, bytes))| Lifetime {
                location,
                allocated_before: made_in,
                deallocated_before: NEVER,
                n_allocations: n,
                n_bytes: bytes,
            });
        let freed = self
            .freed
            .into_iter()
            .map(|((made_in, freed_in, location), (n, bytes))| Lifetime {
                location,
                allocated_before: made_in,
                deallocated_before: freed_in,
                n_allocations: n,
                n_bytes: bytes,
            });
        into_records(still_live.chain(freed).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::temporal::Interval;
    use memray_format::Allocator;

    const P: u64 = 4096;

    fn intervals(lifetimes: AllocationLifetimes) -> Vec<Interval> {
        let records = lifetimes.finish();
        assert_eq!(records.len(), 1);
        records[0].intervals.clone()
    }

    fn interval(made: u64, freed: Option<u64>, n: u64, bytes: u64) -> Interval {
        Interval {
            allocated_before_snapshot: made,
            deallocated_before_snapshot: freed,
            n_allocations: n,
            n_bytes: bytes,
        }
    }

    #[test]
    fn a_split_mapping_counts_once_when_its_last_piece_goes() {
        let mut lifetimes = AllocationLifetimes::default();
        lifetimes.add(&AllocationEvent::new(1, 0x10000, 4 * P, Allocator::Mmap));
        lifetimes.capture_snapshot();
        lifetimes.add(&AllocationEvent::new(1, 0x10000 + P, P, Allocator::Munmap));
        lifetimes.capture_snapshot();
        lifetimes.add(&AllocationEvent::new(1, 0x10000, P, Allocator::Munmap));
        lifetimes.capture_snapshot();
        lifetimes.add(&AllocationEvent::new(
            1,
            0x10000 + 2 * P,
            2 * P,
            Allocator::Munmap,
        ));
        assert_eq!(
            intervals(lifetimes),
            vec![
                interval(0, Some(1), 0, P),
                interval(0, Some(2), 0, P),
                interval(0, Some(3), 1, 2 * P)
            ]
        );
    }

    #[test]
    fn pieces_unmapped_together_are_not_counted_as_in_memray() {
        let mut lifetimes = AllocationLifetimes::default();
        lifetimes.add(&AllocationEvent::new(1, 0x10000, 3 * P, Allocator::Mmap));
        lifetimes.add(&AllocationEvent::new(1, 0x10000 + P, P, Allocator::Munmap));
        lifetimes.capture_snapshot();
        lifetimes.add(&AllocationEvent::new(1, 0x10000, 3 * P, Allocator::Munmap));
        assert_eq!(intervals(lifetimes), vec![interval(0, Some(1), 0, 2 * P)]);
    }

    #[test]
    fn frees_within_the_snapshot_are_left_out_and_survivors_leak() {
        let mut lifetimes = AllocationLifetimes::default();
        lifetimes.add(&AllocationEvent::new(1, 0x100, 10, Allocator::Malloc));
        lifetimes.add(&AllocationEvent::new(1, 0x100, 0, Allocator::Free));
        lifetimes.add(&AllocationEvent::new(1, 0x200, 20, Allocator::Malloc));
        lifetimes.capture_snapshot();
        lifetimes.add(&AllocationEvent::new(1, 0x300, 30, Allocator::Malloc));
        assert_eq!(
            intervals(lifetimes),
            vec![interval(0, None, 1, 20), interval(1, None, 1, 30)]
        );
    }
}
