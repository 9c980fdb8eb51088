//! `memray transform FORMAT`: the peak, leaks or temporary allocations as a
//! gprof2dot, csv, speedscope or pprof file.

use std::path::{Path, PathBuf};

use memray_reporters::input::{open_capture, report_failure, select, Selection};
use memray_reporters::transform::{render, Format, TransformInput};

use super::report::{file_stem, next_to_capture, refuse_to_overwrite, write_report, PARSE_FAILURE};
use crate::error::{CliError, CliResult};

/// Generate reports files in different formats
#[derive(clap::Args)]
pub struct Args {
    /// Format to use for the report. Available formats: gprof2dot, csv, speedscope, pprof
    format: String,
    /// Results of the tracker run
    results: String,
    /// Output file name
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// If the output file already exists, overwrite it
    #[arg(short, long)]
    force: bool,
    /// Show memory leaks, instead of peak memory usage
    #[arg(long)]
    leaks: bool,
    #[command(flatten)]
    temporary: super::summary::TemporaryArgs,
}

/// memray's default: `memray-<format>-<capture stem without "memray-"><suffix>`.
fn default_output(results: &Path, format: Format) -> PathBuf {
    let name = format!("{}{}", file_stem(results), format.suffix());
    next_to_capture(results, format.name(), &name)
}

/// argparse's refusal of two mutually exclusive flags: it names the later one first.
fn not_allowed_together(first: &str, second: &str) -> CliError {
    let position = |flag: &str| std::env::args().position(|a| a.starts_with(flag));
    let (earlier, later) = if position(first) > position(second) {
        (second, first)
    } else {
        (first, second)
    };
    CliError {
        message: format!(
            "memray transform: error: argument {later}: not allowed with argument {earlier}"
        ),
        exit_code: 2,
    }
}

pub fn run(args: Args) -> CliResult {
    if let (true, Some(temporary)) = (args.leaks, args.temporary.flag()) {
        return Err(not_allowed_together("--leaks", temporary));
    }
    let format = Format::from_name(&args.format)
        .ok_or_else(|| CliError::new(format!("Format not supported: {}", args.format)))?;
    let capture = open_capture(&args.results, PARSE_FAILURE).map_err(CliError::new)?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| default_output(Path::new(&args.results), format));
    refuse_to_overwrite(&output, args.force)?;
    let selection = Selection::from_flags(args.leaks, args.temporary.threshold());
    let (_, groups) = select(&capture, selection, true)
        .map_err(|e| CliError::new(report_failure(&args.results, PARSE_FAILURE, e)))?;
    let input = TransformInput {
        groups: &groups,
        stacks: &capture,
        command_line: &capture.header().command_line,
    };
    write_report(&output, &render(format, &input))?;
    if format == Format::Gprof2dot {
        println!("\nTo generate a graph from the transform file, run for example:");
        println!(
            "gprof2dot -f json {} | dot -Tpng -o output.png",
            output.display()
        );
    }
    Ok(())
}
