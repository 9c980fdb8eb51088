//! The source tree's `memray` package (`userspace/python/memray`) with the
//! workspace's build of its extension module (`memray._memray`), laid out in
//! a fresh directory to put on `PYTHONPATH`: what the wheel installs,
//! without building the wheel. The tracker library is found next to the
//! `memray` command, so commands using the Tracker put the build's directory
//! first on PATH ([`path_with_build_first`]).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::paths::{built_artifact, profile_dir, workspace_root};

/// A directory holding `memray/` (symlinks to the sources and the built
/// extension); removed when dropped.
pub fn source_package() -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("temporary directory");
    let package = root.path().join("memray");
    std::fs::create_dir(&package).unwrap();
    let sources = workspace_root().join("userspace/python/memray");
    for entry in std::fs::read_dir(&sources).expect("the package's sources") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "py") {
            std::os::unix::fs::symlink(&path, package.join(path.file_name().unwrap())).unwrap();
        }
    }
    std::os::unix::fs::symlink(
        built_artifact("lib_memray.so"),
        package.join("_memray.abi3.so"),
    )
    .unwrap();
    root
}

/// PATH with the build's directory (our `memray` and tracker library) first.
pub fn path_with_build_first() -> OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut directories: Vec<PathBuf> = vec![profile_dir()];
    directories.extend(std::env::split_paths(&path));
    std::env::join_paths(directories).expect("PATH")
}

/// `PYTHONPATH` for `directories` (in order).
pub fn python_path(directories: &[&Path]) -> OsString {
    std::env::join_paths(directories).expect("PYTHONPATH")
}
