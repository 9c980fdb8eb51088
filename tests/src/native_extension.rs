//! The C extension of the native-mode tests (`tests/fixtures/native/nativeext.c`,
//! `alloc_chain` → `foo` → `bar` → `baz` → `malloc`, with an optional Python callback),
//! compiled here with `-g` for a given interpreter, and the script that runs it under
//! Python frames (`hybrid_script.py`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::paths::fixtures;

/// `tests/fixtures/native/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    fixtures().join("native").join(name)
}

/// What compiling an extension module for an interpreter needs.
pub struct ExtensionTarget {
    /// `-I` flags for its headers.
    pub include_flags: [String; 2],
    /// The file name suffix of its extension modules (`EXT_SUFFIX`).
    pub suffix: String,
}

impl ExtensionTarget {
    /// Asks `python` through `sysconfig`.
    pub fn of(python: &Path) -> ExtensionTarget {
        let config = |expression: &str| {
            let output = Command::new(python)
                .args(["-c", &format!("import sysconfig; print({expression})")])
                .output()
                .expect("run python");
            String::from_utf8(output.stdout).unwrap().trim().to_owned()
        };
        let include = PathBuf::from(config("sysconfig.get_paths()['include']"));
        ExtensionTarget {
            include_flags: [
                format!("-I{}", include.display()),
                // Debian's pyconfig.h includes a multiarch one from the parent directory.
                format!("-I{}", include.parent().unwrap().display()),
            ],
            suffix: config("sysconfig.get_config_var('EXT_SUFFIX')"),
        }
    }
}

/// Builds `nativeext` for `python` into `directory` (put it on `PYTHONPATH`).
pub fn build(python: &Path, directory: &Path) {
    compile(
        python,
        &fixture("nativeext.c"),
        "nativeext",
        directory,
        &["-g"],
    );
}

/// Compiles the C extension `source` for `python` as the module file of
/// `module` in `directory`, with `-O2` and `flags`.
pub fn compile(python: &Path, source: &Path, module: &str, directory: &Path, flags: &[&str]) {
    let target = ExtensionTarget::of(python);
    std::fs::create_dir_all(directory).unwrap();
    let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-shared", "-fPIC", "-O2"])
        .args(flags)
        .args(&target.include_flags)
        .arg("-o")
        .arg(directory.join(format!("{module}{}", target.suffix)))
        .arg(source)
        .status()
        .expect("run cc");
    assert!(status.success(), "compiling {} failed", source.display());
}

/// The script that allocates through the extension: `outer` → `middle` → C, and
/// `inner` called back from C → C again.
pub fn script() -> PathBuf {
    fixture("hybrid_script.py")
}
