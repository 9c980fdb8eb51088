//! A small tmpfs for the tests that fill a disk: mounting it needs root,
//! which the calling test declares through [`crate::skip`].

use std::path::Path;
use std::process::Command;

use crate::skip::{self, Requirement};

/// A tmpfs of a given size mounted on a temporary directory, unmounted on drop.
pub struct SmallDisk {
    directory: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size` (`mount -o size=…`: `8k`, `1m`); `None` when
    /// the test is skipped for want of root.
    pub fn mount(size: &str) -> Option<SmallDisk> {
        if !skip::needs(&[Requirement::Root]) {
            return None;
        }
        let directory = tempfile::tempdir().expect("tempdir");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(directory.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "mount -t tmpfs failed as root: {status}");
        Some(SmallDisk { directory })
    }

    pub fn path(&self) -> &Path {
        self.directory.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.directory.path()).status();
    }
}
