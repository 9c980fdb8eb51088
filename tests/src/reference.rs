//! memray 1.20 from PyPI in a throwaway virtualenv: the reference our files,
//! dumps and reports are compared with (and older releases, for the older
//! capture formats). Created once per cache directory and
//! shared by every test process (guarded by a file lock).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::interpreters::{reference_python, Interpreter};
use crate::paths::cache_dir;

pub const REFERENCE_VERSION: &str = "1.20.0";

/// The reference installation.
#[derive(Debug, Clone)]
pub struct ReferenceMemray {
    /// The virtualenv's `python`: it can `import memray`.
    pub python: PathBuf,
    /// The virtualenv's `memray` console script.
    pub memray: PathBuf,
}

impl ReferenceMemray {
    /// The interpreter and console script of the virtualenv at `venv`.
    pub fn in_venv(venv: &Path) -> ReferenceMemray {
        ReferenceMemray {
            python: venv.join("bin/python"),
            memray: venv.join("bin/memray"),
        }
    }
}

/// Returns the reference memray, creating its virtualenv on first use.
pub fn reference_memray() -> ReferenceMemray {
    reference_memray_version(REFERENCE_VERSION)
}

/// memray `version` from PyPI (e.g. "1.18.0", the last release writing
/// format 11), in its own virtualenv created on first use: older releases
/// are the reference for the older capture formats.
pub fn reference_memray_version(version: &str) -> ReferenceMemray {
    let python = reference_python();
    let venv = venv_dir(version, &python);
    std::fs::create_dir_all(cache_dir()).expect("create the cache directory");
    let _lock = FileLock::acquire(cache_dir().join("reference-memray.lock"));
    let installed = ReferenceMemray::in_venv(&venv);
    if installed.memray.exists() {
        return installed;
    }
    create_memray_venv(&python.path, &venv, version, &[]).unwrap_or_else(|e| panic!("{e}"))
}

/// The reference memray with `extra` packages from PyPI (e.g. pytest-memray),
/// in a virtualenv of its own named after `name`, created on first use.
pub fn reference_memray_with(name: &str, extra: &[&str]) -> ReferenceMemray {
    let python = reference_python();
    let venv = venv_dir(&format!("{REFERENCE_VERSION}-{name}"), &python);
    std::fs::create_dir_all(cache_dir()).expect("create the cache directory");
    let _lock = FileLock::acquire(cache_dir().join("reference-memray.lock"));
    let installed = ReferenceMemray::in_venv(&venv);
    if installed.memray.exists() {
        return installed;
    }
    create_memray_venv(&python.path, &venv, REFERENCE_VERSION, extra)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// What memray 1.20's `FileReader` sees in `capture`
/// (`tests/fixtures/captures/file_reader_dump.py`, as JSON).
pub fn file_reader_dump(capture: &Path) -> serde_json::Value {
    let dump = Command::new(reference_memray().python)
        .arg(crate::paths::fixtures().join("captures/file_reader_dump.py"))
        .arg(capture)
        .output()
        .expect("run memray 1.20's FileReader");
    assert!(
        dump.status.success(),
        "memray 1.20 cannot read {} ({}): {}",
        capture.display(),
        dump.status,
        String::from_utf8_lossy(&dump.stderr)
    );
    serde_json::from_slice(&dump.stdout).expect("the dump's JSON")
}

/// Where memray `version`'s virtualenv is (or would be created), without creating it.
pub fn reference_venv(version: &str) -> ReferenceMemray {
    ReferenceMemray::in_venv(&venv_dir(version, &reference_python()))
}

fn venv_dir(version: &str, python: &Interpreter) -> PathBuf {
    cache_dir().join(format!("memray-{version}-py{}", python.label()))
}

/// A fresh virtualenv at `venv`, made by `python`, with memray `version` and
/// the `extra` packages from PyPI.
pub fn create_memray_venv(
    python: &Path,
    venv: &Path,
    version: &str,
    extra: &[&str],
) -> Result<ReferenceMemray, String> {
    let installed = ReferenceMemray::in_venv(venv);
    succeed(
        Command::new(python)
            .args(["-m", "venv", "--clear"])
            .arg(venv),
        &format!("creating the virtualenv {}", venv.display()),
    )?;
    succeed(
        Command::new(&installed.python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .arg(format!("memray=={version}"))
            .args(extra),
        &format!("pip install memray=={version} {extra:?} (PyPI must be reachable)"),
    )?;
    if !installed.memray.exists() {
        return Err(format!(
            "{} is missing after pip install",
            installed.memray.display()
        ));
    }
    Ok(installed)
}

fn succeed(command: &mut Command, what: &str) -> Result<(), String> {
    match command.status() {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("{what} failed ({status})")),
        Err(error) => Err(format!("{what}: cannot start: {error}")),
    }
}

/// An exclusive `flock` held until dropped.
struct FileLock {
    _file: File,
}

impl FileLock {
    fn acquire(path: PathBuf) -> FileLock {
        let file = File::create(&path).expect("create the lock file");
        // SAFETY: flock on a valid descriptor we own.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock {}", path.display());
        FileLock { _file: file }
    }
}

/// Runs `check` (Python, `sys.argv[1:]` = `args`) with memray 1.20 in
/// `dir`: the test fails with its output unless it succeeds.
pub fn check_with_memray(dir: &Path, check: &str, args: &[&str], what: &str) {
    let checked = Command::new(&reference_memray().python)
        .args(["-c", check])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run the check with memray 1.20");
    if !checked.status.success() {
        eprintln!("{}", describe_captures(dir));
    }
    crate::run::succeeded(&checked, what);
}

/// What a failed check had to read: each capture in `dir` (a `.bin` in its
/// name), its size and the last records our `memray parse` reads in it.
fn describe_captures(dir: &Path) -> String {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.to_string_lossy().contains(".bin"))
        .collect();
    names.sort();
    let mut described = String::new();
    for path in names {
        let size = std::fs::metadata(&path).map_or(0, |m| m.len());
        let parsed = crate::run::memray_in(dir, [std::ffi::OsStr::new("parse"), path.as_os_str()]);
        let records = String::from_utf8_lossy(&parsed.stdout);
        let last: Vec<&str> = records.lines().rev().take(8).collect();
        described += &format!(
            "{} ({size} bytes, {} records), last records:\n{}\n{}",
            path.display(),
            records.lines().count(),
            last.into_iter().rev().collect::<Vec<_>>().join("\n"),
            String::from_utf8_lossy(&parsed.stderr)
        );
    }
    described
}
