//! `memray summary`: the functions that allocate most memory, as a table.

use std::path::PathBuf;

use memray_reporters::processes::{process_label, Together};
use memray_reporters::summary::{render_processes, ProcessSummary, Summary, N_COLUMNS};

use super::capture::{self, PARSE_FAILURE};
use super::inputs::{open_processes, Inputs};
use super::selection::TemporaryArgs;
use crate::error::CliResult;

/// Generate a terminal-based summary report of the functions that allocate most memory
#[derive(clap::Args)]
pub struct Args {
    /// Results of the tracker run; several captures, or a directory of
    /// them, make one report over those processes
    #[arg(required = true)]
    results: Vec<PathBuf>,
    /// Column number to sort on
    #[arg(short, long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=N_COLUMNS as i64))]
    sort_column: u8,
    /// Maximum number of rows to display
    #[arg(short = 'r', long)]
    max_rows: Option<usize>,
    #[command(flatten)]
    temporary: TemporaryArgs,
}

/// The size of the terminal stdout writes to, if it is one.
fn stdout_window() -> Option<libc::winsize> {
    // SAFETY: TIOCGWINSZ only fills the winsize struct we own.
    unsafe {
        let mut size: libc::winsize = std::mem::zeroed();
        (libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) == 0).then_some(size)
    }
}

/// memray's default row count: the terminal's height minus 5 (24 lines
/// when stdout is not a terminal), at least 10.
fn default_rows() -> usize {
    let lines = stdout_window()
        .map(|size| usize::from(size.ws_row))
        .filter(|&rows| rows > 0)
        .unwrap_or(24);
    lines.saturating_sub(5).max(10)
}

/// The width the table must fit, as rich finds it: `COLUMNS`, else the
/// terminal's; none when piped, where the table stays uncut.
fn table_width() -> Option<usize> {
    let columns = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse().ok());
    columns
        .or_else(|| stdout_window().map(|size| usize::from(size.ws_col)))
        .filter(|&width| width > 0)
}

pub fn run(args: Args) -> CliResult {
    let selection = args.temporary.selection("summary", false)?;
    let inputs = Inputs::from_args(&args.results)?;
    let rows = args
        .max_rows
        .filter(|r| *r > 0)
        .unwrap_or_else(default_rows);
    let sort_column = usize::from(args.sort_column);
    match inputs {
        Inputs::One(results) => {
            let capture = capture::open(&results, PARSE_FAILURE)?;
            let (_, groups) = capture::selected(&capture, selection, merge_threads(&args))?;
            let summary = Summary::new(&groups, &capture);
            capture::print_capture_warnings(&capture);
            print!("{}", summary.render(sort_column, rows, table_width()));
        }
        Inputs::Processes { captures, .. } => {
            let captures = open_processes(&captures, PARSE_FAILURE)?;
            let mut processes = Vec::new();
            let mut overviews = Vec::new();
            for capture in &captures {
                // Every memory snapshot is kept: thinning could skip the peak of the sum.
                let (overview, groups) =
                    capture::selected_keeping_memory(capture, selection, merge_threads(&args), 0)?;
                processes.push(ProcessSummary {
                    label: process_label(capture.header()),
                    summary: Summary::new(&groups, capture),
                });
                capture::print_capture_warnings(capture);
                overviews.push(overview);
            }
            let together = Together::new(&overviews.iter().collect::<Vec<_>>());
            print!(
                "{}",
                render_processes(&processes, &together, sort_column, rows, table_width())
            );
        }
    }
    Ok(())
}

/// memray merges threads for the peak, not for temporary allocations.
fn merge_threads(args: &Args) -> bool {
    args.temporary.threshold().is_none()
}
