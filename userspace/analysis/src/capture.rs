//! The queries reports ask, run over any capture that can replay its events:
//! each is one or two streaming passes, holding only live allocations and
//! per-location totals.

use std::ops::ControlFlow;

use crate::error::{AnalysisError, NeedsEveryRecord};
use crate::groups::{AllocationGroup, Grouper};
use crate::lifetimes::AllocationLifetimes;
use crate::live::LiveAllocations;
use crate::memory;
use crate::peak::{HighWaterMark, PeakFinder};
use crate::peak_groups::PeakAllocations;
use crate::stats::StatsCollector;
use crate::temporal::{TemporalHighWaterMark, TemporalRecord};
use crate::temporal_peak::HighWaterMarkHistory;
use crate::temporary::TemporaryAllocations;
use memray_format::{AllocationEvent, Event, MemorySnapshot};

/// A capture file, or anything else that can replay a capture's events.
pub trait Capture {
    /// Whether this is an AGGREGATED_ALLOCATIONS capture.
    fn is_aggregated(&self) -> bool;

    /// Replays the events in file order, from the start, a batch at a time,
    /// until `visit` breaks or the capture ends. (Batches keep the cost of
    /// the dynamic call off each event.)
    fn replay(
        &self,
        visit: &mut dyn FnMut(&[Event]) -> ControlFlow<()>,
    ) -> Result<(), AnalysisError>;
}

/// What one pass over the whole capture learns (memray's `FileReader`
/// constructor): the peak, the record count and memory over time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overview {
    pub high_water_mark: HighWaterMark,
    /// AllocationEvent records (or aggregated records) seen.
    pub records: u64,
    /// Memory snapshots after downsampling.
    pub memory: Vec<MemorySnapshot>,
    /// The downsampling stride (0 = none); temporal reports reuse it.
    pub memory_stride: usize,
}

/// Replays the events one by one (`visit` is inlined into the batch loop).
fn for_each_event(
    capture: &dyn Capture,
    mut visit: impl FnMut(&Event) -> ControlFlow<()>,
) -> Result<(), AnalysisError> {
    capture.replay(&mut |batch| {
        for event in batch {
            visit(event)?;
        }
        ControlFlow::Continue(())
    })
}

/// Replays only the allocation records of a streaming capture.
fn for_each_allocation(
    capture: &dyn Capture,
    mut visit: impl FnMut(&AllocationEvent) -> ControlFlow<()>,
) -> Result<(), AnalysisError> {
    for_each_event(capture, |event| match event {
        Event::Allocation(allocation) => visit(allocation),
        _ => ControlFlow::Continue(()),
    })
}

/// Follows the heap through a replay (a [`PeakFinder`], or one that also
/// remembers what is live at the peak).
trait HeapTracker {
    fn add(&mut self, allocation: &AllocationEvent);
    fn current(&self) -> u64;
    fn high_water_mark(&self) -> HighWaterMark;
    fn records_seen(&self) -> u64;
    /// A MEMORY_RECORD came (after the allocations before it).
    fn memory_record(&mut self) {}
}

macro_rules! heap_tracker {
    ($tracker:ty) => {
        impl HeapTracker for $tracker {
            fn add(&mut self, allocation: &AllocationEvent) {
                <$tracker>::add(self, allocation)
            }
            fn current(&self) -> u64 {
                <$tracker>::current(self)
            }
            fn high_water_mark(&self) -> HighWaterMark {
                <$tracker>::high_water_mark(self)
            }
            fn records_seen(&self) -> u64 {
                <$tracker>::records_seen(self)
            }
        }
    };
}
heap_tracker!(PeakFinder);
heap_tracker!(PeakAllocations);

/// A query that sees every allocation record in order.
trait AllocationAggregator {
    fn add(&mut self, allocation: &AllocationEvent);
    /// A MEMORY_RECORD came (after the allocations before it).
    fn memory_record(&mut self) {}
}

