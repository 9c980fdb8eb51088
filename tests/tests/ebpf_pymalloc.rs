// eBPF is a feature of the Linux kernel.
#![cfg(target_os = "linux")]

//! `--trace-python-allocators` under `--ebpf`: the probes on the functions of
//! the interpreter's allocator tables record what the in-process tracker
//! records by wrapping the tables (PYMALLOC_* allocators, sizes and Python
//! stacks; pymalloc's own call of malloc for a large object not counted
//! twice), read by memray 1.20's FileReader; with `run` and with `attach`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use memray_tests::interpreters::{self, Interpreter};
use memray_tests::run::succeeded;
use memray_tests::{paths, reference, skip};

fn fixture(name: &str) -> PathBuf {
    paths::fixtures().join("ebpf").join(name)
}

/// `memray run [--ebpf] --trace-python-allocators -q -f -o capture
/// pymalloc_objects.py`, with `PYTHONMALLOC` set to `pythonmalloc` if not empty.
fn memray_run(python: &Interpreter, ebpf: bool, capture: &Path, pythonmalloc: &str) -> Output {
    let mut command = Command::new(paths::memray_bin());
    command.arg("run");
    if ebpf {
        command.arg("--ebpf");
    }
    command
        .arg("--python")
        .arg(&python.path)
        .args(["--trace-python-allocators", "-q", "-f", "-o"])
        .arg(capture)
        .arg(fixture("pymalloc_objects.py"));
    if !pythonmalloc.is_empty() {
        command.env("PYTHONMALLOC", pythonmalloc);
    }
    command.output().expect("run memray")
}

/// The refusal for an interpreter whose allocator is inlined behind a check
/// of its table at its call sites (PGO builds: Debian's): one line.
const INLINED: &str = "calls pymalloc through inlined copies";

/// The same objects under `run --ebpf` and under the in-process tracker:
/// the same PYMALLOC_* records (allocator, size, stack), on each CPython here.
#[test]
fn run_ebpf_records_the_python_allocators_as_the_in_process_tracker() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    for python in interpreters::all_for_tests() {
        compare_with_the_in_process_tracker(&python, "");
    }
}

/// Tables changed at start-up are probed as they are: the interpreter's
/// wrappers of libc (`PYTHONMALLOC=malloc`), the debug hooks.
#[test]
fn tables_changed_at_start_up_are_recorded_as_memray_records_them() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    for pythonmalloc in ["malloc", "debug"] {
        compare_with_the_in_process_tracker(&interpreters::reference_python(), pythonmalloc);
    }
}

/// `run --ebpf` and in-process `run` give the same PYMALLOC_* records (or
/// `--ebpf` refuses a PGO build in one line).
fn compare_with_the_in_process_tracker(python: &Interpreter, pythonmalloc: &str) {
    let reference = reference::reference_memray();
    let workdir = tempfile::tempdir().expect("tempdir");
    let ours = workdir.path().join("ebpf.bin");
    let inprocess = workdir.path().join("tracker.bin");
    let label = format!("Python {} PYTHONMALLOC={pythonmalloc}", python.label());
    let output = memray_run(python, true, &ours, pythonmalloc);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains(INLINED) {
        assert!(!output.status.success(), "{label}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{label}: {stderr}");
        eprintln!("{label}: refused: {stderr}");
        return;
    }
    succeeded(&output, &format!("run --ebpf on {label}"));
    succeeded(
        &memray_run(python, false, &inprocess, pythonmalloc),
        &format!("run on {label}"),
    );
    let compared = Command::new(&reference.python)
        .arg(fixture("compare_pymalloc.py"))
        .arg(&ours)
        .arg(&inprocess)
        .output()
        .expect("compare");
    succeeded(&compared, &format!("{label}: the captures differ"));
}

/// A running process attached with `--trace-python-allocators` for a
/// while: its objects as PYMALLOC_* records with their stacks, none also
/// as libc's; the process goes on.
#[test]
fn attach_ebpf_records_the_python_allocators() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let workdir = tempfile::tempdir().expect("tempdir");
    let mut child = start_measuring(&interpreters::reference_python(), "");
    let attach = Command::new(paths::memray_bin())
        .args(["attach", "--ebpf", &child.id().to_string()])
        .args(["--trace-python-allocators", "--duration", "1", "-o"])
        .arg(workdir.path().join("attached.bin"))
        .output()
        .expect("run memray attach");
    succeeded(&attach, "attach --ebpf --trace-python-allocators");
    assert!(child.wait().expect("wait").success());
    check_objects(&workdir.path().join("attached.bin"));
}

