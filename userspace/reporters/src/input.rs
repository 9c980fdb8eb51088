//! Choosing which allocations a report shows.

use memray_analysis::{
    memory, overview_and_high_water_mark, overview_and_leaks, overview_and_temporary_allocations,
    AllocationGroup, AnalysisError, CaptureFile, Overview,
};

use crate::progress::WithProgress;

/// Which allocations a report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    HighWaterMark,
    Leaks,
    /// Freed within `threshold` later allocations of the same thread.
    Temporary(usize),
}

impl Selection {
    /// From memray's flags: `--leaks`, `--temporary-allocation-threshold N`
    /// / `--temporary-allocations` (N = 1).
    pub fn from_flags(leaks: bool, temporary_threshold: Option<usize>) -> Selection {
        match (leaks, temporary_threshold) {
            (_, Some(n)) => Selection::Temporary(n),
            (true, None) => Selection::Leaks,
            (false, None) => Selection::HighWaterMark,
        }
    }
}

/// The pass-1 overview and the selected groups, with a progress bar on
/// stderr if it is a terminal.
pub fn select(
    capture: &CaptureFile,
    selection: Selection,
    merge_threads: bool,
) -> Result<(Overview, Vec<AllocationGroup>), AnalysisError> {
    select_keeping_memory(
        capture,
        selection,
        merge_threads,
        memory::DEFAULT_MAX_MEMORY_RECORDS,
    )
}

/// [`select`], with the overview's memory snapshots thinned to
/// `max_memory_records` (0: every one kept).
pub fn select_keeping_memory(
    capture: &CaptureFile,
    selection: Selection,
    merge_threads: bool,
    max_records: usize,
) -> Result<(Overview, Vec<AllocationGroup>), AnalysisError> {
    let capture = &WithProgress::new(capture);
    Ok(match selection {
        Selection::HighWaterMark => {
            overview_and_high_water_mark(capture, max_records, merge_threads)?
        }
        Selection::Leaks => overview_and_leaks(capture, max_records, merge_threads)?,
        Selection::Temporary(threshold) => {
            overview_and_temporary_allocations(capture, max_records, threshold, merge_threads)?
        }
    })
}
