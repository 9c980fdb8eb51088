//! Headless Chromium for the HTML reports: `tests/browser/run.js`
//! (playwright-core driving Debian's chromium) opens every page of a
//! directory, runs its checks and saves screenshots.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::paths;
use crate::skip::{self, Requirement};

pub struct Browser {
    chromium: PathBuf,
    node: PathBuf,
    scripts: PathBuf,
}

impl Browser {
    /// Chromium and node from PATH, with playwright-core installed; `None`
    /// when the test must skip (recorded by [`skip::needs`]).
    pub fn find() -> Option<Browser> {
        if !skip::needs(&[Requirement::Chromium]) {
            return None;
        }
        Some(Browser {
            chromium: skip::on_path("chromium")?,
            node: skip::on_path("node")?,
            scripts: skip::browser_scripts(),
        })
    }

    /// Runs `run.js` on the pages in `dir` (screenshots go to
    /// `dir/screenshots`); its checks must pass. Returns its stdout.
    pub fn check_pages(&self, dir: &Path) -> String {
        let run = Command::new(&self.node)
            .current_dir(&self.scripts)
            .arg("run.js")
            .arg(dir)
            .arg(dir.join("screenshots"))
            .env("CHROMIUM", &self.chromium)
            .output()
            .expect("run node");
        let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
        eprintln!("{stdout}");
        assert!(
            run.status.success(),
            "browser checks failed:\n{}",
            String::from_utf8_lossy(&run.stderr)
        );
        stdout
    }
}

/// An empty directory `name` next to the build output, kept after the test
/// so that its pages and screenshots can be looked at.
pub fn fresh_output_dir(name: &str) -> PathBuf {
    let dir = paths::profile_dir()
        .parent()
        .expect("the profile directory lives in the target directory")
        .join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("clear the previous run's pages");
    }
    std::fs::create_dir_all(&dir).expect("create the output directory");
    dir
}
