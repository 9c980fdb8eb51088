//! Opening a capture and running a report's passes over it, as every
//! reporter does: memray's failure wording, and one line on stderr when the
//! capture turns out to be cut short.

use std::path::Path;

use memray_analysis::{AllocationGroup, CaptureFile, Overview};
use memray_reporters::input::{open_capture, report_failure, select, Selection};

use crate::error::CliError;

/// memray's message for captures it cannot read.
pub const PARSE_FAILURE: &str = "Failed to parse allocation records in";

/// Opens `results`; `failure` starts the message if it cannot be read.
pub fn open(results: &Path, failure: &str) -> Result<CaptureFile, CliError> {
    open_capture(results, failure).map_err(CliError::new)
}

/// The overview and the allocations `selection` picks.
pub fn selected(
    capture: &CaptureFile,
    selection: Selection,
    merge_threads: bool,
) -> Result<(Overview, Vec<AllocationGroup>), CliError> {
    select(capture, selection, merge_threads)
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

/// Prints [`cut_off_warning`] if the last pass over `capture` found it cut
/// short. Every reporter calls it once, after its passes.
pub fn warn_if_cut_off(capture: &CaptureFile) {
    if capture.is_truncated() {
        eprintln!("{}", cut_off_warning(capture.path()));
    }
}
