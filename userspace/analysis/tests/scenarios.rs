//! memray's analysis acceptance scenarios S8-S12 (rules in docs/memray-analysis.md),
//! replayed as synthetic event sequences: what memray's tests produce with C
//! allocators, written down record by record.

use std::ops::ControlFlow;

use memray_analysis::{
    high_water_mark, leaks, overview, temporary_allocations, AggregatedLocation, AllocationEvent,
    AllocationGroup, Allocator, AnalysisError, Capture, Event, NeedsEveryRecord,
};

const PAGE: u64 = 4096;

struct Synthetic {
    aggregated: bool,
    events: Vec<Event>,
}

impl Capture for Synthetic {
    fn is_aggregated(&self) -> bool {
        self.aggregated
    }
    /// Small batches, so that queries also stop and resume across them.
    fn replay(
        &self,
        visit: &mut dyn FnMut(&[Event]) -> ControlFlow<()>,
    ) -> Result<(), AnalysisError> {
        for batch in self.events.chunks(3) {
            if visit(batch).is_break() {
                break;
            }
        }
        Ok(())
    }
}

/// Builds a streaming capture: every call site is a distinct Python stack
/// node, so "different lines" means different nodes.
#[derive(Default)]
struct Recorder {
    events: Vec<Event>,
    next_address: u64,
}

impl Recorder {
    fn alloc(&mut self, tid: u64, line: u32, allocator: Allocator, size: u64) -> u64 {
        self.next_address += 0x100000;
        let address = self.next_address;
        self.record(AllocationEvent::new(tid, address, size, allocator).at(line));
        address
    }
    fn valloc(&mut self, line: u32, size: u64) -> u64 {
        self.alloc(1, line, Allocator::Valloc, size)
    }
    fn free(&mut self, tid: u64, address: u64) {
        self.record(AllocationEvent::new(tid, address, 0, Allocator::Free));
    }
    fn munmap(&mut self, address: u64, size: u64) {
        self.record(AllocationEvent::new(1, address, size, Allocator::Munmap));
    }
    fn record(&mut self, allocation: AllocationEvent) {
        self.events.push(Event::Allocation(allocation));
    }
    fn capture(self) -> Synthetic {
        Synthetic {
            aggregated: false,
            events: self.events,
        }
    }
}

fn peak_groups(capture: &Synthetic) -> Vec<AllocationGroup> {
    let overview = overview(capture, 10_000).unwrap();
    high_water_mark(capture, &overview, true).unwrap()
}

fn sizes(groups: &[AllocationGroup]) -> Vec<(u64, u64)> {
    groups.iter().map(|g| (g.size, g.n_allocations)).collect()
}

#[test]
fn s8_peak_is_the_larger_of_two_sequential_allocations() {
    for (first, second) in [(1024, 2048), (2048, 1024)] {
        let mut r = Recorder::default();
        let a = r.valloc(1, first);
        r.free(1, a);
        let b = r.valloc(2, second);
        r.free(1, b);
        let groups = peak_groups(&r.capture());
        assert_eq!(sizes(&groups), vec![(2048, 1)]);
        assert_eq!(groups[0].allocation.allocator, Allocator::Valloc);
    }
}

#[test]
fn s8_same_line_merges_and_different_lines_do_not() {
    let mut r = Recorder::default();
    let a = r.valloc(7, 1024);
    let b = r.valloc(7, 1024);
    r.free(1, a);
    r.free(1, b);
    assert_eq!(sizes(&peak_groups(&r.capture())), vec![(2048, 2)]);

    let mut r = Recorder::default();
    r.valloc(1, 1024);
    r.valloc(2, 2048);
    assert_eq!(
        sizes(&peak_groups(&r.capture())),
        vec![(1024, 1), (2048, 1)]
    );
}

#[test]
fn s8_same_python_line_with_two_native_sites_gives_two_groups() {
    let mut r = Recorder::default();
    r.record(
        AllocationEvent::new(1, 0x1000, 984, Allocator::Malloc)
            .at(3)
            .with_native(1),
    );
    r.record(
        AllocationEvent::new(1, 0x2000, 984, Allocator::Malloc)
            .at(3)
            .with_native(2),
    );
    assert_eq!(peak_groups(&r.capture()).len(), 2);
}

#[test]
fn s8_final_allocation_can_be_the_peak() {
    let mut r = Recorder::default();
    let a = r.valloc(1, 1024);
    r.free(1, a);
    r.valloc(2, 2048);
    assert_eq!(sizes(&peak_groups(&r.capture())), vec![(2048, 1)]);
}

/// memray's `rec(n)`: odd levels free before recursing, even levels after.
fn spiky(r: &mut Recorder, n: u64) {
    if n == 0 {
        return;
    }
    let address = r.valloc(n as u32, n * 1024);
    if n % 2 == 1 {
        r.free(1, address);
        spiky(r, n - 1);
    } else {
        spiky(r, n - 1);
        r.free(1, address);
    }
}

