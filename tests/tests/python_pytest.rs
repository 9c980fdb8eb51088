//! Our pytest plugin (`memray.pytest_plugin`, pytest-memray's interface)
//! against pytest-memray with memray 1.20 on pytest-memray's documented
//! examples: every test has the same outcome and failure message (bytes
//! aside), and `--memray` prints the same report sections, in one process
//! and under pytest-xdist (`-n 2`). Both run on the
//! same interpreter and pytest (the reference virtualenv with pytest and
//! pytest-memray); ours with the source tree's package first on PYTHONPATH,
//! pytest-memray's plugin disabled (`-p no:memray`) and ours loaded.

use std::path::Path;
use std::process::Command;

use memray_tests::paths::fixtures;
use memray_tests::python_package::{path_with_build_first, python_path, source_package};
use memray_tests::reference::reference_memray_with;

/// `-rA`'s summary lines (`PASSED id`, `FAILED id - message`, `MEMORY
/// PROBLEMS id - message`), sorted, with the sizes a test allocated blanked.
fn outcomes(stdout: &str) -> Vec<String> {
    let mut lines: Vec<String> = stdout
        .lines()
        .skip_while(|line| !line.contains("short test summary info"))
        .skip(1)
        .filter(|line| !line.starts_with('='))
        .map(|line| match line.find(" but allocated ") {
            Some(at) => format!("{} but allocated N", &line[..at]),
            None => line.to_owned(),
        })
        .collect();
    lines.sort();
    lines
}

/// The `--memray` report's per-test headings.
fn reported_tests(stdout: &str) -> Vec<&str> {
    let mut tests: Vec<&str> = stdout
        .lines()
        .filter(|line| line.starts_with("Allocation results for "))
        .collect();
    tests.sort();
    tests
}

/// Runs pytest on the examples with `--memray`, as `configure` adjusts it
/// (which plugin); returns its stdout.
fn pytest(python: &Path, who: &str, configure: impl FnOnce(&mut Command)) -> String {
    let mut command = Command::new(python);
    command
        .args(["-m", "pytest", "-rA", "-p", "no:cacheprovider", "--memray"])
        .current_dir(fixtures().join("python-api/pytest"))
        // Failure messages unabridged.
        .env("COLUMNS", "300");
    configure(&mut command);
    let output = command
        .arg("test_examples.py")
        .output()
        .expect("run pytest");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{who}: some examples fail by design\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn pytest_memrays_examples_have_the_same_outcomes_under_our_plugin() {
    let reference = reference_memray_with("pytest-memray", &["pytest-memray", "pytest"]);
    let package = source_package();
    let theirs = pytest(&reference.python, "pytest-memray", |_| {});
    let ours = pytest(&reference.python, "our plugin", |command| {
        command
            .args(["-p", "no:memray", "-p", "memray.pytest_plugin"])
            .env("PYTHONPATH", python_path(&[package.path()]))
            .env("PATH", path_with_build_first());
    });
    let expected = outcomes(&theirs);
    assert_eq!(expected.len(), 8, "pytest-memray's outcomes:\n{theirs}");
    assert_eq!(outcomes(&ours), expected, "ours:\n{ours}");
    assert!(ours.contains("MEMRAY REPORT"), "{ours}");
    assert_eq!(
        reported_tests(&ours),
        reported_tests(&theirs),
        "ours:\n{ours}"
    );
}
