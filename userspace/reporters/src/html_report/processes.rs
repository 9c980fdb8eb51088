//! The flame graph and table of several processes' captures: each process
//! as its own capture's page shows it (its peak, leaks or temporary
//! allocations). In the flame graph it is a node of its own (pid and
//! command line) below the root, its threads named after it, and the
//! memory plot draws the processes' summed memory and each one's own heap;
//! in the table it is a column. The page's peak is the peak of the sum
//! over time.

use std::path::PathBuf;

use memray_analysis::{AnalysisError, CaptureFile, Overview};
use memray_html::{
    render_flamegraph, render_table, thin_memory_samples, FlameGraph, FlameGraphBuilder,
    MemorySample, Metadata, PageOptions, ProcessMemory, Table, TableRow,
};

use super::flamegraph::{FlameGraphOptions, ProcessRoot, TreeBuilder};
use super::sources::SourceLines;
use super::table::rows;
use super::ReportError;
use crate::input::{select_keeping_memory, Selection};
use crate::processes::{process_label, Together};

/// A report over several captures that failed, and the capture it failed on.
#[derive(Debug)]
pub struct CaptureFailure {
    pub capture: PathBuf,
    pub error: ReportError,
}

impl CaptureFailure {
    fn analysis(capture: &CaptureFile, error: AnalysisError) -> CaptureFailure {
        CaptureFailure {
            capture: capture.path().to_path_buf(),
            error: ReportError::Analysis(error),
        }
    }
}

/// The flame graph page of `captures`, called `name` (their directory's
/// name, say); see [`processes_flamegraph_model`].
pub fn processes_flamegraph_html(
    captures: &[CaptureFile],
    name: &str,
    selection: Selection,
    options: &FlameGraphOptions,
) -> Result<String, CaptureFailure> {
    let graph = processes_flamegraph_model(captures, name, selection, options)?;
    let page = PageOptions {
        // The model already thinned the samples as --max-memory-records asks.
        max_memory_samples: 0,
        ..PageOptions::default()
    };
    render_flamegraph(&graph, &page).map_err(|error| CaptureFailure {
        capture: PathBuf::from(name),
        error: ReportError::Model(error),
    })
}

/// The flame graph of the allocations `selection` picks in each of
/// `captures`. Of `options`, the mode is not read: a temporal view numbers
/// each process's own snapshots, so it shows one capture.
pub fn processes_flamegraph_model(
    captures: &[CaptureFile],
    name: &str,
    selection: Selection,
    options: &FlameGraphOptions,
) -> Result<FlameGraph, CaptureFailure> {
    let mut graph = FlameGraphBuilder::new(Metadata::default());
    let mut sources = SourceLines::default();
    let mut overviews = Vec::new();
    for capture in captures {
        // Every memory snapshot is kept: thinning could skip the peak of the sum.
        let (overview, groups) =
            select_keeping_memory(capture, selection, options.merge_threads, 0)
                .map_err(|e| CaptureFailure::analysis(capture, e))?;
        let label = process_label(capture.header());
        let mut tree = TreeBuilder {
            graph,
            stacks: capture,
            sources,
            process: Some(ProcessRoot {
                label: &label,
                node: None,
            }),
        };
        for group in &groups {
            tree.add((&group.allocation).into(), group.size, group.n_allocations);
        }
        (graph, sources) = (tree.graph, tree.sources);
        graph.add_process_memory(ProcessMemory {
            name: label,
            samples: thin(&overview.memory, options.max_memory_records),
        });
        overviews.push(overview);
    }
    let together = Together::new(&overviews.iter().collect::<Vec<_>>());
    for sample in thin(&together.memory, options.max_memory_records) {
        graph.add_memory_sample(sample);
    }
    sources.embed(options.confidential_files, &mut graph);
    let mut graph = graph.finish();
    graph.metadata = metadata(
        captures,
        &overviews,
        &together,
        name,
        selection,
        options.merge_threads,
    );
    graph.metadata.inverted = options.inverted;
    Ok(graph)
}

/// The table page of `captures`, called `name`; see [`processes_table_model`].
pub fn processes_table_html(
    captures: &[CaptureFile],
    name: &str,
    selection: Selection,
    merge_threads: bool,
) -> Result<String, CaptureFailure> {
    let table = processes_table_model(captures, name, selection, merge_threads)?;
    Ok(render_table(&table))
}

/// The rows each capture's own table has, with their process.
pub fn processes_table_model(
    captures: &[CaptureFile],
    name: &str,
    selection: Selection,
    merge_threads: bool,
) -> Result<Table, CaptureFailure> {
    let mut all_rows = Vec::new();
    let mut overviews = Vec::new();
    for capture in captures {
        // Every memory snapshot is kept: thinning could skip the peak of the sum.
        let (overview, groups) = select_keeping_memory(capture, selection, merge_threads, 0)
            .map_err(|e| CaptureFailure::analysis(capture, e))?;
        let label = process_label(capture.header());
        all_rows.extend(
            rows(&groups, capture, merge_threads)
                .into_iter()
                .map(|row| TableRow {
                    process: label.clone(),
                    ..row
                }),
        );
        overviews.push(overview);
    }
    let together = Together::new(&overviews.iter().collect::<Vec<_>>());
    Ok(Table {
        metadata: metadata(
            captures,
            &overviews,
            &together,
            name,
            selection,
            merge_threads,
        ),
        rows: all_rows,
    })
}

/// Samples thinned as `--max-memory-records` asks, the highest heap kept.
fn thin(memory: &[memray_analysis::MemorySnapshot], max: usize) -> Vec<MemorySample> {
    let samples: Vec<MemorySample> = memory
        .iter()
        .map(|s| MemorySample {
            time_ms: s.time_ms,
            rss: s.rss,
            heap: s.heap,
        })
        .collect();
    thin_memory_samples(&samples, max)
}

/// The page header's facts about the processes together.
fn metadata(
    captures: &[CaptureFile],
    overviews: &[Overview],
    together: &Together,
    name: &str,
    selection: Selection,
    merge_threads: bool,
) -> Metadata {
    let kind = super::flamegraph::FlameGraphMode::Snapshot(selection).kind();
    let each: Vec<Metadata> = captures
        .iter()
        .zip(overviews)
        .map(|(capture, overview)| super::page_metadata(capture, overview, kind, merge_threads))
        .collect();
    let pids: Vec<String> = captures
        .iter()
        .map(|c| c.header().pid.to_string())
        .collect();
    let first = each.first().cloned().unwrap_or_default();
    let same_allocator = each
        .iter()
        .all(|m| m.python_allocator == first.python_allocator);
    Metadata {
        capture_name: name.to_owned(),
        command_line: format!("{} processes (pids {})", captures.len(), pids.join(", ")),
        pid: None,
        start_time_ms: each.iter().map(|m| m.start_time_ms).min().unwrap_or(0),
        end_time_ms: each.iter().map(|m| m.end_time_ms).max().unwrap_or(0),
        peak_memory: together.peak,
        total_allocations: each.iter().map(|m| m.total_allocations).sum(),
        kind,
        python_allocator: if same_allocator {
            first.python_allocator
        } else {
            "mixed".to_owned()
        },
        has_native_traces: each.iter().any(|m| m.has_native_traces),
        trace_python_allocators: each.iter().all(|m| m.trace_python_allocators),
        merge_threads,
        inverted: false,
        pymalloc_leaks_warning: each.iter().any(|m| m.pymalloc_leaks_warning),
        cut_off: each.iter().any(|m| m.cut_off),
    }
}
