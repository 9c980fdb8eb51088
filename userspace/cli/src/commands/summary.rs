//! `memray summary`: the functions that allocate most memory, as a table.

use std::path::PathBuf;

use memray_reporters::summary::{Summary, N_COLUMNS};

use super::capture::{self, PARSE_FAILURE};
use super::selection::TemporaryArgs;
use crate::error::CliResult;

/// Generate a terminal-based summary report of the functions that allocate most memory
#[derive(clap::Args)]
pub struct Args {
    /// Results of the tracker run
    results: PathBuf,
    /// Column number to sort on
    #[arg(short, long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=N_COLUMNS as i64))]
    sort_column: u8,
    /// Maximum number of rows to display
    #[arg(short = 'r', long)]
    max_rows: Option<usize>,
    #[command(flatten)]
    temporary: TemporaryArgs,
}

/// memray's default row count: the terminal's height minus 5 (24 lines
/// when stdout is not a terminal), at least 10.
fn default_rows() -> usize {
    // SAFETY: TIOCGWINSZ only fills the winsize struct we own.
    let lines = unsafe {
        let mut size: libc::winsize = std::mem::zeroed();
        if libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) == 0 && size.ws_row > 0 {
            usize::from(size.ws_row)
        } else {
            24
        }
    };
    lines.saturating_sub(5).max(10)
}

pub fn run(args: Args) -> CliResult {
    let selection = args.temporary.selection("summary", false)?;
    let capture = capture::open(&args.results, PARSE_FAILURE)?;
    // memray merges threads for the peak, not for temporary allocations.
    let merge_threads = args.temporary.threshold().is_none();
    let (_, groups) = capture::selected(&capture, selection, merge_threads)?;
    let summary = Summary::new(&groups, &capture);
    capture::warn_if_cut_off(&capture);
    let rows = args
        .max_rows
        .filter(|r| *r > 0)
        .unwrap_or_else(default_rows);
    print!("{}", summary.render(usize::from(args.sort_column), rows));
    Ok(())
}
