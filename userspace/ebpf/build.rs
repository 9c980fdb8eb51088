//! Builds the eBPF probes (ebpf/probes) for bpfel-unknown-none with the pinned
//! nightly and bpf-linker, so that the object can be embedded in this crate.
//! `MEMRAY_SKIP_EBPF=1` skips it on machines without the BPF toolchain.

use std::path::{Path, PathBuf};

const SKIP_VARIABLE: &str = "MEMRAY_SKIP_EBPF";
const PROBES_PACKAGE: &str = "memray-ebpf-probes";

fn main() -> Result<(), String> {
    println!("cargo::rustc-check-cfg=cfg(memray_ebpf_built)");
    println!("cargo:rerun-if-env-changed={SKIP_VARIABLE}");
    if std::env::var_os(SKIP_VARIABLE).is_some_and(|v| v != "0" && !v.is_empty()) {
        println!("cargo:warning={SKIP_VARIABLE} is set: building without eBPF support");
        return Ok(());
    }
    let manifest_dir =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").ok_or("CARGO_MANIFEST_DIR unset")?);
    let ebpf_dir = manifest_dir
        .join("../../ebpf")
        .canonicalize()
        .map_err(|e| format!("ebpf/: {e}"))?;
    // The probes also compile the frame core and the allocator numbers,
    // outside ebpf/ (aya-build only watches the package's own directory).
    for outside in ["../../python-frames/core", "../../userspace/allocators"] {
        println!(
            "cargo:rerun-if-changed={}",
            manifest_dir.join(outside).display()
        );
    }
    let toolchain = pinned_toolchain(&ebpf_dir)?;
    require_bpf_linker()?;

    // aya-build runs `cargo build --package …` in the current directory: the
    // probes live in their own workspace (ebpf/), so build from there.
    std::env::set_current_dir(&ebpf_dir).map_err(|e| format!("cd {}: {e}", ebpf_dir.display()))?;
    let root_dir = ebpf_dir.to_str().ok_or("ebpf/ path is not UTF-8")?;
    let probes = aya_build::Package {
        name: PROBES_PACKAGE,
        root_dir,
        ..Default::default()
    };
    aya_build::build_ebpf([probes], aya_build::Toolchain::Custom(&toolchain))
        .map_err(|e| format!("building the eBPF probes failed: {e:#}"))?;
    println!("cargo:rustc-cfg=memray_ebpf_built");
    Ok(())
}

/// The `channel` of ebpf/rust-toolchain.toml: the single place the nightly is named.
fn pinned_toolchain(ebpf_dir: &Path) -> Result<String, String> {
    let file = ebpf_dir.join("rust-toolchain.toml");
    println!("cargo:rerun-if-changed={}", file.display());
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("channel"))
        .filter_map(|rest| rest.trim_start().strip_prefix('='))
        .map(|value| value.trim().trim_matches('"').to_string())
        .next()
        .ok_or_else(|| format!("{}: no `channel = \"…\"` line", file.display()))
}

fn require_bpf_linker() -> Result<(), String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path).any(|dir| dir.join("bpf-linker").is_file());
    if found {
        Ok(())
    } else {
        Err(format!(
            "bpf-linker is not on PATH: run `cargo xtask setup`, or set {SKIP_VARIABLE}=1 to build without eBPF support"
        ))
    }
}
