//! What the reporters that write files share: their common flags, output
//! naming, overwrite refusal and memray's parse failure message.

use std::path::{Path, PathBuf};

use memray_analysis::CaptureFile;
use memray_format::FileFormat;
use memray_reporters::html_report::ReportError;
use memray_reporters::input::{open_capture, report_failure, Selection};

use super::summary::TemporaryArgs;
use crate::error::{CliError, CliResult};

/// Flags and checks every HTML reporter shares (memray's `HighWatermarkCommand`).
#[derive(clap::Args)]
pub struct ReportArgs {
    /// Results of the tracker run
    results: String,
    /// Output file name
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// If the output file already exists, overwrite it
    #[arg(short, long)]
    force: bool,
    /// Show memory leaks, instead of peak memory usage
    #[arg(long, conflicts_with_all = ["temporary_allocation_threshold", "temporary_allocations"])]
    leaks: bool,
    #[command(flatten)]
    temporary: TemporaryArgs,
    /// Do not merge allocations across threads
    #[arg(long)]
    split_threads: bool,
    /// Use local assets instead of fetching from CDN (pages are always self-contained)
    #[arg(long)]
    no_web: bool,
}

/// An opened capture and where its report goes.
pub struct ReportTarget {
    pub capture: CaptureFile,
    pub output: PathBuf,
}

impl ReportArgs {
    pub fn selection(&self) -> Selection {
        Selection::from_flags(self.leaks, self.temporary.threshold())
    }

    /// memray skips its big-capture hint for temporary allocations.
    pub fn is_temporary(&self) -> bool {
        self.temporary.threshold().is_some()
    }

    pub fn merge_threads(&self) -> bool {
        !self.split_threads
    }

    /// Checks the file names as memray does (missing input, existing output
    /// without --force), then opens the capture.
    pub fn open(&self, reporter: &str) -> Result<ReportTarget, CliError> {
        let results = Path::new(&self.results);
        if !results.is_file() {
            return Err(CliError::new(format!("No such file: {}", self.results)));
        }
        let output = self
            .output
            .clone()
            .unwrap_or_else(|| default_output(results, reporter));
        refuse_to_overwrite(&output, self.force)?;
        let capture = open_capture(&self.results, PARSE_FAILURE).map_err(CliError::new)?;
        Ok(ReportTarget { capture, output })
    }
}

impl ReportTarget {
    /// Writes the page and says so, as memray does.
    pub fn write(&self, page: &str) -> CliResult {
        write_report(&self.output, page.as_bytes())
    }

    /// What the user sees when the report cannot be made: the refusal itself
    /// for questions the capture cannot answer, else memray's parse failure.
    pub fn failure(&self, error: ReportError) -> CliError {
        let results = self.capture.path().to_string_lossy();
        CliError::new(match error {
            ReportError::Analysis(error) => report_failure(&results, PARSE_FAILURE, error),
            error => format!("{PARSE_FAILURE} {results}: {error}"),
        })
    }

    /// memray's hint for big captures that were not recorded with --aggregate.
    pub fn warn_if_large(&self) {
        let large = std::fs::metadata(self.capture.path()).is_ok_and(|m| m.len() > LARGE_CAPTURE);
        if large && self.capture.header().file_format == FileFormat::AllAllocations {
            println!("{LARGE_CAPTURE_WARNING}");
        }
    }
}

/// memray's message for captures it cannot read.
pub const PARSE_FAILURE: &str = "Failed to parse allocation records in";
const LARGE_CAPTURE: u64 = 10 * 1000 * 1000;
const LARGE_CAPTURE_WARNING: &str =
    "\u{26a0}  This capture file is large and may take a long time to process  \u{26a0}\n\n\
Next time, consider using the `--aggregate` option to `memray run` to reduce the\n\
size of the file.\n\
Check https://bloomberg.github.io/memray/run.html#aggregated-capture-files for \n\
more information.\n";

/// memray's default: `memray-<reporter>-<capture name, suffix replaced by
/// .html, without a leading "memray-">`, next to the capture.
pub fn default_output(results: &Path, reporter: &str) -> PathBuf {
    next_to_capture(results, reporter, &format!("{}.html", file_stem(results)))
}

/// `memray-<reporter>-<name without a leading "memray-">`, in the capture's
/// directory: how memray names every file a reporter writes by default.
pub fn next_to_capture(results: &Path, reporter: &str, name: &str) -> PathBuf {
    let name = name.strip_prefix("memray-").unwrap_or(name);
    results.with_file_name(format!("memray-{reporter}-{name}"))
}

/// The capture's file name without its suffix.
pub fn file_stem(results: &Path) -> String {
    results
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Writes a report file and says where, as memray does.
pub fn write_report(output: &Path, contents: &[u8]) -> CliResult {
    std::fs::write(output, contents)
        .map_err(|e| CliError::new(format!("Cannot write {}: {e}", output.display())))?;
    println!("Wrote {}", output.display());
    Ok(())
}

/// memray never overwrites a file without --force.
pub fn refuse_to_overwrite(output: &Path, force: bool) -> CliResult {
    if output.exists() && !force {
        return Err(CliError::new(format!(
            "File already exists, will not overwrite without --force: {}",
            output.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_follow_memray() {
        let name = |capture: &str| default_output(Path::new(capture), "flamegraph");
        assert_eq!(
            name("result.bin"),
            Path::new("memray-flamegraph-result.html")
        );
        assert_eq!(
            name("/tmp/memray-app.py.1234.bin"),
            Path::new("/tmp/memray-flamegraph-app.py.1234.html")
        );
        assert_eq!(
            name("dir/capture"),
            Path::new("dir/memray-flamegraph-capture.html")
        );
    }
}
