//! What the reporters that write files share: their common flags, output
//! naming, overwrite refusal and writing a report whole.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use memray_analysis::CaptureFile;
use memray_format::FileFormat;
use memray_reporters::html_report::{CaptureFailure, ReportError};
use memray_reporters::input::Selection;

use super::capture::{self, report_failure, PARSE_FAILURE};
use super::inputs::{open_processes, Inputs};
use super::selection::TemporaryArgs;
use crate::error::{CliError, CliResult};

/// Flags and checks every HTML reporter shares (memray's `HighWatermarkCommand`).
#[derive(clap::Args)]
pub struct ReportArgs {
    /// Results of the tracker run; several captures, or a directory of
    /// them, make one report over those processes
    #[arg(required = true)]
    results: Vec<PathBuf>,
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

/// Several processes' opened captures and where their report goes.
pub struct ProcessesTarget {
    pub captures: Vec<CaptureFile>,
    pub output: PathBuf,
    /// What the page calls the captures (their directory's name, say).
    pub name: String,
}

impl ReportArgs {
    /// The allocations to show; two selecting flags together are refused.
    pub fn selection(&self, reporter: &str) -> Result<Selection, CliError> {
        self.temporary.selection(reporter, self.leaks)
    }

    /// memray skips its big-capture hint for temporary allocations.
    pub fn is_temporary(&self) -> bool {
        self.temporary.threshold().is_some()
    }

    pub fn merge_threads(&self) -> bool {
        !self.split_threads
    }

    /// One capture, or several processes' captures.
    pub fn inputs(&self) -> Result<Inputs, CliError> {
        Inputs::from_args(&self.results)
    }

    /// Checks the file names as memray does (missing input, existing output
    /// without --force), then opens the capture.
    pub fn open(&self, results: &Path, reporter: &str) -> Result<ReportTarget, CliError> {
        if !results.is_file() {
            return Err(CliError::new(format!(
                "No such file: {}",
                results.display()
            )));
        }
        let output = self.output_for(results, reporter)?;
        let capture = capture::open(results, PARSE_FAILURE)?;
        Ok(ReportTarget { capture, output })
    }

    /// Like [`ReportArgs::open`], for several processes' captures that
    /// `name` stands for.
    pub fn open_processes(
        &self,
        captures: &[PathBuf],
        name: &Path,
        reporter: &str,
    ) -> Result<ProcessesTarget, CliError> {
        let output = self.output_for(name, reporter)?;
        let captures = open_processes(captures, PARSE_FAILURE)?;
        let name = name.file_name().unwrap_or(name.as_os_str());
        Ok(ProcessesTarget {
            captures,
            output,
            name: name.to_string_lossy().into_owned(),
        })
    }

    /// `-o`, else memray's default name; refused if it exists without --force.
    fn output_for(&self, results: &Path, reporter: &str) -> Result<PathBuf, CliError> {
        let output = self
            .output
            .clone()
            .unwrap_or_else(|| default_output(results, reporter));
        refuse_to_overwrite(&output, self.force)?;
        Ok(output)
    }
}

impl ProcessesTarget {
    /// Writes the page after each capture's warnings.
    pub fn write(&self, page: &str) -> CliResult {
        for capture in &self.captures {
            capture::print_capture_warnings(capture);
        }
        write_report(&self.output, page.as_bytes())
    }

    /// What the user sees when the report cannot be made, naming the capture.
    pub fn failure(&self, failure: CaptureFailure) -> CliError {
        report_error(&failure.capture, failure.error)
    }
}

impl ReportTarget {
    /// Writes the page and says so, as memray does, after the cut-off
    /// warning if the capture was cut short.
    pub fn write(&self, page: &str) -> CliResult {
        capture::print_capture_warnings(&self.capture);
        write_report(&self.output, page.as_bytes())
    }

    /// What the user sees when the report cannot be made: the refusal itself
    /// for questions the capture cannot answer, else memray's parse failure.
    pub fn failure(&self, error: ReportError) -> CliError {
        report_error(self.capture.path(), error)
    }

    /// memray's hint for big captures that were not recorded with --aggregate.
    pub fn warn_if_large(&self) {
        let large = std::fs::metadata(self.capture.path()).is_ok_and(|m| m.len() > LARGE_CAPTURE);
        if large && self.capture.header().file_format == FileFormat::AllAllocations {
            println!("{LARGE_CAPTURE_WARNING}");
        }
    }
}

/// A report's failure on the capture `results`: the refusal itself for
/// questions the capture cannot answer, else memray's parse failure.
fn report_error(results: &Path, error: ReportError) -> CliError {
    CliError::new(match error {
        ReportError::Analysis(error) => report_failure(results, PARSE_FAILURE, error),
        error => format!("{PARSE_FAILURE} {}: {error}", results.display()),
    })
}

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
    next_to_capture(results, reporter, &with_suffix(file_stem(results), ".html"))
}

/// `memray-<reporter>-<name without a leading "memray-">`, in the capture's
/// directory: how memray names every file a reporter writes by default.
pub fn next_to_capture(results: &Path, reporter: &str, name: &OsStr) -> PathBuf {
    let bytes = name.as_bytes();
    let name = bytes.strip_prefix(b"memray-").unwrap_or(bytes);
    let mut file = OsString::from(format!("memray-{reporter}-"));
    file.push(OsStr::from_bytes(name));
    results.with_file_name(file)
}

/// `name` followed by `suffix`.
pub fn with_suffix(name: &OsStr, suffix: &str) -> OsString {
    let mut name = name.to_os_string();
    name.push(suffix);
    name
}

/// The capture's file name without its suffix.
pub fn file_stem(results: &Path) -> &OsStr {
    results.file_stem().unwrap_or_default()
}

/// Writes a report file whole and says where, as memray does: the report
/// goes to a temporary file beside `output`, renamed into place once
/// complete, so a failure (a full disk) leaves no truncated report behind.
pub fn write_report(output: &Path, contents: &[u8]) -> CliResult {
    write_whole(output, contents)
        .map_err(|e| CliError::new(format!("Cannot write {}: {e}", output.display())))?;
    println!("Wrote {}", output.display());
    Ok(())
}

fn write_whole(output: &Path, contents: &[u8]) -> std::io::Result<()> {
    let (mut file, temporary) = create_beside(output)?;
    let written = file
        .write_all(contents)
        // Space a filesystem allocates late is claimed now, before the rename.
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&temporary, output));
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

/// A new file `.<output name>.<pid>[.n].tmp` in `output`'s directory, with
/// the mode a plain create gives (0666 less the umask).
fn create_beside(output: &Path) -> std::io::Result<(std::fs::File, PathBuf)> {
    let name = output.file_name().unwrap_or_default();
    let mut attempt = 0;
    loop {
        let mut temporary = OsString::from(".");
        temporary.push(name);
        temporary.push(format!(".{}", std::process::id()));
        if attempt > 0 {
            temporary.push(format!(".{attempt}"));
        }
        temporary.push(".tmp");
        let temporary = output.with_file_name(temporary);
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o666)
            .open(&temporary);
        match opened {
            // Left over by an earlier run that had our pid: take another name.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                attempt += 1
            }
            opened => return opened.map(|file| (file, temporary)),
        }
    }
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
        let raw = default_output(Path::new(OsStr::from_bytes(b"d/out\xff.bin")), "table");
        assert_eq!(
            raw.as_os_str().as_bytes(),
            b"d/memray-table-out\xff.html".as_slice()
        );
    }
}