#[test]
fn s9_spiky_recursion_reports_the_later_of_two_equal_peaks() {
    let mut r = Recorder::default();
    spiky(&mut r, 10);
    let capture = r.capture();
    let total: u64 = capture
        .events
        .iter()
        .map(|e| match e {
            Event::Allocation(a) => a.size,
            _ => 0,
        })
        .sum();
    assert_eq!((capture.events.len(), total), (20, 56320));
    let groups = peak_groups(&capture);
    let mut kib: Vec<u64> = groups.iter().map(|g| g.size / 1024).collect();
    kib.sort_unstable();
    assert_eq!(kib, vec![1, 2, 4, 6, 8, 10]);
    assert!(groups.iter().all(|g| g.n_allocations == 1));
}

fn mmap(r: &mut Recorder, line: u32, size: u64) -> u64 {
    r.alloc(1, line, Allocator::Mmap, size)
}

#[test]
fn s10_partial_munmaps_are_accounted_by_range() {
    type Ops = fn(&mut Recorder);
    let rows: [(Ops, u64); 4] = [
        (
            |r| {
                let m = mmap(r, 1, 2 * PAGE);
                r.munmap(m, PAGE);
            },
            11,
        ),
        (
            |r| {
                let m = mmap(r, 1, 4 * PAGE);
                r.munmap(m, PAGE);
                r.munmap(m + 3 * PAGE, PAGE);
            },
            12,
        ),
        (
            |r| {
                let m = mmap(r, 1, 5 * PAGE);
                r.munmap(m + PAGE, PAGE);
                r.munmap(m + 3 * PAGE, PAGE);
            },
            13,
        ),
        (
            |r| {
                let m = mmap(r, 1, 8 * PAGE);
                r.munmap(m + 4 * PAGE, PAGE);
            },
            17,
        ),
    ];
    for (ops, pages) in rows {
        let mut r = Recorder::default();
        ops(&mut r);
        mmap(&mut r, 2, 10 * PAGE);
        let groups = peak_groups(&r.capture());
        assert_eq!(groups.len(), 2);
        assert_eq!(groups.iter().map(|g| g.size).sum::<u64>(), pages * PAGE);
    }
}

#[test]
fn s10_one_munmap_can_release_several_contiguous_mappings() {
    let mut r = Recorder::default();
    r.record(AllocationEvent::new(1, 0x10_0000, 4 * PAGE, Allocator::Mmap).at(1));
    r.record(AllocationEvent::new(1, 0x10_0000 + 4 * PAGE, 4 * PAGE, Allocator::Mmap).at(1));
    r.munmap(0x10_0000, 8 * PAGE);
    mmap(&mut r, 2, 10 * PAGE);
    assert_eq!(
        sizes(&leaks(&r.capture(), true).unwrap()),
        vec![(10 * PAGE, 1)]
    );
}

#[test]
fn s10_split_mapping_pieces_count_as_allocations() {
    let mut r = Recorder::default();
    let m = mmap(&mut r, 1, 5 * PAGE);
    r.munmap(m + 2 * PAGE, PAGE);
    assert_eq!(
        sizes(&leaks(&r.capture(), true).unwrap()),
        vec![(4 * PAGE, 2)]
    );
}

#[test]
fn s11_leaks() {
    let mut r = Recorder::default();
    r.valloc(1, 1024);
    assert_eq!(sizes(&leaks(&r.capture(), true).unwrap()), vec![(1024, 1)]);

    let mut r = Recorder::default();
    for line in 0..3 {
        let a = r.valloc(line, 1024);
        r.free(1, a);
    }
    assert!(leaks(&r.capture(), true).unwrap().is_empty());

    let mut r = Recorder::default();
    for _ in 0..10 {
        r.valloc(5, 1024);
    }
    assert_eq!(
        sizes(&leaks(&r.capture(), true).unwrap()),
        vec![(10240, 10)]
    );

    // Freeing memory allocated before tracking started is ignored.
    let mut r = Recorder::default();
    r.free(1, 0xdead000);
    assert!(leaks(&r.capture(), true).unwrap().is_empty());
}

#[test]
fn s12_an_immediately_freed_allocation_is_temporary() {
    let mut r = Recorder::default();
    let a = r.valloc(1, 1024);
    r.free(1, a);
    let b = r.valloc(2, 2048);
    r.free(1, b);
    let groups = temporary_allocations(&r.capture(), 1, true).unwrap();
    assert_eq!(sizes(&groups), vec![(1024, 1), (2048, 1)]);
    assert_eq!(groups[0].allocation.allocator, Allocator::Valloc);
}

#[test]
fn s12_threshold_bounds_how_many_allocations_may_come_between() {
    for n in [1u64, 2, 5, 10] {
        let mut r = Recorder::default();
        let addresses: Vec<u64> = (0..=n).map(|_| r.valloc(1, 1024)).collect();
        for address in addresses.iter().rev() {
            r.free(1, *address);
        }
        let groups = temporary_allocations(&r.capture(), (n - 1) as usize, true).unwrap();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].n_allocations, n);
    }
}

