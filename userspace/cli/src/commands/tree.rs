//! `memray tree`: the biggest allocations at the peak as a call tree.

use memray_reporters::input::{open_capture, select, Selection};
use memray_reporters::tree::Tree;

use super::summary::TemporaryArgs;
use crate::error::{CliError, CliResult};

/// Generate a tree view in the terminal for peak memory usage
#[derive(clap::Args)]
pub struct Args {
    /// Results of the tracker run
    results: String,
    /// Show n biggest allocations (defaults to 200)
    #[arg(short, long, default_value_t = 200)]
    biggest_allocs: usize,
    #[command(flatten)]
    temporary: TemporaryArgs,
}

pub fn run(args: Args) -> CliResult {
    let failure = "Failed to parse allocation records in";
    let capture = open_capture(&args.results, failure).map_err(CliError::new)?;
    let selection = args
        .temporary
        .threshold()
        .map_or(Selection::HighWaterMark, Selection::Temporary);
    let (_, groups) =
        select(&capture, selection, false).map_err(|e| CliError::new(e.to_string()))?;
    print!(
        "{}",
        Tree::new(&groups, &capture, args.biggest_allocs).render()
    );
    Ok(())
}
