//! `cargo xtask quickstart`: setup, build, then our `memray parse` on a capture
//! recorded by memray 1.20 (a bundled fixture, else one recorded now).

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::process::{cargo, execute, target_dir, workspace_root};

/// Lines of `memray parse` output shown.
const SHOWN_LINES: usize = 25;

pub fn run() -> Result<()> {
    crate::setup::run()?;
    execute(cargo().args(["build", "--bin", "memray"]))?;
    let capture = capture()?;
    let memray = target_dir().join("debug/memray");
    println!("$ {} parse {}", memray.display(), capture.display());
    let out = Command::new(&memray)
        .arg("parse")
        .arg(&capture)
        .output()
        .with_context(|| format!("cannot start {}", memray.display()))?;
    if !out.status.success() {
        bail!(
            "memray parse failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text.lines().take(SHOWN_LINES) {
        println!("{line}");
    }
    println!("… {} records in all", text.lines().count());
    Ok(())
}

/// The first bundled capture by name, else one recorded with the reference.
fn capture() -> Result<PathBuf> {
    let bundled = workspace_root().join("tests/fixtures/captures");
    let mut captures: Vec<PathBuf> = std::fs::read_dir(&bundled)
        .map(|dir| dir.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    captures.retain(|p| p.extension().is_some_and(|e| e == "bin"));
    captures.sort();
    if let Some(first) = captures.into_iter().next() {
        return Ok(first);
    }
    let recorded = memray_tests::paths::cache_dir().join("quickstart.bin");
    if !recorded.exists() {
        println!(
            "no capture under {}: recording one with memray 1.20",
            bundled.display()
        );
        let reference = memray_tests::reference::reference_memray();
        execute(
            Command::new(&reference.memray)
                .args(["run", "--quiet", "--force", "-o"])
                .arg(&recorded)
                .arg(workspace_root().join("bench/workloads/alloc_churn.py"))
                .arg("1"),
        )?;
    }
    Ok(recorded)
}