#[test]
fn s12_threads_keep_their_own_window_and_cross_thread_frees_do_not_count() {
    let mut r = Recorder::default();
    for tid in [1, 2] {
        for _ in 0..2 {
            let a = r.alloc(tid, 1, Allocator::PosixMemalign, 2048);
            r.free(tid, a);
        }
    }
    let groups = temporary_allocations(&r.capture(), 1, false).unwrap();
    let per_thread: Vec<(u64, u64)> = groups.iter().map(|g| (g.tid(), g.size)).collect();
    assert_eq!(per_thread, vec![(1, 4096), (2, 4096)]);

    // T1 allocates, T2 allocates and frees, T1 frees.
    let mut r = Recorder::default();
    let a = r.alloc(1, 1, Allocator::Malloc, 1234);
    let b = r.alloc(2, 1, Allocator::Malloc, 1234);
    r.free(2, b);
    r.free(1, a);
    let groups = temporary_allocations(&r.capture(), 1, false).unwrap();
    let per_thread: Vec<(u64, u64)> = groups.iter().map(|g| (g.tid(), g.size)).collect();
    assert_eq!(per_thread, vec![(1, 1234), (2, 1234)]);

    let mut r = Recorder::default();
    let a = r.alloc(1, 1, Allocator::Malloc, 64);
    r.free(2, a);
    assert!(temporary_allocations(&r.capture(), 1, true)
        .unwrap()
        .is_empty());
}

#[test]
fn groups_come_out_in_capture_order_with_threads_split() {
    // test_snapshot_allocations_preserve_capture_order
    let mut r = Recorder::default();
    r.record(AllocationEvent::new(1, 0x1000, 1024, Allocator::Malloc).at(1));
    r.record(AllocationEvent::new(2, 0x2000, 2048, Allocator::Malloc).at(1));
    r.record(AllocationEvent::new(1, 0x3000, 512, Allocator::Malloc).at(1));
    let capture = r.capture();
    let overview = overview(&capture, 10).unwrap();
    let groups = high_water_mark(&capture, &overview, false).unwrap();
    let seen: Vec<(u64, u64, u64)> = groups
        .iter()
        .map(|g| (g.tid(), g.size, g.n_allocations))
        .collect();
    assert_eq!(seen, vec![(1, 1536, 2), (2, 2048, 1)]);
}

fn aggregated(tid: u64, node: u32, hwm: (u64, u64), leaked: (u64, u64)) -> Event {
    Event::AggregatedAllocation(AggregatedLocation {
        tid,
        allocator: Allocator::Malloc,
        python_node: node,
        native_frame_id: 0,
        native_segment_generation: 0,
        n_allocations_in_high_water_mark: hwm.0,
        bytes_in_high_water_mark: hwm.1,
        n_allocations_leaked: leaked.0,
        bytes_leaked: leaked.1,
    })
}

#[test]
fn aggregated_captures_reaggregate_stored_contributions() {
    let capture = Synthetic {
        aggregated: true,
        events: vec![
            aggregated(1, 2, (1, 1024), (1, 1024)),
            aggregated(2, 3, (1, 2048), (0, 0)),
            aggregated(2, 2, (3, 300), (0, 0)),
        ],
    };
    let overview = overview(&capture, 10).unwrap();
    assert_eq!(overview.high_water_mark.bytes, 3372);
    let split = high_water_mark(&capture, &overview, false).unwrap();
    assert_eq!(sizes(&split), vec![(1024, 1), (2048, 1), (300, 3)]);
    // memray counts a merged record as one more allocation, whatever it carried.
    let merged = high_water_mark(&capture, &overview, true).unwrap();
    assert_eq!(sizes(&merged), vec![(1324, 2), (2048, 1)]);
    assert_eq!(sizes(&leaks(&capture, true).unwrap()), vec![(1024, 1)]);
    assert_eq!(
        temporary_allocations(&capture, 1, true).unwrap_err(),
        AnalysisError::Unsupported(NeedsEveryRecord::TemporaryAllocations)
    );
}

#[test]
fn memory_records_carry_the_heap_at_that_point() {
    let mut r = Recorder::default();
    r.events.push(Event::Memory {
        time_ms: 10,
        rss: 100,
    });
    let a = r.valloc(1, 984);
    r.events.push(Event::Memory {
        time_ms: 20,
        rss: 200,
    });
    r.free(1, a);
    r.events.push(Event::Memory {
        time_ms: 30,
        rss: 300,
    });
    let overview = overview(&r.capture(), 10).unwrap();
    let heaps: Vec<u64> = overview.memory.iter().map(|m| m.heap).collect();
    assert_eq!(heaps, vec![0, 984, 0]);
    assert_eq!(overview.records, 2);
}
