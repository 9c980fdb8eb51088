//! Opening a capture and running a report's passes over it, as every
//! reporter does: memray's failure wording, and lines on stderr when the
//! capture turns out to be cut short or damaged, or its native frames'
//! files are gone.

use std::fmt::Display;
use std::path::Path;

use memray_analysis::memory::DEFAULT_MAX_MEMORY_RECORDS;
use memray_analysis::{AllocationGroup, AnalysisError, CaptureFile, NeedsEveryRecord, Overview};
use memray_reporters::input::{select_keeping_memory, Selection};

use crate::error::CliError;

/// memray's message for captures it cannot read.
pub const PARSE_FAILURE: &str = "Failed to parse allocation records in";

/// Opens `results`, or explains why not in memray's words; `failure` starts
/// the message if it cannot be read.
pub fn open(results: &Path, failure: &str) -> Result<CaptureFile, CliError> {
    if !results.is_file() {
        return Err(CliError::new(format!(
            "No such file: {}",
            results.display()
        )));
    }
    CaptureFile::open(results).map_err(|e| CliError::new(unreadable(results, failure, e)))
}

/// Why a report over `results` failed, in memray's words: its refusal of a
/// query an aggregated capture cannot answer, or a capture that stops being
/// readable part-way like one that cannot be opened ("{failure} {results}"
/// then "Reason: …").
pub fn report_failure(results: &Path, failure: &str, error: AnalysisError) -> String {
    match error {
        AnalysisError::Unsupported(query) => refusal(query).to_owned(),
        unreadable_capture => unreadable(results, failure, unreadable_capture),
    }
}

/// memray's refusals on aggregated captures.
fn refusal(query: NeedsEveryRecord) -> &'static str {
    match query {
        NeedsEveryRecord::TemporaryAllocations => {
            "Can't find temporary allocations using a pre-aggregated capture file."
        }
        NeedsEveryRecord::Statistics => {
            "Can't compute statistics using a pre-aggregated capture file."
        }
        NeedsEveryRecord::AllocationHistory => {
            "Can't get allocation history using a pre-aggregated capture file."
        }
    }
}

fn unreadable(results: &Path, failure: &str, reason: impl Display) -> String {
    format!("{failure} {}\nReason: {reason}", results.display())
}

/// The overview and the allocations `selection` picks.
pub fn selected(
    capture: &CaptureFile,
    selection: Selection,
    merge_threads: bool,
) -> Result<(Overview, Vec<AllocationGroup>), CliError> {
    selected_keeping_memory(
        capture,
        selection,
        merge_threads,
        DEFAULT_MAX_MEMORY_RECORDS,
    )
}

/// [`selected`] with the overview's memory snapshots thinned to
/// `max_memory_records` (0: every one kept, as the peak of several
/// processes' summed heap needs).
pub fn selected_keeping_memory(
    capture: &CaptureFile,
    selection: Selection,
    merge_threads: bool,
    max_memory_records: usize,
) -> Result<(Overview, Vec<AllocationGroup>), CliError> {
    select_keeping_memory(capture, selection, merge_threads, max_memory_records)
        .map_err(|e| CliError::new(report_failure(capture.path(), PARSE_FAILURE, e)))
}

/// The one line every command prints on stderr about a capture cut short:
/// its numbers cover only what was recorded before the cut.
pub fn cut_off_warning(results: &Path) -> String {
    format!(
        "warning: {} ends without a trailer: the capture was cut off",
        results.display()
    )
}

/// The one line every command prints on stderr about a capture damaged in
/// the middle: its numbers cover only the records before the damage.
pub fn damage_warning(results: &Path, offset: u64) -> String {
    format!(
        "warning: {} is damaged at offset {offset}: the report covers the records before it",
        results.display()
    )
}

/// Prints [`damage_warning`] or [`cut_off_warning`] if the passes over
/// `capture` did not read all of it, then one line per mapped file whose
/// native frames could not be symbolized. Every reporter calls it once,
/// after its passes and stacks.
pub fn print_capture_warnings(capture: &CaptureFile) {
    if let Some(offset) = capture.damaged_at() {
        eprintln!("{}", damage_warning(capture.path(), offset));
    } else if capture.is_truncated() {
        eprintln!("{}", cut_off_warning(capture.path()));
    }
    for warning in capture.take_native_warnings() {
        eprintln!("{warning}");
    }
}
