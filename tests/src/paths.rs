//! Locations of the workspace, the build output and the project's private cache.

use std::path::{Path, PathBuf};

/// The repository's top level.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives inside the workspace")
        .to_path_buf()
}

/// Bundled test inputs (`tests/fixtures`).
pub fn fixtures() -> PathBuf {
    workspace_root().join("tests").join("fixtures")
}

/// The cargo profile directory the running test binary was built into
/// (`target/debug` for `target/debug/deps/<test>`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("test binaries live in <target>/<profile>/deps")
        .to_path_buf()
}

/// A binary or library built by this workspace, which must already exist:
/// `cargo xtask test` builds everything before it runs the tests.
pub fn built_artifact(name: &str) -> PathBuf {
    let path = profile_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (`cargo xtask test` does)",
        path.display()
    );
    path
}

/// Our `memray` binary.
pub fn memray_bin() -> PathBuf {
    built_artifact("memray")
}

/// The project's cache of downloaded tools (interpreters, the reference memray),
/// shared by tests, benchmarks and the setup: `$MEMRAY_RS_CACHE`, else
/// `~/.cache/memray-rs`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MEMRAY_RS_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").expect("HOME is set");
    PathBuf::from(home).join(".cache").join("memray-rs")
}
