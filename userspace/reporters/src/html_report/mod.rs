//! Flame graph and table pages built from the analysis engine (memray flamegraph, memray table).
//!
//! The models ([`flamegraph_model`], [`table_model`]) are memray-html's plain
//! data, filled as memray's reporters fill theirs; the `_html` functions
//! render them into one self-contained page.

mod flamegraph;
mod processes;
mod sources;
mod stacks;
mod table;

use std::fmt;

use memray_analysis::{AnalysisError, CaptureFile, Overview};
use memray_html::{render_flamegraph, render_table, Metadata, ModelError, PageOptions, ReportKind};

use crate::input::Selection;

pub use flamegraph::{flamegraph_model, FlameGraphMode, FlameGraphOptions};
pub use processes::{
    processes_flamegraph_html, processes_flamegraph_model, processes_table_html,
    processes_table_model, CaptureFailure,
};
pub use sources::ConfidentialFiles;
pub use stacks::{MAX_STACK_DEPTH, STACK_TOO_DEEP};
pub use table::table_model;

/// Why a page could not be made.
#[derive(Debug)]
pub enum ReportError {
    /// The capture could not be analysed as asked.
    Analysis(AnalysisError),
    /// The model broke an invariant of the page (a bug, reported, not panicked).
    Model(ModelError),
}

impl fmt::Display for ReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReportError::Analysis(error) => write!(f, "{error}"),
            ReportError::Model(error) => write!(f, "cannot render the report: {error}"),
        }
    }
}

impl From<AnalysisError> for ReportError {
    fn from(error: AnalysisError) -> Self {
        ReportError::Analysis(error)
    }
}

/// The flame graph page of `capture`.
pub fn flamegraph_html(
    capture: &CaptureFile,
    options: &FlameGraphOptions,
) -> Result<String, ReportError> {
    let graph = flamegraph_model(capture, options)?;
    let page = PageOptions {
        // The overview already thinned the records as --max-memory-records asks.
        max_memory_samples: 0,
        ..PageOptions::default()
    };
    render_flamegraph(&graph, &page).map_err(ReportError::Model)
}

/// The table page of `capture`.
pub fn table_html(
    capture: &CaptureFile,
    selection: Selection,
    merge_threads: bool,
) -> Result<String, ReportError> {
    Ok(render_table(&table_model(
        capture,
        selection,
        merge_threads,
    )?))
}

/// The page header's facts about `capture`.
fn page_metadata(
    capture: &CaptureFile,
    overview: &Overview,
    kind: ReportKind,
    merge_threads: bool,
) -> Metadata {
    let header = capture.header();
    let facts = crate::Metadata::new(header, overview.records, overview.high_water_mark.bytes);
    // memray's rule: only malloc frees what Python frees, unless the
    // Python allocators' frees were traced.
    let exact_frees = matches!(facts.python_allocator, "malloc" | "malloc_debug")
        || facts.trace_python_allocators;
    Metadata {
        capture_name: capture
            .path()
            .file_name()
            .map_or_else(String::new, |name| name.to_string_lossy().into_owned()),
        command_line: facts.command_line,
        pid: u32::try_from(facts.pid).ok(),
        start_time_ms: u64::try_from(facts.start_time_ms).unwrap_or(0),
        end_time_ms: u64::try_from(facts.end_time_ms).unwrap_or(0),
        peak_memory: facts.peak_memory,
        total_allocations: facts.total_allocations,
        kind,
        python_allocator: facts.python_allocator.to_owned(),
        has_native_traces: facts.has_native_traces,
        trace_python_allocators: facts.trace_python_allocators,
        merge_threads,
        inverted: false,
        // memray warns on leaks reports over an arena allocator.
        pymalloc_leaks_warning: kind == ReportKind::Leaks && !exact_frees,
        cut_off: capture.is_truncated(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use memray_analysis::{high_water_mark, leaks, memory, overview};

    /// memray 1.20's capture of the bundled example program.
    fn example_capture() -> CaptureFile {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/captures/example-memray-1.20.bin"
        );
        CaptureFile::open(path).expect("the bundled capture")
    }

    #[test]
    fn graphs_hold_what_the_engine_selects() {
        let capture = example_capture();
        let overview = overview(&capture, memory::DEFAULT_MAX_MEMORY_RECORDS).unwrap();
        let peak_groups = high_water_mark(&capture, &overview, true).unwrap();
        let peak = flamegraph_model(&capture, &FlameGraphOptions::default()).unwrap();
        peak.check().unwrap();
        assert_eq!(peak.total_bytes(), overview.high_water_mark.bytes);
        assert_eq!(
            peak.total_bytes(),
            peak_groups.iter().map(|g| g.size).sum::<u64>()
        );
        assert_eq!(peak.metadata.peak_memory, overview.high_water_mark.bytes);
        assert_eq!(peak.memory.len(), overview.memory.len());

        let options = FlameGraphOptions {
            mode: FlameGraphMode::Snapshot(Selection::Leaks),
            ..FlameGraphOptions::default()
        };
        let leaked = flamegraph_model(&capture, &options).unwrap();
        let leaked_bytes: u64 = leaks(&capture, true).unwrap().iter().map(|g| g.size).sum();
        assert_eq!(leaked.total_bytes(), leaked_bytes);
        assert!(leaked.metadata.pymalloc_leaks_warning);

        let table = table_model(&capture, Selection::HighWaterMark, true).unwrap();
        let table_bytes: u64 = table.rows.iter().map(|r| r.size).sum();
        assert_eq!(table_bytes, overview.high_water_mark.bytes);
    }

    #[test]
    fn temporal_graphs_have_a_mark_per_snapshot() {
        let capture = example_capture();
        let options = FlameGraphOptions {
            mode: FlameGraphMode::TemporalHighWaterMark,
            ..FlameGraphOptions::default()
        };
        let graph = flamegraph_model(&capture, &options).unwrap();
        graph.check().unwrap();
        let temporal = graph.temporal.as_ref().expect("a temporal graph");
        let marks = temporal.high_water_mark_by_snapshot.as_ref().unwrap();
        assert_eq!(marks.len(), graph.memory.len() + 1);
        assert_eq!(marks.iter().max(), Some(&graph.metadata.peak_memory));
    }

    pub(crate) fn metadata() -> Metadata {
        Metadata {
            capture_name: "test.bin".to_owned(),
            command_line: "test.py".to_owned(),
            python_allocator: "pymalloc".to_owned(),
            merge_threads: true,
            ..Metadata::default()
        }
    }
}
