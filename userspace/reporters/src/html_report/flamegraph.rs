//! The flame graph model of a capture (memray's `FlameGraphReporter`): the
//! selected allocations as a call tree split by thread, memory over time,
//! source lines and, for temporal reports, when each location's memory
//! was live.

use memray_analysis::{
    overview_and_temporal_high_water_mark, overview_and_temporal_leaks, AllocationGroup,
    AnalysisError, CaptureFile, Overview, StackIds, StackResolver, TemporalHighWaterMark,
    TemporalRecord,
};
use memray_html::{
    FlameGraph, FlameGraphBuilder, Interval, MemorySample, NodeId, ReportKind, StackFrame, Temporal,
};

use super::sources::{ConfidentialFiles, SourceLines};
use super::stacks::{flame_path, thread_label};
use crate::input::{select_keeping_memory, Selection};
use crate::progress::WithProgress;

/// What the flame graph shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlameGraphMode {
    /// The allocations `Selection` picks, at one moment (`memray flamegraph`).
    Snapshot(Selection),
    /// `--temporal`: the high-water mark of any window the user picks.
    TemporalHighWaterMark,
    /// `--temporal --leaks`: what a window allocated and never freed.
    TemporalLeaks,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlameGraphOptions {
    pub mode: FlameGraphMode,
    /// memray's default; `--split-threads` turns it off.
    pub merge_threads: bool,
    /// Open the page inverted (`--inverted`).
    pub inverted: bool,
    /// memray's `--max-memory-records` (0: keep every record).
    pub max_memory_records: usize,
    pub confidential_files: ConfidentialFiles,
}

impl Default for FlameGraphOptions {
    fn default() -> Self {
        FlameGraphOptions {
            mode: FlameGraphMode::Snapshot(Selection::HighWaterMark),
            merge_threads: true,
            inverted: false,
            max_memory_records: memray_analysis::memory::DEFAULT_MAX_MEMORY_RECORDS,
            confidential_files: ConfidentialFiles::Default,
        }
    }
}

impl FlameGraphMode {
    pub(super) fn kind(self) -> ReportKind {
        match self {
            FlameGraphMode::Snapshot(Selection::HighWaterMark)
            | FlameGraphMode::TemporalHighWaterMark => ReportKind::Peak,
            FlameGraphMode::Snapshot(Selection::Leaks) | FlameGraphMode::TemporalLeaks => {
                ReportKind::Leaks
            }
            FlameGraphMode::Snapshot(Selection::Temporary(_)) => ReportKind::Temporary,
        }
    }
}

/// Adds stacks to a builder, keyed as memray keys its nodes: frame, parent
/// and thread name.
pub(super) struct TreeBuilder<'a> {
    pub(super) graph: FlameGraphBuilder,
    pub(super) stacks: &'a dyn StackResolver,
    pub(super) sources: SourceLines,
    /// Over several processes: the process the stacks belong to.
    pub(super) process: Option<ProcessRoot<'a>>,
}

/// A process as the root's child above its stacks, in one node whatever
/// thread allocated, and the prefix of its threads' names.
pub(super) struct ProcessRoot<'a> {
    pub(super) label: &'a str,
    /// Made with the first stack.
    pub(super) node: Option<NodeId>,
}

impl TreeBuilder<'_> {
    pub(super) fn add(&mut self, at: StackIds, bytes: u64, n_allocations: u64) -> NodeId {
        let mut thread = thread_label(self.stacks, at.tid);
        if let Some(process) = &self.process {
            thread = format!("{}: {thread}", process.label);
        }
        let thread = self.graph.thread(&thread);
        let stack = self.stacks.stack(at);
        let path = flame_path(&stack);
        for frame in &path {
            self.sources.want(frame.filename, frame.lineno);
        }
        let parent = match &mut self.process {
            None => 0,
            Some(process) => *process.node.get_or_insert_with(|| {
                let frame = process_frame(process.label);
                self.graph.add_stack(thread, &[frame], 0, 0)
            }),
        };
        self.graph
            .add_stack_under(parent, thread, &path, bytes, n_allocations)
    }

    fn add_temporal(&mut self, records: &[TemporalRecord]) -> Result<(), AnalysisError> {
        for record in records {
            let location = record.location;
            let node = self.add((&location).into(), 0, 0);
            for interval in &record.intervals {
                self.graph.add_interval(Interval {
                    allocated_before: snapshot_number(interval.allocated_before_snapshot)?,
                    deallocated_before: interval
                        .deallocated_before_snapshot
                        .map(snapshot_number)
                        .transpose()?,
                    node,
                    n_allocations: interval.n_allocations,
                    bytes: interval.n_bytes,
                });
            }
        }
        Ok(())
    }
}

