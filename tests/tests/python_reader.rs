//! `memray.FileReader` of our package (the Rust reader behind PyO3) against
//! memray 1.20's own, on captures memray 1.20 recorded (plain, aggregated,
//! with Python allocators, with native traces): the same metadata, the same
//! records with the same thread names and (hybrid) stacks, the same peak, leaks, temporary allocations and
//! memory snapshots, through the same scripts.

use std::path::Path;
use std::process::Command;

use memray_tests::captures::record_with_reference;
use memray_tests::interpreters::reference_python;
use memray_tests::paths::fixtures;
use memray_tests::python_package::{python_path, source_package};
use memray_tests::reference::reference_memray;
use serde_json::Value;

fn json_of(command: &mut Command, what: &str) -> Value {
    let output = command.output().expect("run python");
    assert!(
        output.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// The grouped queries' records without the allocator: for a location mixing
/// allocators memray's representative record depends on its hash-map order
/// (as in memray-analysis's reference test).
fn without_allocators(mut queries: Value) -> Value {
    for records in queries.as_object_mut().unwrap().values_mut() {
        for record in records.as_array_mut().into_iter().flatten() {
            if let Some(record) = record.as_object_mut() {
                record.remove("allocator");
            }
        }
    }
    queries
}

/// Index of the hybrid stack in reader_dump.py's records.
const HYBRID: usize = 8;

/// Where memray 1.20 (libbacktrace) leaves a native frame's place unknown
/// (`<unknown>`, line 0) and ours names it, for the same function, ours is
/// taken as memray's: the rest must be equal.
fn accept_unknown_places(ours: &mut Value, theirs: &Value) {
    let (Some(ours), Some(theirs)) = (
        ours.get_mut("records").and_then(Value::as_array_mut),
        theirs.get("records").and_then(Value::as_array),
    ) else {
        return;
    };
    for (our_record, their_record) in ours.iter_mut().zip(theirs) {
        let (Some(our_stack), Some(their_stack)) = (
            our_record[HYBRID].as_array_mut(),
            their_record[HYBRID].as_array(),
        ) else {
            continue;
        };
        for (our_frame, their_frame) in our_stack.iter_mut().zip(their_stack) {
            if their_frame[1] == "<unknown>"
                && their_frame[2] == 0
                && our_frame[0] == their_frame[0]
            {
                *our_frame = their_frame.clone();
            }
        }
    }
}

fn compare(capture: &Path, package: &Path) {
    let memray = reference_memray();
    let ours = |script: &Path| {
        let mut command = Command::new(reference_python().path);
        command
            .arg(script)
            .arg(capture)
            .env("PYTHONPATH", python_path(&[package]));
        command
    };
    let theirs = |script: &Path| {
        let mut command = Command::new(&memray.python);
        command.arg(script).arg(capture);
        command
    };
    let name = capture.display();
    let dump = fixtures().join("python-api/reader_dump.py");
    let mut our_dump = json_of(&mut ours(&dump), "our FileReader");
    let their_dump = json_of(&mut theirs(&dump), "memray 1.20's FileReader");
    accept_unknown_places(&mut our_dump, &their_dump);
    assert_eq!(our_dump, their_dump, "metadata and records of {name}");
    let queries = fixtures().join("analysis/filereader_records.py");
    assert_eq!(
        without_allocators(json_of(&mut ours(&queries), "our FileReader")),
        without_allocators(json_of(&mut theirs(&queries), "memray 1.20's FileReader")),
        "peak, leaks, temporary allocations and memory of {name}"
    );
}

#[test]
fn our_file_reader_reads_what_memrays_reads() {
    let work = tempfile::tempdir().unwrap();
    let package = source_package();
    let script = fixtures().join("analysis/allocate.py");
    let variants: [(&str, &[&str]); 4] = [
        ("plain", &[]),
        ("aggregated", &["--aggregate"]),
        ("pyalloc", &["--trace-python-allocators"]),
        ("native", &["--native"]),
    ];
    for (name, flags) in variants {
        let capture = record_with_reference(work.path(), name, flags, &[], &script);
        compare(&capture, package.path());
    }
}
