//! The captures a report reads: one file (memray's report, unchanged), or
//! several processes' captures, given as files or as a directory of them
//! (what `--follow-fork`, `run --ebpf --follow-exec` and `attach --ebpf
//! --all` write).

use std::ffi::OsString;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use memray_analysis::CaptureFile;
use memray_format::{LZ4_MAGIC, MAGIC};

use super::capture;
use crate::error::CliError;

/// The `results` arguments of a report.
pub enum Inputs {
    One(PathBuf),
    Processes {
        captures: Vec<PathBuf>,
        /// Stands for the captures where a report names its default output
        /// file: the directory, or `<first file's stem>-processes` beside it.
        name: PathBuf,
    },
}

impl Inputs {
    /// One file stays one file; a directory is every capture in it.
    pub fn from_args(results: &[PathBuf]) -> Result<Inputs, CliError> {
        match results {
            [one] if !one.is_dir() => Ok(Inputs::One(one.clone())),
            [directory] => Ok(Inputs::Processes {
                captures: captures_in(directory)?,
                name: directory.clone(),
            }),
            files => {
                if let Some(directory) = files.iter().find(|f| f.is_dir()) {
                    return Err(CliError::new(format!(
                        "{} is a directory: give one directory of captures, or capture files",
                        directory.display()
                    )));
                }
                let first = &files[0];
                let mut name = OsString::from(first.file_stem().unwrap_or_default());
                name.push("-processes");
                Ok(Inputs::Processes {
                    captures: files.to_vec(),
                    name: first.with_file_name(name),
                })
            }
        }
    }
}

/// The capture files in `directory` (plain or LZ4, recognised by their
/// first bytes, so reports written beside them are left out), by name.
fn captures_in(directory: &Path) -> Result<Vec<PathBuf>, CliError> {
    let unreadable =
        |e: std::io::Error| CliError::new(format!("Cannot read {}: {e}", directory.display()));
    let mut captures = Vec::new();
    for entry in std::fs::read_dir(directory).map_err(unreadable)? {
        let path = entry.map_err(unreadable)?.path();
        if path.is_file() && starts_like_a_capture(&path) {
            captures.push(path);
        }
    }
    if captures.is_empty() {
        return Err(CliError::new(format!(
            "No capture files in {}",
            directory.display()
        )));
    }
    captures.sort();
    Ok(captures)
}

fn starts_like_a_capture(path: &Path) -> bool {
    let mut start = [0u8; MAGIC.len()];
    let read = File::open(path).and_then(|mut file| file.read_exact(&mut start));
    read.is_ok() && (start == *MAGIC || start.starts_with(&LZ4_MAGIC))
}

/// Opens every capture, in memray's words when one cannot be read, in the
/// order the processes started (then by pid).
pub fn open_processes(captures: &[PathBuf], failure: &str) -> Result<Vec<CaptureFile>, CliError> {
    let mut opened = captures
        .iter()
        .map(|path| capture::open(path, failure))
        .collect::<Result<Vec<_>, _>>()?;
    opened.sort_by_key(|c| (c.header().stats.start_time_ms, c.header().pid));
    Ok(opened)
}
