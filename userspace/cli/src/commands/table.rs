//! `memray table`: the peak, leaks or temporary allocations as a sortable,
//! filterable HTML table.

use memray_reporters::html_report::table_html;

use super::inputs::Inputs;
use super::report::ReportArgs;
use crate::error::{CliError, CliResult};

/// Generate an HTML table with all records in the peak memory usage
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    report: ReportArgs,
}

pub fn run(args: Args) -> CliResult {
    let selection = args.report.selection("table")?;
    let results = match args.report.inputs()? {
        Inputs::One(results) => results,
        Inputs::Processes { .. } => {
            return Err(CliError::new(
                "memray table of several captures: not available yet",
            ))
        }
    };
    let target = args.report.open(&results, "table")?;
    if !args.report.is_temporary() {
        target.warn_if_large();
    }
    let page = table_html(&target.capture, selection, args.report.merge_threads())
        .map_err(|e| target.failure(e))?;
    target.write(&page)
}
