//! `memray attach PID` without `--ebpf` (CPython 3.14's `sys.remote_exec`):
//! a Tracker started inside a running loop for `--duration`, then another
//! ended by `memray detach PID`, then one ended by Ctrl-C; the process keeps running with its output
//! unchanged, and the captures hold its allocations with their stacks (read
//! by memray 1.20's FileReader). A process that is not Python, and one on an
//! older CPython, each get one clear line.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use memray_tests::interpreters::{self, Interpreter};
use memray_tests::paths::{fixtures, memray_bin};
use memray_tests::python_package::{path_with_build_first, python_path, source_package};
use memray_tests::reference::file_reader_dump;
use memray_tests::skip::{self, Requirement};

/// The loop, on `python`, with our package importable; returns once it has printed.
fn start_loop(
    python: &Interpreter,
    package: &Path,
) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut child = Command::new(&python.path)
        .arg(fixtures().join("python-api/attach_loop.py"))
        .env("PYTHONPATH", python_path(&[package]))
        .env("PATH", path_with_build_first())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the loop");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert_eq!(first, "tick 0\n");
    (child, stdout)
}

fn memray(args: &[&str]) -> std::process::Output {
    Command::new(memray_bin())
        .args(args)
        .output()
        .expect("run memray")
}

/// How many of the capture's allocations `churn` made.
fn allocations_in_churn(capture: &Path) -> usize {
    file_reader_dump(capture)["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|record| record[6][0][0] == "churn")
        .count()
}

/// `memray attach PID -o capture`, returned once it says it is writing.
fn attach_in_background(pid: &str, capture: &Path) -> Child {
    let mut waiting = Command::new(memray_bin())
        .args(["attach", pid, "-o"])
        .arg(capture)
        .stdout(Stdio::piped())
        .spawn()
        .expect("run memray attach");
    let mut announced = String::new();
    BufReader::new(waiting.stdout.as_mut().unwrap())
        .read_line(&mut announced)
        .unwrap();
    assert!(
        announced.starts_with("Writing profile results into"),
        "{announced}"
    );
    waiting
}

fn one_line_failure(output: &std::process::Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(expected), "{stderr}");
}

#[test]
fn attach_and_detach_on_cpython_3_14() {
    if !skip::needs(&[Requirement::Python(14)]) {
        return;
    }
    let python = interpreters::find(3, 14).expect("checked by skip::needs");
    let package = source_package();
    let work = tempfile::tempdir().unwrap();
    let (mut target, stdout) = start_loop(&python, package.path());
    let pid = target.id().to_string();

    let timed = work.path().join("timed.bin");
    let attached = memray(&[
        "attach",
        &pid,
        "--duration",
        "1",
        "-o",
        timed.to_str().unwrap(),
    ]);
    assert!(
        attached.status.success(),
        "{}",
        String::from_utf8_lossy(&attached.stderr)
    );
    assert!(
        allocations_in_churn(&timed) >= 100,
        "the loop's allocations"
    );

    let detached_capture = work.path().join("detached.bin");
    let waiting = attach_in_background(&pid, &detached_capture);
    std::thread::sleep(Duration::from_millis(500));
    let detach = memray(&["detach", &pid]);
    assert!(
        detach.status.success(),
        "{}",
        String::from_utf8_lossy(&detach.stderr)
    );
    let waited = waiting.wait_with_output().unwrap();
    assert!(waited.status.success());
    assert!(
        String::from_utf8_lossy(&waited.stdout).contains("Tracking was ended by memray detach"),
        "{}",
        String::from_utf8_lossy(&waited.stdout)
    );
    assert!(allocations_in_churn(&detached_capture) >= 100);

    // Ctrl-C on the attach command ends the tracking and finishes the file.
    let interrupted_capture = work.path().join("interrupted.bin");
    let waiting = attach_in_background(&pid, &interrupted_capture);
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(waiting.id() as i32, libc::SIGINT) };
    let waited = waiting.wait_with_output().unwrap();
    assert!(waited.status.success(), "{waited:?}");
    assert!(allocations_in_churn(&interrupted_capture) >= 100);

    // Still running, its output unchanged: consecutive ticks.
    assert!(target.try_wait().unwrap().is_none(), "the process ended");
    target.kill().unwrap();
    target.wait().unwrap();
    let ticks: Vec<String> = stdout.lines().map(Result::unwrap).collect();
    assert!(ticks.len() > 20, "{ticks:?}");
    for (index, tick) in ticks.iter().enumerate() {
        assert_eq!(tick, &format!("tick {}", index + 1));
    }

    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    let not_python = memray(&["attach", &sleeper.id().to_string()]);
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    one_line_failure(&not_python, "is not a CPython process");
}

#[test]
fn older_interpreters_are_pointed_at_ebpf() {
    let Some(older) = interpreters::supported()
        .into_iter()
        .rev()
        .find(|python| python.version < (3, 14))
    else {
        skip::skip_part("a CPython older than 3.14", "none installed");
        return;
    };
    let package = source_package();
    let (mut target, _stdout) = start_loop(&older, package.path());
    let attached = memray(&["attach", &target.id().to_string()]);
    target.kill().unwrap();
    target.wait().unwrap();
    one_line_failure(&attached, "use `sudo memray attach --ebpf");
}