impl AllocationAggregator for LiveAllocations {
    fn add(&mut self, allocation: &AllocationEvent) {
        LiveAllocations::add(self, allocation);
    }
}

impl AllocationAggregator for TemporaryAllocations {
    fn add(&mut self, allocation: &AllocationEvent) {
        TemporaryAllocations::add(self, allocation)
    }
}

/// A [`HeapTracker`] that hands every allocation record to another query too:
/// the overview and that query in one pass.
struct PeakAnd<P, A> {
    peak: P,
    also: A,
}

impl<P: HeapTracker, A: AllocationAggregator> HeapTracker for PeakAnd<P, A> {
    fn add(&mut self, allocation: &AllocationEvent) {
        self.peak.add(allocation);
        self.also.add(allocation);
    }
    fn current(&self) -> u64 {
        self.peak.current()
    }
    fn high_water_mark(&self) -> HighWaterMark {
        self.peak.high_water_mark()
    }
    fn records_seen(&self) -> u64 {
        self.peak.records_seen()
    }
    fn memory_record(&mut self) {
        self.also.memory_record();
    }
}

/// Pass 1: the high-water mark, the number of records and memory snapshots
/// (each MEMORY_RECORD gets the heap size at that point).
pub fn overview(
    capture: &dyn Capture,
    max_memory_records: usize,
) -> Result<Overview, AnalysisError> {
    overview_with(capture, max_memory_records, &mut PeakFinder::default())
}

/// The overview and what was allocated at the high-water mark, grouped by
/// location, in a single pass.
pub fn overview_and_high_water_mark(
    capture: &dyn Capture,
    max_memory_records: usize,
    merge_threads: bool,
) -> Result<(Overview, Vec<AllocationGroup>), AnalysisError> {
    overview_and(
        capture,
        max_memory_records,
        PeakAllocations::default(),
        |peak| peak.groups(merge_threads),
        |overview| high_water_mark(capture, overview, merge_threads),
    )
}

/// The overview and the leaks ([`leaks`]) in a single pass.
pub fn overview_and_leaks(
    capture: &dyn Capture,
    max_memory_records: usize,
    merge_threads: bool,
) -> Result<(Overview, Vec<AllocationGroup>), AnalysisError> {
    let tracker = PeakAnd {
        peak: PeakFinder::default(),
        also: LiveAllocations::default(),
    };
    overview_and(
        capture,
        max_memory_records,
        tracker,
        |tracker| tracker.also.groups(merge_threads),
        |_| leaks(capture, merge_threads),
    )
}

/// The overview, what was allocated at the high-water mark and the leaks, in
/// a single pass: `(overview, (peak, leaks))`.
#[allow(clippy::type_complexity)]
pub fn overview_high_water_mark_and_leaks(
    capture: &dyn Capture,
    max_memory_records: usize,
    merge_threads: bool,
) -> Result<(Overview, (Vec<AllocationGroup>, Vec<AllocationGroup>)), AnalysisError> {
    let tracker = PeakAnd {
        peak: PeakAllocations::default(),
        also: LiveAllocations::default(),
    };
    overview_and(
        capture,
        max_memory_records,
        tracker,
        |tracker| {
            let peak = tracker.peak.groups(merge_threads);
            (peak, tracker.also.groups(merge_threads))
        },
        |overview| {
            let peak = high_water_mark(capture, overview, merge_threads)?;
            Ok((peak, leaks(capture, merge_threads)?))
        },
    )
}

/// The overview and the temporary allocations ([`temporary_allocations`]) in
/// a single pass.
pub fn overview_and_temporary_allocations(
    capture: &dyn Capture,
    max_memory_records: usize,
    threshold: usize,
    merge_threads: bool,
) -> Result<(Overview, Vec<AllocationGroup>), AnalysisError> {
    let tracker = PeakAnd {
        peak: PeakFinder::default(),
        also: TemporaryAllocations::new(threshold, merge_threads),
    };
    overview_and(
        capture,
        max_memory_records,
        tracker,
        |tracker| tracker.also.groups(),
        |_| temporary_allocations(capture, threshold, merge_threads),
    )
}

