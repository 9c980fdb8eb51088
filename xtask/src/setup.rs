//! `cargo xtask setup`: installs what is missing, and only that, so that a
//! second run takes seconds. Each step says what it found or did.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::process::{cargo, cargo_bin_dir, execute, stdout_of, succeeds, workspace_root};

/// LLVM major version of the pinned nightly; bpf-linker must link the same one.
const LLVM_MAJOR: u32 = 22;
const BPF_LINKER_VERSION: &str = "0.13.0";
/// The CPython the tests need beyond pyenv's, unpacked into the cache.
const EXTRA_PYTHON: &str = "3.14";

/// Debian packages: LLVM for bpf-linker, patchelf and the archive keyring for
/// unpacking CPython, chromium for the browser tests, venv for the reference memray,
/// bpftrace as the eBPF benchmark's peer, jemalloc and mimalloc for the
/// eBPF tests of `--allocator`.
fn apt_packages() -> Vec<String> {
    let llvm = [
        format!("llvm-{LLVM_MAJOR}-dev"),
        format!("libpolly-{LLVM_MAJOR}-dev"),
    ];
    let others = [
        "zlib1g-dev",
        "libzstd-dev",
        "patchelf",
        "debian-archive-keyring",
        "chromium",
        "chromium-driver",
        "python3-venv",
        "tmux",
        "bpftrace",
        "libjemalloc2",
        "libmimalloc2.0",
    ];
    llvm.into_iter().chain(others.map(String::from)).collect()
}

pub fn run() -> Result<()> {
    apt()?;
    macos_targets()?;
    ebpf_toolchain()?;
    bpf_linker()?;
    extra_python()?;
    browser_test_packages()?;
    wheel_tools()?;
    reference_memray();
    println!("setup: done");
    Ok(())
}

fn apt() -> Result<()> {
    let missing: Vec<String> = apt_packages()
        .into_iter()
        .filter(|package| !dpkg_installed(package))
        .collect();
    if missing.is_empty() {
        println!("setup: apt packages present");
        return Ok(());
    }
    println!("setup: installing {}", missing.join(" "));
    let apt_get = || {
        let mut command = Command::new("apt-get");
        command.env("DEBIAN_FRONTEND", "noninteractive");
        command
    };
    execute(apt_get().args(["update", "-q"]))?;
    execute(
        apt_get()
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing),
    )
}

fn dpkg_installed(package: &str) -> bool {
    stdout_of("dpkg-query", &["-W", "-f=${Status}", package])
        .is_some_and(|status| status.ends_with(" installed"))
}

/// The standard libraries of the macOS targets, for `check_macos`.
fn macos_targets() -> Result<()> {
    let installed = stdout_of("rustup", &["target", "list", "--installed"]).unwrap_or_default();
    let missing: Vec<&str> = crate::workspace::MACOS_TARGETS
        .into_iter()
        .filter(|target| !installed.lines().any(|line| line.trim() == *target))
        .collect();
    if missing.is_empty() {
        println!("setup: macOS targets present");
        return Ok(());
    }
    execute(
        Command::new("rustup")
            .args(["target", "add"])
            .args(&missing),
    )
    .context("installing the macOS targets")
}

/// The nightly named in ebpf/rust-toolchain.toml, with its components:
/// `rustup toolchain install` with no name installs what that file names.
fn ebpf_toolchain() -> Result<()> {
    let mut command = Command::new("rustup");
    command
        .args(["toolchain", "install"])
        .current_dir(workspace_root().join("ebpf"))
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTUP_AUTO_INSTALL");
    execute(&mut command).context("installing the eBPF toolchain")
}

