//! Grouping allocations by location (memray's `LocationKey`): the Python
//! stack, the native stack and the thread (0 when threads are merged). The
//! allocator is not part of the key. Groups come out in capture order.

use rustc_hash::FxHashMap as HashMap;

use memray_format::AllocationEvent;

/// Thread id in the grouping key when threads are merged.
const MERGED_THREADS: u64 = 0;

/// All allocations of one location that matter for a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocationGroup {
    /// The location's earliest allocation: its allocator, stacks and thread
    /// describe the group, as memray's representative record does (with
    /// merged threads too, so main-thread frames are still skipped).
    pub allocation: AllocationEvent,
    /// Sum of the bytes.
    pub size: u64,
    pub n_allocations: u64,
    /// Smallest record index in the group: the capture-order sort key.
    pub first_index: u64,
}

impl AllocationGroup {
    pub fn tid(&self) -> u64 {
        self.allocation.tid
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct LocationKey {
    python_node: u32,
    native_frame_id: u64,
    tid: u64,
}

/// Accumulates allocations into groups.
#[derive(Debug)]
pub struct Grouper {
    merge_threads: bool,
    groups: HashMap<LocationKey, AllocationGroup>,
}

impl Grouper {
    pub fn new(merge_threads: bool) -> Grouper {
        Grouper {
            merge_threads,
            groups: HashMap::default(),
        }
    }

    /// Adds one allocation (or what is left of one mapping) of `size` bytes.
    /// Like memray, a group that already exists counts one more allocation
    /// whatever `n_allocations` the newcomer carries.
    pub fn add(&mut self, allocation: &AllocationEvent, size: u64, index: u64) {
        let tid = if self.merge_threads {
            MERGED_THREADS
        } else {
            allocation.tid
        };
        let key = LocationKey {
            python_node: allocation.python_node,
            native_frame_id: allocation.native_frame_id,
            tid,
        };
        self.groups
            .entry(key)
            .and_modify(|group| {
                group.size += size;
                group.n_allocations += 1;
                if index < group.first_index {
                    group.first_index = index;
                    group.allocation = *allocation;
                }
            })
            .or_insert_with(|| AllocationGroup {
                allocation: *allocation,
                size,
                n_allocations: allocation.n_allocations,
                first_index: index,
            });
    }

    /// The groups in capture order.
    pub fn finish(self) -> Vec<AllocationGroup> {
        let mut groups: Vec<AllocationGroup> = self.groups.into_values().collect();
        groups.sort_by_key(|g| g.first_index);
        groups
    }
}
