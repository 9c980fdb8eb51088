//! Captures recorded by the reference memray, for differential tests.

use std::path::{Path, PathBuf};

use crate::reference::reference_memray;

/// Runs `memray run -q [flags] -o <dir>/<name>.bin script` with memray 1.20,
/// with `env` set, and returns the capture's path.
pub fn record_with_reference(
    dir: &Path,
    name: &str,
    flags: &[&str],
    env: &[(&str, &str)],
    script: &Path,
) -> PathBuf {
    let memray = reference_memray();
    let capture = dir.join(format!("{name}.bin"));
    let out = std::process::Command::new(&memray.memray)
        .args(["run", "-q", "-o"])
        .arg(&capture)
        .args(flags)
        .arg(script)
        .envs(env.iter().copied())
        .output()
        .expect("run the reference memray");
    assert!(
        out.status.success(),
        "memray run {flags:?} {} failed:\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    capture
}
