//! `memray stats`: high-level statistics of a capture, as text or JSON.

use std::path::{Path, PathBuf};

use memray_analysis::{statistics, PathInfo};
use memray_reporters::progress::WithProgress;
use memray_reporters::{stats, Metadata};

use super::capture::{self, report_failure};
use super::report::{next_to_capture, refuse_to_overwrite, with_suffix, write_report};
use crate::error::{CliError, CliResult};

/// memray's message for captures it cannot compute statistics of.
const STATS_FAILURE: &str = "Failed to compute statistics for";

/// Generate high level stats of the memory usage in the terminal
#[derive(clap::Args)]
pub struct Args {
    /// Results of the tracker run
    results: PathBuf,
    /// Displays the top 'n' largest allocating functions. Default is 5
    #[arg(short = 'n', long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    num_largest: u32,
    /// Exports stats to a JSON file
    #[arg(long)]
    json: bool,
    /// Output file name for JSON output
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// If the JSON output file already exists, overwrite it
    #[arg(short, long)]
    force: bool,
}

/// memray's default: `memray-stats-<capture name without "memray-">.json`
/// next to the capture.
fn default_json_path(results: &Path) -> PathBuf {
    let name = with_suffix(results.file_name().unwrap_or_default(), ".json");
    next_to_capture(results, "stats", &name)
}

pub fn run(args: Args) -> CliResult {
    let capture = capture::open(&args.results, STATS_FAILURE)?;
    let json_path = args.json.then(|| {
        args.output
            .clone()
            .unwrap_or_else(|| default_json_path(&args.results))
    });
    if let Some(path) = &json_path {
        refuse_to_overwrite(path, args.force)?;
    }
    let collector = statistics(&WithProgress::new(&capture))
        .map_err(|e| CliError::new(report_failure(&args.results, STATS_FAILURE, e)))?;
    capture::print_capture_warnings(&capture);
    let header = capture.header();
    let paths = PathInfo::from_header(&header.libdest, &header.site_packages, &header.sys_path);
    let stats = collector.finish(&capture, paths, args.num_largest as usize);
    let metadata = Metadata::new(header, stats.records, stats.peak_bytes);
    match json_path {
        Some(path) => {
            write_report(&path, stats::render_json(&stats, &metadata).as_bytes())?;
        }
        // memray's progress display leaves one empty line on stdout first.
        None => print!(
            "\n{}",
            stats::render_text(&stats, &metadata, args.num_largest as usize)
        ),
    }
    Ok(())
}
