//! Running commands and checking how they ended.

use std::ffi::OsStr;
use std::process::{Command, Output};

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