/// The overview and what `finish` makes of `tracker` after the same pass; an
/// aggregated capture gets its overview, then what `separately` makes of it.
fn overview_and<T: HeapTracker, G>(
    capture: &dyn Capture,
    max_memory_records: usize,
    mut tracker: T,
    finish: impl FnOnce(T) -> G,
    separately: impl FnOnce(&Overview) -> Result<G, AnalysisError>,
) -> Result<(Overview, G), AnalysisError> {
    if capture.is_aggregated() {
        let overview = overview(capture, max_memory_records)?;
        let selected = separately(&overview)?;
        return Ok((overview, selected));
    }
    let overview = overview_with(capture, max_memory_records, &mut tracker)?;
    Ok((overview, finish(tracker)))
}

fn overview_with(
    capture: &dyn Capture,
    max_memory_records: usize,
    peak: &mut impl HeapTracker,
) -> Result<Overview, AnalysisError> {
    let mut memory = Vec::new();
    for_each_event(capture, |event| {
        match event {
            Event::Allocation(allocation) => peak.add(allocation),
            Event::AggregatedAllocation(aggregated) => peak.add(&aggregated.to_high_water_mark()),
            Event::Memory { time_ms, rss } => {
                memory.push(MemorySnapshot {
                    time_ms: *time_ms,
                    rss: *rss,
                    heap: peak.current(),
                });
                peak.memory_record();
            }
            Event::MemorySnapshot(snapshot) => memory.push(*snapshot),
            Event::Object { .. } | Event::SurvivingObject { .. } => {}
        }
        ControlFlow::Continue(())
    })?;
    let memory_stride = memory::stride(memory.len(), max_memory_records);
    Ok(Overview {
        high_water_mark: peak.high_water_mark(),
        records: peak.records_seen(),
        memory: memory::downsample(memory, memory_stride),
        memory_stride,
    })
}

/// Groups an aggregated capture's stored contributions (memray's
/// `AggregatedCaptureReaggregator`); locations that contributed nothing are left out.
fn reaggregate(
    capture: &dyn Capture,
    merge_threads: bool,
    contribution: fn(&memray_format::AggregatedLocation) -> AllocationEvent,
) -> Result<Vec<AllocationGroup>, AnalysisError> {
    let mut grouper = Grouper::new(merge_threads);
    let mut index = 0;
    for_each_event(capture, |event| {
        if let Event::AggregatedAllocation(aggregated) = event {
            let allocation = contribution(aggregated);
            if allocation.n_allocations != 0 {
                grouper.add(&allocation, allocation.size, index);
                index += 1;
            }
        }
        ControlFlow::Continue(())
    })?;
    Ok(grouper.finish())
}

/// Live allocations after replaying the first `records` allocation records.
fn live_after(
    capture: &dyn Capture,
    records: Option<u64>,
    merge_threads: bool,
) -> Result<Vec<AllocationGroup>, AnalysisError> {
    let mut live = LiveAllocations::default();
    let mut remaining = records;
    for_each_allocation(capture, |allocation| {
        if remaining == Some(0) {
            return ControlFlow::Break(());
        }
        live.add(allocation);
        remaining = remaining.map(|r| r - 1);
        ControlFlow::Continue(())
    })?;
    Ok(live.groups(merge_threads))
}

/// What was allocated at the high-water mark, grouped by location.
pub fn high_water_mark(
    capture: &dyn Capture,
    overview: &Overview,
    merge_threads: bool,
) -> Result<Vec<AllocationGroup>, AnalysisError> {
    if capture.is_aggregated() {
        return reaggregate(capture, merge_threads, |a| a.to_high_water_mark());
    }
    if overview.records == 0 {
        return Ok(Vec::new());
    }
    live_after(
        capture,
        Some(overview.high_water_mark.index + 1),
        merge_threads,
    )
}

