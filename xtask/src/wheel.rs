//! `cargo xtask wheel`: the pip-installable wheel, built by maturin from
//! `userspace/python/pyproject.toml` into `<target>/wheels/`, its path printed
//! last. The release build is the one `cargo xtask bench` uses.
//!
//! The wheel installs the `memray` binary as a script (a virtualenv's `bin/`),
//! the tracker library beside it (where `memray run` looks for it) and the
//! Python package `memray`. It holds no extension module, so it is tagged
//! `py3-none-<platform>`: maturin picks the lowest manylinux tag that the
//! binary's glibc symbol versions allow, and the tracker library is checked
//! against the same tag here, which maturin does not audit.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::process::{execute, path_with_cargo_bin, stdout_of, target_dir, workspace_root};

const TRACKER_LIBRARY: &str = "libmemray_tracker.so";
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
    let library = release.join(TRACKER_LIBRARY);
    stage_tracker_library(&project, &library)?;

    let out = target_dir().join("wheels");
    remove_old_wheels(&out)?;
    let maturin = memray_tests::wheel_tools::wheel_tools().maturin;
    execute(
        Command::new(&maturin)
            .env("PATH", path_with_cargo_bin())
            .args(["build", "--release", "--out"])
            .arg(&out)
            .current_dir(&project),
    )?;
    let wheel = the_wheel(&out)?;
    check_glibc_tag(&wheel, &library)?;
    Ok(wheel)
}

/// maturin takes the library from the project's `data` directory
/// (`wheel-data/scripts/`, installed into the scripts directory).
fn stage_tracker_library(project: &Path, library: &Path) -> Result<()> {
    let data = project.join("wheel-data");
    if data.exists() {
        std::fs::remove_dir_all(&data)
            .with_context(|| format!("cannot clear {}", data.display()))?;
    }
    let scripts = data.join("scripts");
    std::fs::create_dir_all(&scripts)?;
    std::fs::copy(library, scripts.join(TRACKER_LIBRARY))
        .with_context(|| format!("cannot copy {}", library.display()))?;
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

/// A `manylinux_2_N` tag promises glibc 2.N is enough: the tracker library
/// must not need a newer symbol version than the binary maturin audited.
fn check_glibc_tag(wheel: &Path, library: &Path) -> Result<()> {
    let name = wheel
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let Some(tagged) = manylinux_glibc(name) else {
        return Ok(());
    };
    let needed = glibc_needed(library)?;
    if needed > tagged {
        bail!(
            "{name} is tagged for glibc 2.{} but {} needs GLIBC_2.{}",
            tagged.1,
            library.display(),
            needed.1
        );
    }
    Ok(())
}

/// `(2, N)` of a `manylinux_2_N_<arch>` platform tag in a wheel's file name.
fn manylinux_glibc(wheel_name: &str) -> Option<(u32, u32)> {
    let tag = wheel_name.strip_suffix(".whl")?.rsplit('-').next()?;
    let rest = tag.strip_prefix("manylinux_")?;
    let mut parts = rest.split('_');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
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
