//! `memray stats`: totals, sizes, allocators, top locations and modules
//! (memray's `AllocationStatsAggregator` plus `compute_statistics`).

use rustc_hash::FxHashMap as HashMap;

use crate::modules::{ModuleResolver, PathInfo};
use crate::peak::PeakFinder;
use crate::stack::{Frame, StackResolver};
use memray_format::AllocationEvent;
use memray_format::Allocator;

/// Per distinct Python stack: allocations, bytes, first record index.
#[derive(Debug, Clone, Copy, Default)]
struct StackTotals {
    count: u64,
    bytes: u64,
    first_index: u64,
}

/// Sizes below this are counted in an array (most allocations are small):
/// no hashing for them.
const SMALL_SIZES: usize = 4096;

/// Allocations by size.
#[derive(Debug)]
struct SizeCounts {
    small: Box<[u64; SMALL_SIZES]>,
    large: HashMap<u64, u64>,
}

impl Default for SizeCounts {
    fn default() -> Self {
        SizeCounts {
            small: Box::new([0; SMALL_SIZES]),
            large: HashMap::default(),
        }
    }
}

impl SizeCounts {
    #[inline]
    fn add(&mut self, size: u64) {
        if size < SMALL_SIZES as u64 {
            self.small[size as usize] += 1;
        } else {
            *self.large.entry(size).or_default() += 1;
        }
    }

    /// (size, count) by increasing size.
    fn into_sorted(self) -> Vec<(u64, u64)> {
        let mut large: Vec<(u64, u64)> = self.large.into_iter().collect();
        large.sort_unstable();
        (0u64..)
            .zip(self.small.iter().copied())
            .filter(|(_, count)| *count > 0)
            .chain(large)
            .collect()
    }
}

/// Streams allocation records; memory grows with distinct sizes and stacks.
#[derive(Debug, Default)]
pub struct StatsCollector {
    peak: PeakFinder,
    total_allocations: u64,
    total_bytes: u64,
    count_by_size: SizeCounts,
    /// Indexed by allocator id.
    count_by_allocator: [u64; 16],
    /// Indexed by Python trie node (dense ids); `count == 0` = never seen.
    by_stack: Vec<StackTotals>,
}

/// Allocations and bytes of one module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleTotals {
    pub module: String,
    pub num_allocations: u64,
    pub total_bytes: u64,
}

/// Everything `memray stats` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statistics {
    /// AllocationEvent records, deallocations excluded.
    pub total_allocations: u64,
    pub total_bytes: u64,
    pub peak_bytes: u64,
    /// Every allocation record, deallocations included.
    pub records: u64,
    /// (size, count), by increasing size.
    pub count_by_size: Vec<(u64, u64)>,
    /// By decreasing count (ties by allocator id).
    pub count_by_allocator: Vec<(Allocator, u64)>,
    /// Top locations (leaf Python frame; `None` = no Python stack) by bytes.
    pub top_locations_by_size: Vec<(Option<Frame>, u64)>,
    pub top_locations_by_count: Vec<(Option<Frame>, u64)>,
    pub top_modules_by_size: Vec<ModuleTotals>,
    pub top_modules_by_count: Vec<ModuleTotals>,
}

impl StatsCollector {
    pub fn add(&mut self, allocation: &AllocationEvent) {
        let index = self.peak.records_seen();
        self.peak.add(allocation);
        if allocation.allocator.is_deallocator() {
            return;
        }
        self.total_allocations += 1;
        self.total_bytes += allocation.size;
        self.count_by_size.add(allocation.size);
        self.count_by_allocator[usize::from(allocation.allocator.id())] += 1;
        let node = allocation.python_node as usize;
        if node >= self.by_stack.len() {
            self.by_stack.resize(node + 1, StackTotals::default());
        }
        let stack = &mut self.by_stack[node];
        if stack.count == 0 {
            stack.first_index = index;
        }
        stack.count += 1;
        stack.bytes += allocation.size;
    }

