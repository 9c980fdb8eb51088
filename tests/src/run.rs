//! Running commands and checking how they ended.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};

use crate::paths::memray_bin;

/// Runs a command to completion, capturing stdout and stderr.
pub fn output<I, S>(program: impl AsRef<OsStr>, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let program = program.as_ref();
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.to_string_lossy()))
}

/// Like [`output`], but the command must succeed; returns its stdout.
pub fn stdout_of<I, S>(program: impl AsRef<OsStr>, args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let program = program.as_ref();
    let out = output(program, args);
    assert!(
        out.status.success(),
        "{} failed ({}):\n{}",
        program.to_string_lossy(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Runs our `memray` in `dir` as a user's shell would, without `COLUMNS`
/// (so a report's width does not depend on the test's environment).
pub fn memray_in<I, S>(dir: &Path, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(memray_bin())
        .args(args)
        .current_dir(dir)
        .env_remove("COLUMNS")
        .output()
        .expect("run memray")
}

/// Fails the test, with the command's output, unless it succeeded.
pub fn succeeded(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what}: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