/// What was still allocated when tracking stopped, grouped by location.
pub fn leaks(
    capture: &dyn Capture,
    merge_threads: bool,
) -> Result<Vec<AllocationGroup>, AnalysisError> {
    if capture.is_aggregated() {
        return reaggregate(capture, merge_threads, |a| a.to_leaks());
    }
    live_after(capture, None, merge_threads)
}

/// Allocations freed by their own thread within `threshold` later allocations.
pub fn temporary_allocations(
    capture: &dyn Capture,
    threshold: usize,
    merge_threads: bool,
) -> Result<Vec<AllocationGroup>, AnalysisError> {
    if capture.is_aggregated() {
        return Err(AnalysisError::Unsupported(
            NeedsEveryRecord::TemporaryAllocations,
        ));
    }
    let mut temporary = TemporaryAllocations::new(threshold, merge_threads);
    for_each_allocation(capture, |allocation| {
        temporary.add(allocation);
        ControlFlow::Continue(())
    })?;
    Ok(temporary.groups())
}

/// One pass collecting what `memray stats` needs.
pub fn statistics(capture: &dyn Capture) -> Result<StatsCollector, AnalysisError> {
    if capture.is_aggregated() {
        return Err(AnalysisError::Unsupported(NeedsEveryRecord::Statistics));
    }
    let mut collector = StatsCollector::default();
    for_each_allocation(capture, |allocation| {
        collector.add(allocation);
        ControlFlow::Continue(())
    })?;
    Ok(collector)
}

/// What a temporal aggregator needs from a replay.
trait SnapshotAggregator {
    fn add(&mut self, allocation: &AllocationEvent);
    fn capture_snapshot(&mut self);
}

impl SnapshotAggregator for HighWaterMarkHistory {
    fn add(&mut self, allocation: &AllocationEvent) {
        HighWaterMarkHistory::add(self, allocation)
    }
    fn capture_snapshot(&mut self) {
        HighWaterMarkHistory::capture_snapshot(self)
    }
}

impl SnapshotAggregator for AllocationLifetimes {
    fn add(&mut self, allocation: &AllocationEvent) {
        AllocationLifetimes::add(self, allocation)
    }
    fn capture_snapshot(&mut self) {
        AllocationLifetimes::capture_snapshot(self)
    }
}

/// An allocation as the temporal aggregators see it: thread 0 for all when
/// threads are merged.
fn as_aggregated(allocation: &AllocationEvent, merge_threads: bool) -> AllocationEvent {
    let mut allocation = *allocation;
    if merge_threads {
        allocation.tid = 0;
    }
    allocation
}

/// Feeds a [`SnapshotAggregator`] during the overview's pass what
/// [`replay_snapshots`] would when no memory record is downsampled away
/// (known only at the end): a MEMORY_RECORD's snapshot is closed when the
/// next allocation comes, so none after the last one.
struct SnapshotFeed<A> {
    snapshots: A,
    merge_threads: bool,
    /// MEMORY_RECORDs since the last allocation.
    pending: usize,
}

impl<A: SnapshotAggregator> AllocationAggregator for SnapshotFeed<A> {
    fn add(&mut self, allocation: &AllocationEvent) {
        for _ in 0..std::mem::take(&mut self.pending) {
            self.snapshots.capture_snapshot();
        }
        self.snapshots
            .add(&as_aggregated(allocation, self.merge_threads));
    }
    fn memory_record(&mut self) {
        self.pending += 1;
    }
}

