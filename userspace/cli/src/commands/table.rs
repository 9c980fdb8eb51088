//! `memray table`: the peak, leaks or temporary allocations as a sortable,
//! filterable HTML table.

use memray_reporters::html_report::{processes_table_html, table_html};

use super::inputs::Inputs;
use super::report::ReportArgs;
use crate::error::CliResult;

/// Generate an HTML table with all records in the peak memory usage
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    report: ReportArgs,
}

pub fn run(args: Args) -> CliResult {
    let selection = args.report.selection("table")?;
    let merge_threads = args.report.merge_threads();
    let (captures, name) = match args.report.inputs()? {
        Inputs::One(results) => {
            let target = args.report.open(&results, "table")?;
            if !args.report.is_temporary() {
                target.warn_if_large();
            }
            let page = table_html(&target.capture, selection, merge_threads)
                .map_err(|e| target.failure(e))?;
            return target.write(&page);
        }
        Inputs::Processes { captures, name } => (captures, name),
    };
    let target = args.report.open_processes(&captures, &name, "table")?;
    let page = processes_table_html(&target.captures, &target.name, selection, merge_threads)
        .map_err(|e| target.failure(e))?;
    target.write(&page)
}
