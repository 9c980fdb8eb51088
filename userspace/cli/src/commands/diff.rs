//! `memray diff OLD NEW`: what grew or shrank between two captures, at the
//! peak and in leaks, by allocating location.

use std::path::PathBuf;

use memray_analysis::{memory, overview_high_water_mark_and_leaks, CaptureFile};
use memray_reporters::diff::{render_section, ByLocation};
use memray_reporters::progress::WithProgress;

use super::capture::{self, report_failure, PARSE_FAILURE};
use crate::error::{CliError, CliResult};

/// Compare two captures: peak memory and leaks by location
#[derive(clap::Args)]
pub struct Args {
    /// The baseline capture
    old: PathBuf,
    /// The capture to compare with it
    new: PathBuf,
    /// Maximum number of locations to list per section
    #[arg(short = 'r', long, default_value_t = 20)]
    max_rows: usize,
}

/// The peak's and the leaks' allocations by location, from one pass.
fn by_location(capture: &CaptureFile) -> Result<[ByLocation; 2], CliError> {
    let replay = &WithProgress::new(capture);
    let (_, (peak, leaks)) =
        overview_high_water_mark_and_leaks(replay, memory::DEFAULT_MAX_MEMORY_RECORDS, true)
            .map_err(|e| CliError::new(report_failure(capture.path(), PARSE_FAILURE, e)))?;
    Ok([peak, leaks].map(|groups| ByLocation::new(&groups, capture)))
}

pub fn run(args: Args) -> CliResult {
    let old = capture::open(&args.old, PARSE_FAILURE)?;
    let new = capture::open(&args.new, PARSE_FAILURE)?;
    let (old_sections, new_sections) = (by_location(&old)?, by_location(&new)?);
    let sections: Vec<String> = ["Peak memory", "Leaks"]
        .into_iter()
        .zip(old_sections.iter().zip(&new_sections))
        .map(|(title, (old, new))| render_section(title, old, new, args.max_rows))
        .collect();
    capture::print_capture_warnings(&old);
    capture::print_capture_warnings(&new);
    for section in sections {
        println!("{section}");
    }
    Ok(())
}