/// The overview and what `finish` makes of `aggregator` fed in the same pass
/// (see [`SnapshotFeed`]); if the memory records are downsampled (or the
/// capture is aggregated), what `separately` makes of the overview instead.
fn overview_and_snapshots<A: SnapshotAggregator, G>(
    capture: &dyn Capture,
    max_memory_records: usize,
    merge_threads: bool,
    aggregator: A,
    finish: impl FnOnce(A) -> G,
    separately: impl FnOnce(&Overview) -> Result<G, AnalysisError>,
) -> Result<(Overview, G), AnalysisError> {
    let mut tracker = PeakAnd {
        peak: PeakFinder::default(),
        also: SnapshotFeed {
            snapshots: aggregator,
            merge_threads,
            pending: 0,
        },
    };
    let overview = overview_with(capture, max_memory_records, &mut tracker)?;
    if overview.memory_stride == 0 && !capture.is_aggregated() {
        return Ok((overview, finish(tracker.also.snapshots)));
    }
    let separate = separately(&overview)?;
    Ok((overview, separate))
}

/// The overview and [`temporal_high_water_mark`], in one pass unless the
/// memory records are downsampled.
pub fn overview_and_temporal_high_water_mark(
    capture: &dyn Capture,
    max_memory_records: usize,
    merge_threads: bool,
) -> Result<(Overview, TemporalHighWaterMark), AnalysisError> {
    overview_and_snapshots(
        capture,
        max_memory_records,
        merge_threads,
        HighWaterMarkHistory::default(),
        HighWaterMarkHistory::finish,
        |overview| temporal_high_water_mark(capture, overview, merge_threads),
    )
}

/// The overview and [`temporal_leaks`], in one pass unless the memory
/// records are downsampled.
pub fn overview_and_temporal_leaks(
    capture: &dyn Capture,
    max_memory_records: usize,
    merge_threads: bool,
) -> Result<(Overview, Vec<TemporalRecord>), AnalysisError> {
    overview_and_snapshots(
        capture,
        max_memory_records,
        merge_threads,
        AllocationLifetimes::default(),
        AllocationLifetimes::finish,
        |overview| temporal_leaks(capture, overview, merge_threads),
    )
}

/// Feeds the allocation records to `aggregator`, closing a snapshot at every
/// MEMORY_RECORD that downsampling keeps (memray #759: the stride of the
/// memory plot). Like memray, it stops at the last allocation record.
fn replay_snapshots(
    capture: &dyn Capture,
    overview: &Overview,
    merge_threads: bool,
    aggregator: &mut dyn SnapshotAggregator,
) -> Result<(), AnalysisError> {
    if capture.is_aggregated() {
        return Err(AnalysisError::Unsupported(
            NeedsEveryRecord::AllocationHistory,
        ));
    }
    let mut remaining = overview.records;
    let mut memory_records = 0usize;
    for_each_event(capture, |event| {
        if remaining == 0 {
            return ControlFlow::Break(());
        }
        match event {
            Event::Allocation(allocation) => {
                aggregator.add(&as_aggregated(allocation, merge_threads));
                remaining -= 1;
            }
            Event::Memory { .. } => {
                let stride = overview.memory_stride;
                if stride == 0 || memory_records.is_multiple_of(stride) {
                    aggregator.capture_snapshot();
                }
                memory_records += 1;
            }
            Event::AggregatedAllocation(_)
            | Event::MemorySnapshot(_)
            | Event::Object { .. }
            | Event::SurvivingObject { .. } => {}
        }
        ControlFlow::Continue(())
    })
}

/// Each location's contribution to the peak of every snapshot, and those peaks.
pub fn temporal_high_water_mark(
    capture: &dyn Capture,
    overview: &Overview,
    merge_threads: bool,
) -> Result<TemporalHighWaterMark, AnalysisError> {
    let mut history = HighWaterMarkHistory::default();
    replay_snapshots(capture, overview, merge_threads, &mut history)?;
    Ok(history.finish())
}

/// Per location, when allocations were made and when (if ever) freed.
pub fn temporal_leaks(
    capture: &dyn Capture,
    overview: &Overview,
    merge_threads: bool,
) -> Result<Vec<TemporalRecord>, AnalysisError> {
    let mut lifetimes = AllocationLifetimes::default();
    replay_snapshots(capture, overview, merge_threads, &mut lifetimes)?;
    Ok(lifetimes.finish())
}
