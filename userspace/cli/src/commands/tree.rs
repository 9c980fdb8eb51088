//! `memray tree`: the biggest allocations at the peak as a call tree, to
//! browse when stdout is a terminal, as text otherwise.

use std::io::IsTerminal;
use std::path::PathBuf;

use memray_reporters::tree::Tree;
use memray_reporters::{tree_view, Metadata};

use super::capture::{self, PARSE_FAILURE};
use super::selection::TemporaryArgs;
use crate::error::{CliError, CliResult};

/// Generate a tree view in the terminal for peak memory usage
#[derive(clap::Args)]
pub struct Args {
    /// Results of the tracker run
    results: PathBuf,
    /// Show n biggest allocations (defaults to 200)
    #[arg(short, long, default_value_t = 200)]
    biggest_allocs: usize,
    #[command(flatten)]
    temporary: TemporaryArgs,
}

pub fn run(args: Args) -> CliResult {
    let selection = args.temporary.selection("tree", false)?;
    let capture = capture::open(&args.results, PARSE_FAILURE)?;
    let (overview, groups) = capture::selected(&capture, selection, false)?;
    let tree = Tree::new(&groups, &capture, args.biggest_allocs);
    capture::print_capture_warnings(&capture);
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
