//! Building, testing and linting the whole workspace.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Result};
use memray_tests::skip;

use crate::process::{cargo, execute, target_dir, workspace_root};

/// Checks that nothing the tests need is missing (required under `CI=true`),
/// builds every target (binaries, cdylibs, tests, examples) first, so that the
/// end-to-end tests find them, type-checks the macOS build (no Mac here), then
/// runs every test binary and closes with the totals over all of them.
pub fn test() -> Result<()> {
    preflight()?;
    build()?;
    check_macos()?;
    let mut command = cargo();
    command.args(["test", "--workspace", "--no-fail-fast"]);
    crate::test_summary::run_and_total(
        command,
        skip::SKIP_LOG_ENV,
        &target_dir().join("test-skips.log"),
    )
}

/// Under `CI=true` everything the setup installs must be here: fails naming
/// what is missing. Elsewhere, says what the tests will skip.
fn preflight() -> Result<()> {
    let missing = skip::missing_on_ci();
    if missing.is_empty() {
        println!("preflight: everything the tests need is here");
        return Ok(());
    }
    if skip::on_ci() {
        bail!(
            "CI=true requires what is missing here: {}",
            missing.join("; ")
        );
    }
    for what in &missing {
        println!("preflight: missing, the tests needing it will skip: {what}");
    }
    Ok(())
}

/// The release `memray`, the tracker library beside it (where `memray
/// run` finds it) and the Python extension, as quickstart, bench and the wheel
/// use them; returns the directory holding them.
pub fn build_release_memray() -> Result<PathBuf> {
    execute(cargo().args([
        "build",
        "--release",
        "--package",
        "memray-cli",
        "--package",
        "memray-tracker",
        "--package",
        "memray-python-ext",
    ]))?;
    Ok(target_dir().join("release"))
}

pub fn build() -> Result<()> {
    execute(cargo().args(["build", "--workspace", "--all-targets"]))
}

/// The macOS targets `check_macos` builds for (`cargo xtask setup` installs them).
pub const MACOS_TARGETS: [&str; 2] = ["aarch64-apple-darwin", "x86_64-apple-darwin"];

/// Clippy (`-D warnings`) over every crate but the eBPF ones, for both macOS
/// targets: every macOS code path is type-checked, though nothing links or
/// runs without a Mac (`.github/workflows/macos.yml` does on a macOS runner).
pub fn check_macos() -> Result<()> {
    for target in MACOS_TARGETS {
        execute(cargo().args([
            "clippy",
            "--target",
            target,
            "--workspace",
            "--exclude",
            "memray-ebpf",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))?;
    }
    Ok(())
}

/// Formatting and clippy over the host workspace and for macOS, then over the
/// eBPF one (checked for its real target with the pinned nightly).
pub fn lint() -> Result<()> {
    execute(cargo().args(["fmt", "--all", "--check"]))?;
    execute(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    check_macos()?;
    let ebpf_manifest = workspace_root().join("ebpf/Cargo.toml");
    execute(
        cargo()
            .args(["fmt", "--all", "--check", "--manifest-path"])
            .arg(&ebpf_manifest),
    )?;
    // Plain `cargo` in ebpf/ resolves to the nightly of ebpf/rust-toolchain.toml.
    let mut ebpf_clippy = Command::new("cargo");
    ebpf_clippy
        .current_dir(workspace_root().join("ebpf"))
        .env_remove("RUSTUP_TOOLCHAIN")
        .args(["clippy", "--workspace", "--target", "bpfel-unknown-none"])
        .arg("--target-dir")
        .arg(target_dir().join("ebpf-lint"))
        .args(["-Zbuild-std=core", "--", "-D", "warnings"]);
    execute(&mut ebpf_clippy)
}