/// What a flame graph's mode selected, from the overview's pass.
enum Selected {
    Groups(Vec<AllocationGroup>),
    HighWaterMark(TemporalHighWaterMark),
    Leaks(Vec<TemporalRecord>),
}

/// The node that stands for a process above its stacks.
fn process_frame(label: &str) -> StackFrame<'_> {
    StackFrame {
        function: label,
        filename: "",
        lineno: 0,
        interesting: true,
        import_system: false,
    }
}

fn snapshot_number(snapshot: u64) -> Result<u32, AnalysisError> {
    u32::try_from(snapshot).map_err(|_| AnalysisError::TooManySnapshots(snapshot))
}

/// The flame graph of `capture`.
pub fn flamegraph_model(
    capture: &CaptureFile,
    options: &FlameGraphOptions,
) -> Result<FlameGraph, AnalysisError> {
    let replay = &WithProgress::new(capture);
    let merge = options.merge_threads;
    let max_memory_records = options.max_memory_records;
    // What is shown comes from the overview's own pass.
    let (overview, selected) = match options.mode {
        FlameGraphMode::Snapshot(selection) => {
            let (overview, groups) =
                select_keeping_memory(capture, selection, merge, max_memory_records)?;
            (overview, Selected::Groups(groups))
        }
        FlameGraphMode::TemporalHighWaterMark => {
            let (overview, temporal) =
                overview_and_temporal_high_water_mark(replay, max_memory_records, merge)?;
            (overview, Selected::HighWaterMark(temporal))
        }
        FlameGraphMode::TemporalLeaks => {
            let (overview, leaks) = overview_and_temporal_leaks(replay, max_memory_records, merge)?;
            (overview, Selected::Leaks(leaks))
        }
    };
    let kind = options.mode.kind();
    let mut metadata = super::page_metadata(capture, &overview, kind, options.merge_threads);
    metadata.inverted = options.inverted;
    let mut tree = TreeBuilder {
        graph: FlameGraphBuilder::new(metadata),
        stacks: capture,
        sources: SourceLines::default(),
        process: None,
    };
    add_memory(&mut tree.graph, &overview);
    match selected {
        Selected::Groups(groups) => {
            for group in &groups {
                tree.add((&group.allocation).into(), group.size, group.n_allocations);
            }
        }
        Selected::HighWaterMark(temporal) => {
            tree.add_temporal(&temporal.records)?;
            let marks = marks_for_every_snapshot(temporal.high_water_mark_by_snapshot, &overview);
            tree.graph.set_high_water_mark_by_snapshot(marks);
        }
        Selected::Leaks(leaks) => tree.add_temporal(&leaks)?,
    }
    let TreeBuilder {
        mut graph, sources, ..
    } = tree;
    sources.embed(options.confidential_files, &mut graph);
    let mut graph = graph.finish();
    if options.mode == FlameGraphMode::TemporalLeaks {
        // A capture that leaked nothing still gets the temporal page.
        graph.temporal.get_or_insert_with(Temporal::default);
    }
    Ok(graph)
}

/// memray stops at the last allocation record, so snapshots that close
/// after it have no mark; the heap no longer changes there, so their peak is
/// the final heap, which the last memory sample holds.
fn marks_for_every_snapshot(mut marks: Vec<u64>, overview: &Overview) -> Vec<u64> {
    let snapshots = overview.memory.len() + 1;
    if marks.len() < snapshots {
        let final_heap = overview.memory.last().map_or(0, |sample| sample.heap);
        marks.resize(snapshots, final_heap);
    }
    marks
}

fn add_memory(graph: &mut FlameGraphBuilder, overview: &Overview) {
    for snapshot in &overview.memory {
        graph.add_memory_sample(MemorySample {
            time_ms: snapshot.time_ms,
            rss: snapshot.rss,
            heap: snapshot.heap,
        });
    }
}
