//! Whether the loader inserted the tracker library when the program started
//! (decided from the `DYLD_INSERT_LIBRARIES` the library's initializer sees).
//! macOS strips `DYLD_*` variables from programs under the hardened runtime
//! or SIP (Apple's own `/usr/bin/python3`): the library is then only loaded
//! later by the bootstrap, its interposition never happens, and tracking
//! would record nothing. memray documents the same limitation.

use std::ffi::OsStr;
use std::path::Path;

/// What to say when the library was not inserted.
pub const NOT_INSERTED: &str = "this Python ignores DYLD_INSERT_LIBRARIES (the macOS hardened \
     runtime, as for Apple's /usr/bin/python3), so memray cannot track it: use a Python from \
     python.org, Homebrew or pyenv, or a virtualenv made from one";

/// Whether `library` is one of the `:`-separated paths of `variable` (the
/// value the process sees), compared as files so that a symlinked path counts.
pub fn was_inserted(variable: Option<&OsStr>, library: &Path) -> bool {
    let Some(variable) = variable else {
        return false;
    };
    let library = library
        .canonicalize()
        .unwrap_or_else(|_| library.to_path_buf());
    std::env::split_paths(variable).any(|entry| entry.canonicalize().unwrap_or(entry) == library)
}

/// The one line refusing to start tracking, unless the library was inserted.
pub fn refusal(inserted: bool) -> Option<String> {
    (!inserted).then(|| NOT_INSERTED.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserted_by_path_or_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let library = dir.path().join("libmemray_tracker.dylib");
        std::fs::write(&library, b"").unwrap();
        let link = dir.path().join("link.dylib");
        std::os::unix::fs::symlink(&library, &link).unwrap();
        let other = dir.path().join("other.dylib");
        std::fs::write(&other, b"").unwrap();

        let value = |paths: &[&Path]| std::env::join_paths(paths).unwrap();
        assert!(was_inserted(Some(&value(&[&library])), &library));
        assert!(was_inserted(Some(&value(&[&other, &link])), &library));
        assert_eq!(refusal(true), None);
    }

    #[test]
    fn stripped_or_other_libraries_are_refused_in_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let library = dir.path().join("libmemray_tracker.dylib");
        std::fs::write(&library, b"").unwrap();
        let other = dir.path().join("other.dylib");
        assert!(!was_inserted(None, &library));
        assert!(!was_inserted(Some(OsStr::new("")), &library));
        assert!(!was_inserted(Some(other.as_os_str()), &library));
        let line = refusal(was_inserted(None, &library)).unwrap();
        assert!(!line.contains('\n'));
        assert!(line.contains("python.org, Homebrew or pyenv"));
    }
}
