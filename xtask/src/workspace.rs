//! Building, testing and linting the whole workspace.

use std::process::Command;

use anyhow::Result;

use crate::process::{cargo, execute, target_dir, workspace_root};

/// Builds every target (binaries, cdylibs, tests, examples) first, so that the
/// end-to-end tests find them, then runs the whole test suite and closes with
/// the totals over every test binary.
pub fn test() -> Result<()> {
    build()?;
    crate::test_summary::run_and_total(cargo().args(["test", "--workspace"]))
}

pub fn build() -> Result<()> {
    execute(cargo().args(["build", "--workspace", "--all-targets"]))
}

/// Formatting and clippy over the host workspace, then over the eBPF one
/// (checked for its real target with the pinned nightly).
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