fn bpf_linker() -> Result<()> {
    let installed = cargo_bin_dir().join("bpf-linker");
    let version = stdout_of(&installed, &["--version"]).unwrap_or_default();
    if version.split_whitespace().last() == Some(BPF_LINKER_VERSION) {
        println!("setup: {version} present");
        return Ok(());
    }
    let prefix = llvm_prefix()?;
    println!(
        "setup: building bpf-linker {BPF_LINKER_VERSION} against LLVM {LLVM_MAJOR} at {}",
        prefix.display()
    );
    // Its build script links the LLVM found through LLVM_PREFIX (else the first
    // `llvm-config` on PATH, which is Debian's default LLVM, not 22), and
    // llvm-sys looks for llvm-config under LLVM_SYS_<version>_PREFIX.
    let path = std::env::join_paths(std::iter::once(prefix.join("bin")).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))?;
    execute(
        cargo()
            .args([
                "install",
                "--locked",
                "bpf-linker",
                "--version",
                BPF_LINKER_VERSION,
            ])
            .args([
                "--no-default-features",
                "--features",
                &format!("llvm-{LLVM_MAJOR}"),
            ])
            .env("LLVM_PREFIX", &prefix)
            // llvm-sys numbers its releases <LLVM major><minor digit>: 221 for LLVM 22.1.
            .env(format!("LLVM_SYS_{LLVM_MAJOR}1_PREFIX"), &prefix)
            .env("PATH", path),
    )
}

fn llvm_prefix() -> Result<PathBuf> {
    let config = format!("llvm-config-{LLVM_MAJOR}");
    match stdout_of(&config, &["--prefix"]) {
        Some(prefix) => Ok(PathBuf::from(prefix)),
        None => bail!("{config} not found: llvm-{LLVM_MAJOR}-dev did not install"),
    }
}

fn extra_python() -> Result<()> {
    let prefix = memray_tests::paths::cache_dir().join(format!("python{EXTRA_PYTHON}"));
    let python = prefix.join("usr/bin").join(format!("python{EXTRA_PYTHON}"));
    if succeeds(&python, &["-c", "import ctypes"]) {
        println!(
            "setup: CPython {EXTRA_PYTHON} present at {}",
            python.display()
        );
        return Ok(());
    }
    let script = workspace_root().join("xtask/scripts/install-debian-python.sh");
    execute(
        Command::new("bash")
            .arg(&script)
            .arg(EXTRA_PYTHON)
            .arg(&prefix),
    )
    .with_context(|| {
        format!(
            "installing CPython {EXTRA_PYTHON} into {}",
            prefix.display()
        )
    })
}

/// playwright-core (no browser download: the tests drive Debian's chromium),
/// as pinned by tests/browser/package-lock.json.
fn browser_test_packages() -> Result<()> {
    let dir = workspace_root().join("tests/browser");
    if dir.join("node_modules/playwright-core").exists() {
        println!("setup: browser test packages present");
        return Ok(());
    }
    execute(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir),
    )
    .context("installing the browser test packages (npm ci in tests/browser)")
}

/// maturin and pip, pinned, in their own virtualenv (`memray_tests::wheel_tools`).
pub fn wheel_tools() -> Result<()> {
    use memray_tests::wheel_tools::{wheel_tools, MATURIN_VERSION, PIP_VERSION};
    let tools = wheel_tools();
    let maturin = stdout_of(&tools.maturin, &["--version"]).unwrap_or_default();
    let pip = stdout_of(&tools.pip, &["--version"]).unwrap_or_default();
    if maturin == format!("maturin {MATURIN_VERSION}")
        && pip.starts_with(&format!("pip {PIP_VERSION} "))
    {
        println!(
            "setup: {maturin} and pip {PIP_VERSION} present at {}",
            tools.venv.display()
        );
        return Ok(());
    }
    execute(
        Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(&tools.venv),
    )?;
    execute(
        Command::new(&tools.pip)
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .arg(format!("maturin=={MATURIN_VERSION}"))
            .arg(format!("pip=={PIP_VERSION}")),
    )
    .context("installing maturin and pip from PyPI")
}

fn reference_memray() {
    let reference = memray_tests::reference::reference_memray();
    println!(
        "setup: reference memray {} at {}",
        memray_tests::reference::REFERENCE_VERSION,
        reference.memray.display()
    );
}
