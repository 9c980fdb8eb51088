//! `cargo xtask wheel`: the pip-installable wheel, built by maturin from
//! `userspace/python/pyproject.toml` into `<target>/wheels/`, its path printed
//! last. The release build is the one `cargo xtask bench` uses.
//!
//! The wheel holds the Python package `memray` with its extension module
//! (`memray._memray`, PyO3 on the stable ABI: tag `cp38-abi3-<platform>`), and
//! installs the `memray` binary and the tracker library beside it as scripts
//! (a virtualenv's `bin/`, where `memray run` looks for the library and
//! `memray.Tracker` too). Its platform tag is the lowest manylinux one that
//! the binary's and the library's glibc symbol versions allow (computed here:
//! maturin audits only the extension, against that tag).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::process::{execute, path_with_cargo_bin, stdout_of, target_dir, workspace_root};

/// What the wheel installs as scripts, from the release build.
const SCRIPTS: [&str; 2] = ["memray", "libmemray_tracker.so"];
/// The distribution's file-name prefix (`memray-rs`, normalised).
const WHEEL_PREFIX: &str = "memray_rs-";

pub fn run() -> Result<()> {
    let wheel = build()?;
    println!("{}", wheel.display());
    Ok(())
}

fn build() -> Result<PathBuf> {
    crate::setup::wheel_tools()?;
    // The same build as `cargo xtask bench`'s (maturin then finds the binary built).
    let release = crate::workspace::build_release_memray()?;
    let project = workspace_root().join("userspace/python");
    let scripts: Vec<PathBuf> = SCRIPTS.iter().map(|name| release.join(name)).collect();
    stage_scripts(&project, &scripts)?;

    // manylinux2014 (glibc 2.17) is the oldest tag maturin builds for.
    let mut glibc = (2, 17);
    for script in &scripts {
        glibc = glibc.max(glibc_needed(script)?);
    }

    let out = target_dir().join("wheels");
    remove_old_wheels(&out)?;
    let maturin = memray_tests::wheel_tools::wheel_tools().maturin;
    execute(
        Command::new(&maturin)
            .env("PATH", path_with_cargo_bin())
            .args(["build", "--release", "--compatibility"])
            .arg(format!("manylinux_{}_{}", glibc.0, glibc.1))
            .arg("--out")
            .arg(&out)
            .current_dir(&project),
    )?;
    the_wheel(&out)
}

/// maturin takes the binary and the library from the project's `data`
/// directory (`wheel-data/scripts/`, installed into the scripts directory).
fn stage_scripts(project: &Path, files: &[PathBuf]) -> Result<()> {
    let data = project.join("wheel-data");
    if data.exists() {
        std::fs::remove_dir_all(&data)
            .with_context(|| format!("cannot clear {}", data.display()))?;
    }
    let scripts = data.join("scripts");
    std::fs::create_dir_all(&scripts)?;
    for file in files {
        let name = file.file_name().context("a file name")?;
        std::fs::copy(file, scripts.join(name))
            .with_context(|| format!("cannot copy {}", file.display()))?;
    }
    Ok(())
}

/// Earlier builds of ours (another version or tag) would make the result ambiguous.
fn remove_old_wheels(out: &Path) -> Result<()> {
    for wheel in our_wheels(out) {
        std::fs::remove_file(&wheel)
            .with_context(|| format!("cannot remove {}", wheel.display()))?;
    }
    Ok(())
}

fn our_wheels(out: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(out)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.path())
                .filter(|path| {
                    path.file_name()
                        .and_then(|name| name.to_str())
                        .is_some_and(|name| {
                            name.starts_with(WHEEL_PREFIX) && name.ends_with(".whl")
                        })
                })
                .collect()
        })
        .unwrap_or_default()
}

fn the_wheel(out: &Path) -> Result<PathBuf> {
    match our_wheels(out).as_slice() {
        [wheel] => Ok(wheel.clone()),
        wheels => bail!(
            "expected one {WHEEL_PREFIX}*.whl in {} after maturin, found {}",
            out.display(),
            wheels.len()
        ),
    }
}

/// The newest `GLIBC_x.y` symbol version among the library's dynamic symbols.
fn glibc_needed(library: &Path) -> Result<(u32, u32)> {
    let path = library.to_string_lossy();
    let symbols = stdout_of("objdump", &["-T", &path])
        .with_context(|| format!("objdump -T {path} failed (binutils)"))?;
    Ok(symbols
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter_map(|word| word.strip_prefix("GLIBC_"))
        .filter_map(|version| {
            let mut parts = version.split('.');
            Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
        })
        .max()
        .unwrap_or((2, 0)))
}
