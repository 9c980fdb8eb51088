//! The tracker tests' fixtures (`tests/fixtures/tracker`): the scenarios,
//! their helper modules and the C test extension, shared by the in-process
//! tracker tests and the eBPF mode's.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::interpreters::Interpreter;
use crate::paths;

/// Where the scenarios and their helper modules live.
pub fn fixtures() -> PathBuf {
    paths::fixtures().join("tracker")
}

/// Compiles `memray_testext.c` against `python`'s headers (once per source
/// version) and returns the directory holding the extension.
pub fn test_extension(python: &Interpreter) -> PathBuf {
    let source = fixtures().join("memray_testext.c");
    let config = |expression: &str| {
        let out = Command::new(&python.path)
            .args(["-c", &format!("import sysconfig; print({expression})")])
            .output()
            .expect("run python");
        String::from_utf8(out.stdout)
            .expect("utf-8")
            .trim()
            .to_string()
    };
    let include = config("sysconfig.get_paths()['include']");
    let suffix = config("sysconfig.get_config_var('EXT_SUFFIX')");
    let directory = paths::cache_dir()
        .join("tracker-testext")
        .join(python.path.to_string_lossy().replace('/', "_"));
    std::fs::create_dir_all(&directory).expect("create the extension directory");
    let library = directory.join(format!("memray_testext{suffix}"));
    let stale = match (library.metadata(), source.metadata()) {
        (Ok(built), Ok(src)) => built.modified().ok() < src.modified().ok(),
        _ => true,
    };
    if stale {
        // Test threads of this process may build the same extension at once:
        // each writes its own file, and the last rename wins.
        static BUILDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let build = BUILDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = directory.join(format!("building-{}-{build}{suffix}", std::process::id()));
        // The parent directory too: Debian's pyconfig.h includes a multiarch one.
        let include_parent = Path::new(&include).parent().expect("include has a parent");
        let status = Command::new("gcc")
            .args(["-shared", "-fPIC", "-O1", "-Wall", "-Werror"])
            .arg(format!("-I{include}"))
            .arg(format!("-I{}", include_parent.display()))
            .arg("-o")
            .arg(&tmp)
            .arg(&source)
            .status()
            .expect("run gcc");
        assert!(status.success(), "compiling {} failed", source.display());
        std::fs::rename(&tmp, &library).expect("install the extension");
    }
    directory
}
