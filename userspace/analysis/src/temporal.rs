//! What temporal flame graphs show: per location, which allocations were
//! live between which memory snapshots. Snapshot `k` is the span that ends at
//! the `k`-th kept MEMORY_RECORD. Records come out as memray's
//! `TemporalAllocationGenerator` yields them: sorted by location key, each
//! with its intervals sorted.

use memray_format::Allocator;

use memray_format::AllocationEvent;

/// memray's `HighWaterMarkLocationKey`: unlike [`crate::AllocationGroup`]s,
/// temporal records keep allocators and segment generations apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TemporalLocation {
    /// 0 when threads are merged.
    pub tid: u64,
    pub allocator: Allocator,
    pub python_node: u32,
    pub native_frame_id: u64,
    pub native_segment_generation: u32,
}

impl TemporalLocation {
    pub fn of(allocation: &AllocationEvent) -> TemporalLocation {
        TemporalLocation {
            tid: allocation.tid,
            allocator: allocation.allocator,
            python_node: allocation.python_node,
            native_frame_id: allocation.native_frame_id,
            native_segment_generation: allocation.native_segment_generation,
        }
    }

    /// memray's `operator<` on location keys.
    fn sort_key(&self) -> (u64, u32, u64, u32, u8) {
        (
            self.tid,
            self.python_node,
            self.native_frame_id,
            self.native_segment_generation,
            self.allocator.id(),
        )
    }
}

/// Allocations of one location live from before snapshot
/// `allocated_before_snapshot` until before `deallocated_before_snapshot`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub allocated_before_snapshot: u64,
    /// `None`: still live when tracking stopped.
    pub deallocated_before_snapshot: Option<u64>,
    pub n_allocations: u64,
    pub n_bytes: u64,
}

/// One location and its intervals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemporalRecord {
    pub location: TemporalLocation,
    pub intervals: Vec<Interval>,
}

/// The temporal high-water-mark report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemporalHighWaterMark {
    pub records: Vec<TemporalRecord>,
    /// The heap's high-water mark within each snapshot, the open one after
    /// the last MEMORY_RECORD included.
    pub high_water_mark_by_snapshot: Vec<u64>,
}

/// memray's "never deallocated" marker (`SIZE_MAX`), which sorts last.
pub(crate) const NEVER: u64 = u64::MAX;

/// One `AllocationLifetime` of memray's index.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lifetime {
    pub location: TemporalLocation,
    pub allocated_before: u64,
    /// [`NEVER`] when not deallocated.
    pub deallocated_before: u64,
    pub n_allocations: u64,
    pub n_bytes: u64,
}

/// Sorts lifetimes as memray does and gathers each location's intervals.
pub(crate) fn into_records(mut lifetimes: Vec<Lifetime>) -> Vec<TemporalRecord> {
    lifetimes.sort_unstable_by_key(|l| {
        (
            l.location.sort_key(),
            l.allocated_before,
            l.deallocated_before,
            l.n_bytes,
        )
    });
    let mut records: Vec<TemporalRecord> = Vec::new();
    for lifetime in lifetimes {
        let interval = Interval {
            allocated_before_snapshot: lifetime.allocated_before,
            deallocated_before_snapshot: (lifetime.deallocated_before != NEVER)
                .then_some(lifetime.deallocated_before),
            n_allocations: lifetime.n_allocations,
            n_bytes: lifetime.n_bytes,
        };
        match records.last_mut() {
            Some(record) if record.location == lifetime.location => record.intervals.push(interval),
            _ => records.push(TemporalRecord {
                location: lifetime.location,
                intervals: vec![interval],
            }),
        }
    }
    records
}
