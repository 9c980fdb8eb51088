//! The CPython interpreters this machine has: pyenv's, plus the 3.14 that the
//! setup unpacks into the project's cache.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::paths::cache_dir;
use crate::skip::{self, Requirement, PYTHON_MINORS};

/// One installed interpreter.
#[derive(Debug, Clone)]
pub struct Interpreter {
    /// `(major, minor)`, e.g. `(3, 11)`.
    pub version: (u32, u32),
    pub path: PathBuf,
}

impl Interpreter {
    pub fn label(&self) -> String {
        format!("{}.{}", self.version.0, self.version.1)
    }
}

/// Every CPython 3.8 or newer found, newest micro version of each minor, sorted.
pub fn supported() -> Vec<Interpreter> {
    let mut found: Vec<Interpreter> = Vec::new();
    for candidate in candidates() {
        let Some(version) = version_of(&candidate) else {
            continue;
        };
        if version < (3, 8) || found.iter().any(|i| i.version == version) {
            continue;
        }
        found.push(Interpreter {
            version,
            path: candidate,
        });
    }
    found.sort_by_key(|i| i.version);
    found
}

/// [`supported`], for a test that runs on every CPython: each of 3.8–3.14
/// that is missing is recorded as a skipped part of the calling test (under
/// `CI=true`, the test fails naming it), and at least one must be present:
/// a test run over no interpreter would pass without checking anything.
pub fn all_for_tests() -> Vec<Interpreter> {
    let all = supported();
    for minor in PYTHON_MINORS {
        if !all.iter().any(|i| i.version == (3, minor)) {
            skip::skip_part(
                &Requirement::Python(minor).name(),
                "not installed (pyenv or the project's cache)",
            );
        }
    }
    assert!(!all.is_empty(), "no CPython 3.8+ found (pyenv or PATH)");
    all
}

/// The interpreters 3.N for each N of `minors` that is installed; each missing one is
/// recorded as a skipped part of the test.
pub fn these(minors: &[u32]) -> Vec<Interpreter> {
    minors
        .iter()
        .filter_map(|&minor| {
            let python = find(3, minor);
            if python.is_none() {
                crate::skip::skip_part(&format!("CPython 3.{minor}"), "not installed");
            }
            python
        })
        .collect()
}

/// The interpreter for `major.minor`, if installed.
pub fn find(major: u32, minor: u32) -> Option<Interpreter> {
    supported()
        .into_iter()
        .find(|i| i.version == (major, minor))
}

/// The interpreter the reference memray runs on: 3.11 if present (the version
/// the format reference was checked with), else the newest one.
pub fn reference_python() -> Interpreter {
    let all = supported();
    all.iter()
        .find(|i| i.version == (3, 11))
        .or(all.last())
        .cloned()
        .expect("no CPython 3.8+ interpreter found (pyenv or PATH)")
}

fn candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(root) = pyenv_root() {
        let mut versions: Vec<PathBuf> = std::fs::read_dir(root.join("versions"))
            .map(|dir| dir.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        // Newest micro first, so that `supported` keeps it.
        versions.sort_by_key(|p| std::cmp::Reverse(micro_sort_key(p)));
        for dir in versions {
            let python = dir.join("bin").join("python3");
            if python.exists() {
                out.push(python);
            }
        }
    }
    for minor in [14, 15] {
        let private = cache_dir()
            .join(format!("python3.{minor}"))
            .join("usr/bin")
            .join(format!("python3.{minor}"));
        if private.exists() {
            out.push(private);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let python = dir.join("python3");
            if python.exists() {
                out.push(python);
            }
        }
    }
    out
}

fn micro_sort_key(dir: &Path) -> Vec<u32> {
    dir.file_name()
        .and_then(|n| n.to_str())
        .map(|n| n.split('.').filter_map(|p| p.parse().ok()).collect())
        .unwrap_or_default()
}

fn pyenv_root() -> Option<PathBuf> {
    if let Some(root) = std::env::var_os("PYENV_ROOT") {
        return Some(PathBuf::from(root));
    }
    let out = Command::new("pyenv").arg("root").output().ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn version_of(python: &Path) -> Option<(u32, u32)> {
    let out = Command::new(python)
        .args([
            "-c",
            "import sys; print(sys.version_info[0], sys.version_info[1])",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.split_whitespace().map(|p| p.parse().ok());
    Some((parts.next()??, parts.next()??))
}

/// A `python3` on PATH that any user can run (the test interpreters may live
/// under root's home), for programs run as another user.
pub fn for_every_user() -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let everyone_may = |path: &Path, bit: u32| {
        path.metadata()
            .is_ok_and(|m| m.permissions().mode() & bit != 0)
    };
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("python3"))
        .filter_map(|candidate| candidate.canonicalize().ok())
        .find(|python| {
            everyone_may(python, 0o001)
                && python
                    .ancestors()
                    .skip(1)
                    .all(|dir| everyone_may(dir, 0o001))
        })
}
