//! Running the tools the tasks drive, echoing each command first.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The repository's top level.
pub fn workspace_root() -> PathBuf {
    memray_tests::paths::workspace_root()
}

/// `cargo`, the same one that runs this xtask, in the workspace root, with
/// cargo's own bin directory (where bpf-linker is installed) on PATH.
pub fn cargo() -> Command {
    let mut command = Command::new(cargo_program());
    command
        .current_dir(workspace_root())
        .env("PATH", path_with_cargo_bin());
    command
}

/// The cargo running this xtask (`$CARGO`), else the one on PATH.
pub fn cargo_program() -> PathBuf {
    std::env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from)
}

/// Where cargo puts the build output: `$CARGO_TARGET_DIR`, else `<root>/target`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// `$CARGO_HOME/bin` (default `~/.cargo/bin`), where `cargo install` puts tools.
pub fn cargo_bin_dir() -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo")
        });
    home.join("bin")
}

/// PATH with cargo's bin directory first (for tools that run `cargo` themselves).
pub fn path_with_cargo_bin() -> std::ffi::OsString {
    let current = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&current).collect();
    let bin = cargo_bin_dir();
    if !dirs.contains(&bin) {
        dirs.insert(0, bin);
    }
    std::env::join_paths(dirs).unwrap_or(current)
}

/// Runs `command` to completion, inheriting stdio; fails unless it succeeds.
pub fn execute(command: &mut Command) -> Result<()> {
    println!("$ {}", describe(command));
    let status = command
        .status()
        .with_context(|| format!("cannot start {}", describe(command)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", describe(command));
    }
    Ok(())
}

/// Whether `program args…` runs and succeeds (output discarded).
pub fn succeeds(program: impl AsRef<OsStr>, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|out| out.status.success())
}

/// The trimmed stdout of `program args…`, if it runs and succeeds.
pub fn stdout_of(program: impl AsRef<OsStr>, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `program arg…` as a shell would show it.
pub fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
