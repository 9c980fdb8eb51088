//! memray 1.20 from PyPI in a throwaway virtualenv: the reference our files,
//! dumps and reports are compared with (and older releases, for the older
//! capture formats). Created once per cache directory and
//! shared by every test process (guarded by a file lock).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Command;

use crate::interpreters::reference_python;
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

/// Returns the reference memray, creating its virtualenv on first use.
pub fn reference_memray() -> ReferenceMemray {
    reference_memray_version(REFERENCE_VERSION)
}

/// memray `version` from PyPI (e.g. "1.18.0", the last release writing
/// format 11), in its own virtualenv created on first use: older releases
/// are the reference for the older capture formats.
pub fn reference_memray_version(version: &str) -> ReferenceMemray {
    let python = reference_python();
    let venv = cache_dir().join(format!("memray-{version}-py{}", python.label()));
    let installed = ReferenceMemray {
        python: venv.join("bin/python"),
        memray: venv.join("bin/memray"),
    };
    std::fs::create_dir_all(cache_dir()).expect("create the cache directory");
    let _lock = FileLock::acquire(cache_dir().join("reference-memray.lock"));
    if installed.memray.exists() {
        return installed;
    }
    let status = Command::new(&python.path)
        .args(["-m", "venv", "--clear"])
        .arg(&venv)
        .status()
        .expect("run python -m venv");
    assert!(status.success(), "creating {} failed", venv.display());
    let status = Command::new(&installed.python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .arg(format!("memray=={version}"))
        .status()
        .expect("run pip");
    assert!(
        status.success(),
        "pip install memray=={version} failed (PyPI must be reachable)"
    );
    installed
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
