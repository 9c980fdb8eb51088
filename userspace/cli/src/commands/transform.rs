//! `memray transform FORMAT`: the peak, leaks or temporary allocations as a
//! gprof2dot, csv, speedscope or pprof file.

use std::path::{Path, PathBuf};

use memray_reporters::transform::{render, Format, TransformInput};

use super::capture::{self, PARSE_FAILURE};
use super::report::{file_stem, next_to_capture, refuse_to_overwrite, with_suffix, write_report};
use super::selection::TemporaryArgs;
use crate::error::{CliError, CliResult};

/// Generate reports files in different formats
#[derive(clap::Args)]
pub struct Args {
    /// Format to use for the report. Available formats: gprof2dot, csv, speedscope, pprof
    format: String,
    /// Results of the tracker run
    results: PathBuf,
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
    temporary: TemporaryArgs,
}

/// memray's default: `memray-<format>-<capture stem without "memray-"><suffix>`.
fn default_output(results: &Path, format: Format) -> PathBuf {
    let name = with_suffix(file_stem(results), format.suffix());
    next_to_capture(results, format.name(), &name)
}

pub fn run(args: Args) -> CliResult {
    let selection = args.temporary.selection("transform", args.leaks)?;
    let format = Format::from_name(&args.format)
        .ok_or_else(|| CliError::new(format!("Format not supported: {}", args.format)))?;
    let capture = capture::open(&args.results, PARSE_FAILURE)?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| default_output(&args.results, format));
    refuse_to_overwrite(&output, args.force)?;
    let (_, groups) = capture::selected(&capture, selection, true)?;
    let input = TransformInput {
        groups: &groups,
        stacks: &capture,
        command_line: &capture.header().command_line,
    };
    let report = render(format, &input);
    capture::print_capture_warnings(&capture);
    write_report(&output, &report)?;
    if format == Format::Gprof2dot {
        println!("\nTo generate a graph from the transform file, run for example:");
        println!(
            "gprof2dot -f json {} | dot -Tpng -o output.png",
            output.display()
        );
    }
    Ok(())
}
