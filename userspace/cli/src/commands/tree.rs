//! `memray tree`: the biggest allocations at the peak as a call tree, to
//! browse when stdout is a terminal, as text otherwise.

use std::io::IsTerminal;

use memray_reporters::input::{open_capture, report_failure, select, Selection};
use memray_reporters::tree::Tree;
use memray_reporters::{tree_view, Metadata};

use super::report::PARSE_FAILURE;
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
    let capture = open_capture(&args.results, PARSE_FAILURE).map_err(CliError::new)?;
    let selection = args
        .temporary
        .threshold()
        .map_or(Selection::HighWaterMark, Selection::Temporary);
    let (overview, groups) = select(&capture, selection, false)
        .map_err(|e| CliError::new(report_failure(&args.results, PARSE_FAILURE, e)))?;
    let tree = Tree::new(&groups, &capture, args.biggest_allocs);
    if !std::io::stdout().is_terminal() {
        print!("{}", tree.render());
        return Ok(());
    }
    let metadata = Metadata::new(
        capture.header(),
        overview.records,
        overview.high_water_mark.bytes,
    );
    let context = tree_view::Context::new(
        &args.results,
        &metadata,
        selection,
        &capture.header().sys_path,
    );
    tree_view::explore(&tree, &context)
        .map_err(|e| CliError::new(format!("Cannot show the tree: {e}")))
}
