//! `%load_ext memray` and `%%memray_flamegraph` in a headless IPython shell
//! (IPython from PyPI, in the reference virtualenv), ours and memray 1.20's
//! side by side: for the peak, `--leaks`, `--temporal` and `--native
//! --trace-python-allocators`, each run of the cell saves a flame graph page
//! that names the cell's function, where the magic says it did.

use std::path::{Path, PathBuf};
use std::process::Command;

use memray_tests::paths::fixtures;
use memray_tests::python_package::{path_with_build_first, python_path, source_package};
use memray_tests::reference::reference_memray_with;

const LINES: [&str; 4] = [
    "",
    "--leaks",
    "--temporal",
    "--native --trace-python-allocators",
];

/// Runs the cells in `directory`; returns the pages the magic says it saved.
fn run_cells(
    python: &Path,
    directory: &Path,
    who: &str,
    configure: impl FnOnce(&mut Command),
) -> Vec<PathBuf> {
    let mut command = Command::new(python);
    command
        .arg(fixtures().join("python-api/ipython_cells.py"))
        .args(LINES)
        .current_dir(directory);
    configure(&mut command);
    let output = command.output().expect("run python");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{who}: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .filter_map(|line| line.trim().strip_prefix("Results saved to "))
        .map(|page| directory.join(page.trim()))
        .collect()
}

fn check_pages(pages: &[PathBuf], who: &str) {
    assert_eq!(
        pages.len(),
        LINES.len(),
        "{who}: one page per cell: {pages:?}"
    );
    for (page, line) in pages.iter().zip(LINES) {
        let html = std::fs::read_to_string(page)
            .unwrap_or_else(|e| panic!("{who} {line:?}: read {}: {e}", page.display()));
        assert!(
            html.contains("build_buffers"),
            "{who} {line:?}: the page does not name the cell's function"
        );
    }
}

#[test]
fn the_flamegraph_magic_shows_the_cells_allocations() {
    let reference = reference_memray_with("ipython", &["ipython"]);
    let package = source_package();
    let theirs_dir = tempfile::tempdir().unwrap();
    let theirs = run_cells(&reference.python, theirs_dir.path(), "memray 1.20", |_| {});
    check_pages(&theirs, "memray 1.20");
    let ours_dir = tempfile::tempdir().unwrap();
    let ours = run_cells(&reference.python, ours_dir.path(), "ours", |command| {
        command
            .env("PYTHONPATH", python_path(&[package.path()]))
            .env("PATH", path_with_build_first());
    });
    check_pages(&ours, "ours");
}
