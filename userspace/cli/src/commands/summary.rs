//! `memray summary`: the functions that allocate most memory, as a table.

use memray_reporters::input::{open_capture, report_failure, select, Selection};
use memray_reporters::summary::{Summary, N_COLUMNS};

use super::report::PARSE_FAILURE;
use crate::error::{CliError, CliResult};

/// Generate a terminal-based summary report of the functions that allocate most memory
#[derive(clap::Args)]
pub struct Args {
    /// Results of the tracker run
    results: String,
    /// Column number to sort on
    #[arg(short, long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=N_COLUMNS as i64))]
    sort_column: u8,
    /// Maximum number of rows to display
    #[arg(short = 'r', long)]
    max_rows: Option<usize>,
    #[command(flatten)]
    temporary: TemporaryArgs,
}

/// memray's `--temporary-allocation-threshold N | --temporary-allocations`.
#[derive(clap::Args)]
#[group(multiple = false)]
pub struct TemporaryArgs {
    /// Report temporary allocations, as opposed to leaked allocations or high
    /// watermark allocations. An allocation is considered temporary if at most N
    /// other allocations occur before it is deallocated. With N=0, an allocation
    /// is temporary only if it is immediately deallocated before any other
    /// allocation occurs.
    #[arg(long, value_name = "N")]
    pub temporary_allocation_threshold: Option<usize>,
    /// Equivalent to --temporary-allocation-threshold=1
    #[arg(long)]
    pub temporary_allocations: bool,
}

impl TemporaryArgs {
    pub fn threshold(&self) -> Option<usize> {
        self.temporary_allocation_threshold
            .or(self.temporary_allocations.then_some(1))
    }

    /// The flag that was given, as the user spelled it.
    pub fn flag(&self) -> Option<&'static str> {
        if self.temporary_allocations {
            Some("--temporary-allocations")
        } else {
            self.temporary_allocation_threshold
                .map(|_| "--temporary-allocation-threshold")
        }
    }
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
    let capture = open_capture(&args.results, PARSE_FAILURE).map_err(CliError::new)?;
    let (selection, merge_threads) = match args.temporary.threshold() {
        Some(n) => (Selection::Temporary(n), false),
        None => (Selection::HighWaterMark, true),
    };
    let (_, groups) = select(&capture, selection, merge_threads)
        .map_err(|e| CliError::new(report_failure(&args.results, PARSE_FAILURE, e)))?;
    let summary = Summary::new(&groups, &capture);
    let rows = args
        .max_rows
        .filter(|r| *r > 0)
        .unwrap_or_else(default_rows);
    print!("{}", summary.render(usize::from(args.sort_column), rows));
    Ok(())
}
