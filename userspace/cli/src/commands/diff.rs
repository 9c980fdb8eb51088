//! `memray diff OLD NEW`: what grew or shrank between two captures, at the
//! peak and in leaks, by allocating location.

use memray_analysis::CaptureFile;
use memray_reporters::diff::{render_section, ByLocation};
use memray_reporters::input::{open_capture, report_failure, select, Selection};

use super::report::PARSE_FAILURE;
use crate::error::{CliError, CliResult};

/// Compare two captures: peak memory and leaks by location
#[derive(clap::Args)]
pub struct Args {
    /// The baseline capture
    old: String,
    /// The capture to compare with it
    new: String,
    /// Maximum number of locations to list per section
    #[arg(short = 'r', long, default_value_t = 20)]
    max_rows: usize,
}

fn by_location(
    results: &str,
    capture: &CaptureFile,
    selection: Selection,
) -> Result<ByLocation, CliError> {
    let (_, groups) = select(capture, selection, true)
        .map_err(|e| CliError::new(report_failure(results, PARSE_FAILURE, e)))?;
    Ok(ByLocation::new(&groups, capture))
}

pub fn run(args: Args) -> CliResult {
    let old = open_capture(&args.old, PARSE_FAILURE).map_err(CliError::new)?;
    let new = open_capture(&args.new, PARSE_FAILURE).map_err(CliError::new)?;
    for (title, selection) in [
        ("Peak memory", Selection::HighWaterMark),
        ("Leaks", Selection::Leaks),
    ] {
        let section = render_section(
            title,
            &by_location(&args.old, &old, selection)?,
            &by_location(&args.new, &new, selection)?,
            args.max_rows,
        );
        println!("{section}");
    }
    Ok(())
}
