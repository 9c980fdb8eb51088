//! `memray dump-stacks PID` on a live CPython process: every parked thread's
//! innermost frame is shown with its file and line; bad PIDs fail in one line.

use memray_tests::parked_python::ParkedPython;
use memray_tests::{interpreters, paths, run};

#[test]
fn dump_stacks_shows_the_parked_threads() {
    let parked = ParkedPython::start(&interpreters::reference_python().path);
    let out = run::output(
        paths::memray_bin(),
        ["dump-stacks", &parked.pid().to_string()],
    );
    let threads = parked.expected_threads();
    drop(parked);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for (native_id, frames) in threads {
        let top = &frames[0];
        let header = format!("Thread {native_id} (");
        let innermost = format!("    {} ({}:{})", top.qualname, top.file, top.line);
        let at = text
            .find(&header)
            .unwrap_or_else(|| panic!("no {header:?} in\n{text}"));
        assert_eq!(
            text[at..].lines().nth(1),
            Some(innermost.as_str()),
            "{text}"
        );
    }
}

#[test]
fn dump_stacks_of_a_missing_process_fails_in_one_line() {
    let out = run::output(paths::memray_bin(), ["dump-stacks", "2147483647"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("no process with pid 2147483647"),
        "{stderr}"
    );
}
