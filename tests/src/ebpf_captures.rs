//! Running the eBPF mode over several processes and finding their captures.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::paths::memray_bin;

/// `memray run --ebpf --follow-exec -q -f -o out.bin --python PYTHON -c
/// CODE ARGS…` in `dir`.
pub fn run_following_execs(python: &Path, dir: &Path, code: &str, args: &[&OsStr]) -> Output {
    Command::new(memray_bin())
        .args([
            "run",
            "--ebpf",
            "--follow-exec",
            "-q",
            "-f",
            "-o",
            "out.bin",
        ])
        .arg("--python")
        .arg(python)
        .args(["-c", code])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run memray")
}

/// The names of the files in `dir` that start with `out.bin`, sorted.
pub fn out_bin_captures(dir: &Path) -> Vec<String> {
    let mut captures: Vec<String> = std::fs::read_dir(dir)
        .expect("list the captures")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.starts_with("out.bin"))
        .collect();
    captures.sort();
    captures
}

/// `attach --all`'s capture of `pid` in `dir` (`memray-<name>.<pid>.bin`),
/// if any.
pub fn capture_of(dir: &Path, pid: u32) -> Option<PathBuf> {
    let suffix = format!(".{pid}.bin");
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.to_string_lossy().ends_with(&suffix))
}
