//! `memray stats`: high-level statistics of a capture, as text or JSON.

use std::path::{Path, PathBuf};

use memray_analysis::{overview, statistics, CaptureFile, PathInfo, Statistics};
use memray_reporters::processes::{process_label, Together};
use memray_reporters::progress::WithProgress;
use memray_reporters::stats::ProcessStats;
use memray_reporters::{stats, Metadata};

use super::capture::{self, report_failure};
use super::inputs::{open_processes, Inputs};
use super::report::{next_to_capture, refuse_to_overwrite, with_suffix, write_report};
use crate::error::{CliError, CliResult};

/// memray's message for captures it cannot compute statistics of.
const STATS_FAILURE: &str = "Failed to compute statistics for";

/// Generate high level stats of the memory usage in the terminal
#[derive(clap::Args)]
pub struct Args {
    /// Results of the tracker run; several captures, or a directory of
    /// them, make one report over those processes
    #[arg(required = true)]
    results: Vec<PathBuf>,
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
    match Inputs::from_args(&args.results)? {
        Inputs::One(results) => run_one(&args, &results),
        Inputs::Processes { captures, name } => run_processes(&args, &captures, &name),
    }
}

/// Where `--json` writes, refused if it exists without `--force`.
fn json_path(args: &Args, results: &Path) -> Result<Option<PathBuf>, CliError> {
    let path = args.json.then(|| {
        args.output
            .clone()
            .unwrap_or_else(|| default_json_path(results))
    });
    if let Some(path) = &path {
        refuse_to_overwrite(path, args.force)?;
    }
    Ok(path)
}

/// The statistics of one capture, after its warnings.
fn capture_stats(
    capture: &CaptureFile,
    num_largest: usize,
) -> Result<(Statistics, Metadata), CliError> {
    let failure = |e| CliError::new(report_failure(capture.path(), STATS_FAILURE, e));
    let collector = statistics(&WithProgress::new(capture)).map_err(failure)?;
    capture::print_capture_warnings(capture);
    let header = capture.header();
    let paths = PathInfo::from_header(&header.libdest, &header.site_packages, &header.sys_path);
    let stats = collector.finish(capture, paths, num_largest);
    let metadata = Metadata::new(header, stats.records, stats.peak_bytes);
    Ok((stats, metadata))
}

fn run_one(args: &Args, results: &Path) -> CliResult {
    let capture = capture::open(results, STATS_FAILURE)?;
    let json_path = json_path(args, results)?;
    let (stats, metadata) = capture_stats(&capture, args.num_largest as usize)?;
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

/// One row per process and their total; `--json` holds each process's
/// whole document.
fn run_processes(args: &Args, captures: &[PathBuf], name: &Path) -> CliResult {
    let captures = open_processes(captures, STATS_FAILURE)?;
    let json_path = json_path(args, name)?;
    let mut processes = Vec::new();
    let mut overviews = Vec::new();
    for capture in &captures {
        // Every memory snapshot is kept: thinning could skip the peak of the sum.
        let overview = overview(&WithProgress::new(capture), 0)
            .map_err(|e| CliError::new(report_failure(capture.path(), STATS_FAILURE, e)))?;
        let (stats, metadata) = capture_stats(capture, args.num_largest as usize)?;
        overviews.push(overview);
        processes.push(ProcessStats {
            label: process_label(capture.header()),
            capture: capture.path().display().to_string(),
            stats,
            metadata,
        });
    }
    let together = Together::new(&overviews.iter().collect::<Vec<_>>());
    match json_path {
        Some(path) => write_report(
            &path,
            stats::render_processes_json(&processes, &together).as_bytes(),
        ),
        None => {
            print!("\n{}", stats::render_processes_text(&processes, &together));
            Ok(())
        }
    }
}
