//! `memray run --follow-fork` tracks forked processes only: on Python 3.14,
//! whose multiprocessing starts workers from a forkserver by default, it
//! says so in one line, and a pool started with "fork" is tracked.

use std::path::Path;
use std::process::Output;

use memray_tests::interpreters;
use memray_tests::paths::memray_bin;
use memray_tests::skip::{self, Requirement};

const POOL: &str = r#"
import multiprocessing, sys
if __name__ == "__main__":
    if len(sys.argv) > 1:
        multiprocessing.set_start_method(sys.argv[1])
    with multiprocessing.Pool(2) as pool:
        print(sum(pool.map(abs, range(-10, 0))))
"#;

const WARNING: &str = "memray: multiprocessing's forkserver and spawn workers are not tracked \
(they are started with exec); call multiprocessing.set_start_method(\"fork\") to track them \
with --follow-fork\n";

fn run_pool(python: &Path, dir: &Path, start_method: &[&str]) -> Output {
    let out = std::process::Command::new(memray_bin())
        .args([
            "run",
            "-q",
            "-f",
            "--follow-fork",
            "-o",
            "out.bin",
            "--python",
        ])
        .arg(python)
        .arg("pool.py")
        .args(start_method)
        .current_dir(dir)
        .output()
        .expect("run memray");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"55\n");
    out
}

/// The workers' captures: `out.bin.PID`, as for every --follow-fork child.
fn child_captures(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|entry| {
            let name = entry.as_ref().unwrap().file_name();
            name.to_string_lossy().starts_with("out.bin.")
        })
        .count()
}

#[test]
fn forkserver_workers_are_said_to_be_untracked_and_fork_workers_are_tracked() {
    if !skip::needs(&[Requirement::Python(14)]) {
        return;
    }
    let python = interpreters::find(3, 14).expect("checked above");
    for (start_method, warned, tracked) in [(&[][..], true, 0), (&["fork"][..], false, 2)] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pool.py"), POOL).unwrap();
        let out = run_pool(&python.path, dir.path(), start_method);
        let expected = if warned { WARNING } else { "" };
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            expected,
            "{start_method:?}"
        );
        assert_eq!(child_captures(dir.path()), tracked, "{start_method:?}");
    }
}
