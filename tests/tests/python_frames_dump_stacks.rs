//! `memray dump-stacks PID` on a live CPython process: every parked thread's
//! innermost frame is shown with its file and line; bad PIDs fail in one line.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use memray_tests::{interpreters, paths, run};

#[test]
fn dump_stacks_shows_the_parked_threads() {
    let python = interpreters::reference_python();
    let script = paths::fixtures().join("python-frames/parked_threads.py");
    let mut child = Command::new(&python.path)
        .arg(&script)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the fixture");
    let mut report = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut report)
        .expect("fixture report");
    let out = run::output(
        paths::memray_bin(),
        ["dump-stacks", &child.id().to_string()],
    );
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(&report).expect("JSON report");
    for thread in report["threads"].as_array().expect("threads") {
        let top = &thread["frames"][0];
        let header = format!("Thread {} (", thread["native_id"]);
        let innermost = format!(
            "    {} ({}:{})",
            top[3].as_str().expect("qualname"),
            top[1].as_str().expect("file"),
            top[2]
        );
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
