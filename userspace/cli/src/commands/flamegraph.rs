//! `memray flamegraph`: the peak, leaks, temporary or temporal allocations
//! as an interactive HTML flame graph.

use std::path::Path;

use memray_reporters::html_report::{
    flamegraph_html, processes_flamegraph_html, ConfidentialFiles, FlameGraphMode,
    FlameGraphOptions,
};

use memray_reporters::input::Selection;

use super::inputs::Inputs;
use super::report::ReportArgs;
use crate::error::{CliError, CliResult};

/// Generate an HTML flame graph for peak memory usage
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    report: ReportArgs,
    /// Generate a dynamic flame graph that can analyze allocations in a user-selected time range.
    #[arg(long)]
    temporal: bool,
    /// Invert flame graph
    #[arg(long)]
    inverted: bool,
    /// Maximum number of memory records to display
    #[arg(long, default_value_t = memray_analysis::memory::DEFAULT_MAX_MEMORY_RECORDS)]
    max_memory_records: usize,
    /// Control what source code is included in the flame graph. If set to 'all', all files are
    /// treated as confidential and no source code is included in the report (only function
    /// names, file names, and line numbers). If set to 'none', no files are treated as
    /// confidential and lines from any file may be included in the report. If set to 'default'
    /// (the default) Memray uses heuristics to guess whether each file is likely to contain
    /// secrets. It includes source lines from .py files and from any file that is
    /// world-readable or executable, and excludes lines from other files.
    #[arg(long, default_value = "default", value_parser = ["all", "none", "default"])]
    confidential_files: String,
}

pub fn run(args: Args) -> CliResult {
    let selection = args.report.selection("flamegraph")?;
    let inputs = args.report.inputs()?;
    let options = |mode| FlameGraphOptions {
        mode,
        merge_threads: args.report.merge_threads(),
        inverted: args.inverted,
        max_memory_records: args.max_memory_records,
        confidential_files: ConfidentialFiles::from_name(&args.confidential_files)
            .expect("clap accepts only the three names"),
    };
    let (captures, name) = match inputs {
        Inputs::One(results) => return run_one(&args, &results, selection, options),
        Inputs::Processes { captures, name } => (captures, name),
    };
    if args.temporal {
        // Each process has its own snapshots: a window means nothing across them.
        return Err(CliError::usage(
            "flamegraph",
            "--temporal shows one process: give one capture file",
        ));
    }
    let target = args.report.open_processes(&captures, &name, "flamegraph")?;
    let options = options(FlameGraphMode::Snapshot(selection));
    let page = processes_flamegraph_html(&target.captures, &target.name, selection, &options)
        .map_err(|e| target.failure(e))?;
    target.write(&page)
}

fn run_one(
    args: &Args,
    results: &Path,
    selection: Selection,
    options: impl Fn(FlameGraphMode) -> FlameGraphOptions,
) -> CliResult {
    let mode = match (args.temporal, selection) {
        (false, selection) => FlameGraphMode::Snapshot(selection),
        (true, Selection::HighWaterMark) => FlameGraphMode::TemporalHighWaterMark,
        (true, Selection::Leaks) => FlameGraphMode::TemporalLeaks,
        (true, Selection::Temporary(_)) => {
            return Err(CliError::usage(
                "flamegraph",
                "Can't create a temporal flame graph of temporary allocations",
            ))
        }
    };
    let target = args.report.open(results, "flamegraph")?;
    if !args.temporal && !args.report.is_temporary() {
        target.warn_if_large();
    }
    let page = flamegraph_html(&target.capture, &options(mode)).map_err(|e| target.failure(e))?;
    target.write(&page)
}
