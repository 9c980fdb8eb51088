//! `memray diff OLD NEW`: what grew or shrank between two captures, at the
//! peak and in leaks, by allocating location.

use std::path::PathBuf;

use memray_analysis::CaptureFile;
use memray_reporters::diff::{render_section, ByLocation};
use memray_reporters::input::Selection;

use super::capture::{self, PARSE_FAILURE};
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

fn by_location(capture: &CaptureFile, selection: Selection) -> Result<ByLocation, CliError> {
    let (_, groups) = capture::selected(capture, selection, true)?;
    Ok(ByLocation::new(&groups, capture))
}

pub fn run(args: Args) -> CliResult {
    let old = capture::open(&args.old, PARSE_FAILURE)?;
    let new = capture::open(&args.new, PARSE_FAILURE)?;
    let mut sections = Vec::new();
    for (title, selection) in [
        ("Peak memory", Selection::HighWaterMark),
        ("Leaks", Selection::Leaks),
    ] {
        let (old, new) = (by_location(&old, selection)?, by_location(&new, selection)?);
        sections.push(render_section(title, &old, &new, args.max_rows));
    }
    capture::print_capture_warnings(&old);
    capture::print_capture_warnings(&new);
    for section in sections {
        println!("{section}");
    }
    Ok(())
}