/// `attach --ebpf --all --trace-python-allocators`: each process's tables
/// are read when it is found, whatever its version.
#[test]
fn attach_all_records_the_python_allocators_of_each_process() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let first = interpreters::reference_python();
    let Some(second) = interpreters::supported()
        .into_iter()
        .rev()
        .find(|i| i.version != first.version && i.version.1 <= 13)
    else {
        skip::skip_part("a second CPython version", "only one CPython is installed");
        return;
    };
    let workdir = tempfile::tempdir().expect("tempdir");
    let marker = workdir.path().to_string_lossy().into_owned();
    let mut children = [&first, &second].map(|python| start_measuring(python, &marker));
    let captures = workdir.path().join("captures");
    let attach = Command::new(paths::memray_bin())
        .args(["attach", "--ebpf", "--all", "--name", &marker])
        .args(["--trace-python-allocators", "--duration", "1", "-o"])
        .arg(&captures)
        .output()
        .expect("run memray attach --all");
    succeeded(&attach, "attach --ebpf --all --trace-python-allocators");
    for child in &mut children {
        let pid = child.id();
        assert!(child.wait().expect("wait").success());
        let capture = std::fs::read_dir(&captures)
            .expect("the captures")
            .flatten()
            .map(|entry| entry.path())
            .find(|path| path.to_string_lossy().ends_with(&format!(".{pid}.bin")))
            .unwrap_or_else(|| panic!("no capture of {pid}: {attach:?}"));
        check_objects(&capture);
    }
}

/// pymalloc_objects.py measuring 400 times, once it is ready.
fn start_measuring(python: &Interpreter, marker: &str) -> Child {
    let mut child = Command::new(&python.path)
        .arg(fixture("pymalloc_objects.py"))
        .args(["400", marker])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start python");
    let mut line = String::new();
    let stdout = child.stdout.as_mut().expect("stdout");
    BufReader::new(stdout).read_line(&mut line).expect("ready");
    assert_eq!(line, "ready\n");
    child
}

/// The capture holds whole iterations of `measure`, each object as one
/// PYMALLOC_* record, none also as libc's.
fn check_objects(capture: &Path) {
    let reference = reference::reference_memray();
    let counted = Command::new(&reference.python)
        .arg("-c")
        .arg(COUNT_BY_ALLOCATOR)
        .arg(capture)
        .output()
        .expect("count");
    succeeded(&counted, "the capture");
    let counts = String::from_utf8_lossy(&counted.stdout);
    let count = |what: &str| -> u64 {
        counts
            .lines()
            .find_map(|line| line.strip_prefix(what)?.trim().parse().ok())
            .unwrap_or(0)
    };
    // 40 objects of each kind per `measure`, each iteration whole or not at all.
    let calloc = count("PYMALLOC_CALLOC 3033 ");
    assert!(calloc >= 40, "{counts}");
    assert!(
        calloc.abs_diff(count("PYMALLOC_MALLOC 733 ")) <= 1,
        "{counts}"
    );
    assert!(
        calloc.abs_diff(count("PYMALLOC_REALLOC 1001 ")) <= 1,
        "{counts}"
    );
    for libc in ["CALLOC 3033 ", "MALLOC 733 ", "REALLOC 1001 "] {
        assert_eq!(count(libc), 0, "{libc}: {counts}");
    }
}

/// Prints how many records there are, then `ALLOCATOR SIZE COUNT` for those
/// made under `allocate`.
const COUNT_BY_ALLOCATOR: &str = r#"
import collections, sys
from memray import AllocatorType, FileReader
counts = collections.Counter()
records = list(FileReader(sys.argv[1]).get_allocation_records())
print("records", len(records))
for record in records:
    if AllocatorType(record.allocator).name in ("FREE", "PYMALLOC_FREE", "MUNMAP"):
        continue
    if any(function == "allocate" for function, _, _ in record.stack_trace()):
        counts[AllocatorType(record.allocator).name, record.size] += 1
for (allocator, size), count in sorted(counts.items()):
    print(allocator, size, count)
"#;
