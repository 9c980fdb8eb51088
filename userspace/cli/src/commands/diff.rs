//! `memray diff OLD NEW`: what grew or shrank between two captures, at the
//! peak and in leaks, by allocating location.

use memray_analysis::CaptureFile;
use memray_reporters::diff::{render_section, ByLocation};
use memray_reporters::input::{open_capture, select, Selection};

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

fn by_location(capture: &CaptureFile, selection: Selection) -> Result<ByLocation, CliError> {
    let (_, groups) = select(capture, selection, true).map_err(|e| CliError::new(e.to_string()))?;
    Ok(ByLocation::new(&groups, capture))
}

pub fn run(args: Args) -> CliResult {
    let failure = "Failed to parse allocation records in";
    let old = open_capture(&args.old, failure).map_err(CliError::new)?;
    let new = open_capture(&args.new, failure).map_err(CliError::new)?;
    for (title, selection) in [
        ("Peak memory", Selection::HighWaterMark),
        ("Leaks", Selection::Leaks),
    ] {
        let section = render_section(
            title,
            &by_location(&old, selection)?,
            &by_location(&new, selection)?,
            args.max_rows,
        );
        println!("{section}");
    }
    Ok(())
}