    /// Resolves locations and modules and keeps the `num_largest` of each.
    pub fn finish(
        self,
        stacks: &dyn StackResolver,
        paths: PathInfo,
        num_largest: usize,
    ) -> Statistics {
        let mut stacks_in_order: Vec<(u32, StackTotals)> = (0u32..)
            .zip(self.by_stack)
            .filter(|(_, totals)| totals.count > 0)
            .collect();
        stacks_in_order.sort_by_key(|(_, totals)| totals.first_index);

        // Locations, numbered in order of first appearance like memray's registry.
        let mut location_ids: HashMap<Frame, usize> = HashMap::default();
        let mut locations: Vec<(Option<Frame>, u64, u64)> = Vec::new();
        let mut no_location: Option<usize> = None;
        let mut modules: Vec<ModuleTotals> = Vec::new();
        let mut module_ids: HashMap<String, usize> = HashMap::default();
        let mut resolver = ModuleResolver::new(paths);
        for (node, totals) in &stacks_in_order {
            let frames = stacks.python_frames(*node);
            let slot = match frames.first() {
                Some(leaf) => *location_ids.entry(leaf.clone()).or_insert_with(|| {
                    locations.push((Some(leaf.clone()), 0, 0));
                    locations.len() - 1
                }),
                None => *no_location.get_or_insert_with(|| {
                    locations.push((None, 0, 0));
                    locations.len() - 1
                }),
            };
            locations[slot].1 += totals.bytes;
            locations[slot].2 += totals.count;

            let module = resolver.module_for_stack(&frames);
            let id = *module_ids.entry(module.clone()).or_insert_with(|| {
                modules.push(ModuleTotals {
                    module,
                    num_allocations: 0,
                    total_bytes: 0,
                });
                modules.len() - 1
            });
            modules[id].num_allocations += totals.count;
            modules[id].total_bytes += totals.bytes;
        }

        let top_locations = |value: fn(&(Option<Frame>, u64, u64)) -> u64| {
            // memray pops a max-heap of (value, location id): ties go to the
            // later location, and "no location" loses ties.
            let mut ranked: Vec<(u64, Option<usize>, usize)> = locations
                .iter()
                .enumerate()
                .map(|(i, l)| (value(l), l.0.as_ref().map(|_| i), i))
                .collect();
            ranked.sort_by_key(|r| std::cmp::Reverse((r.0, r.1)));
            ranked
                .into_iter()
                .take(num_largest)
                .map(|(v, _, i)| (locations[i].0.clone(), v))
                .collect::<Vec<_>>()
        };
        let top_locations_by_size = top_locations(|l| l.1);
        let top_locations_by_count = top_locations(|l| l.2);

        let top_modules = |value: fn(&ModuleTotals) -> u64| {
            let mut ranked = modules.clone();
            ranked.sort_by_key(|m| std::cmp::Reverse(value(m)));
            ranked.truncate(num_largest);
            ranked
        };

        let count_by_size = self.count_by_size.into_sorted();
        let mut count_by_allocator: Vec<(Allocator, u64)> = (0u8..)
            .zip(self.count_by_allocator)
            .filter(|(_, count)| *count > 0)
            .filter_map(|(id, count)| Some((Allocator::from_id(id)?, count)))
            .collect();
        count_by_allocator.sort_by_key(|(a, c)| (std::cmp::Reverse(*c), *a));

        Statistics {
            total_allocations: self.total_allocations,
            total_bytes: self.total_bytes,
            peak_bytes: self.peak.high_water_mark().bytes,
            records: self.peak.records_seen(),
            count_by_size,
            count_by_allocator,
            top_locations_by_size,
            top_locations_by_count,
            top_modules_by_size: top_modules(|m| m.total_bytes),
            top_modules_by_count: top_modules(|m| m.num_allocations),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_on_both_sides_of_the_array_come_out_in_order() {
        let mut counts = SizeCounts::default();
        for size in [5000, 3, 4095, 4096, 3, 0, u64::MAX] {
            counts.add(size);
        }
        assert_eq!(
            counts.into_sorted(),
            vec![
                (0, 1),
                (3, 2),
                (4095, 1),
                (4096, 1),
                (5000, 1),
                (u64::MAX, 1)
            ]
        );
    }
}
