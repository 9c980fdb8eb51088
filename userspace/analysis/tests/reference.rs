//! The engine against memray 1.20's own `FileReader` on captures that
//! memray itself recorded (plain, aggregated, native, Python allocators):
//! the same records, in the same order, for the peak, leaks, temporary
//! allocations and memory snapshots.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use memray_analysis::{
    high_water_mark, leaks, overview, overview_and_high_water_mark, temporary_allocations,
    AllocationGroup, Capture, CaptureFile, Overview, StackResolver,
};
use memray_tests::captures::record_with_reference;
use memray_tests::paths::fixtures;
use memray_tests::reference::reference_memray;
use memray_tests::run::stdout_of;
use serde_json::{json, Value};

/// Captures recorded once per test process with the reference memray.
fn captures() -> &'static (tempfile::TempDir, Vec<PathBuf>) {
    static CAPTURES: OnceLock<(tempfile::TempDir, Vec<PathBuf>)> = OnceLock::new();
    CAPTURES.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = fixtures().join("analysis/allocate.py");
        let variants: [(&str, &[&str]); 4] = [
            ("plain", &[]),
            ("aggregated", &["--aggregate"]),
            ("native", &["--native"]),
            ("pyalloc", &["--trace-python-allocators"]),
        ];
        let paths = variants
            .iter()
            .map(|(name, flags)| record_with_reference(dir.path(), name, flags, &[], &script))
            .collect();
        (dir, paths)
    })
}

fn reference_records(capture: &Path) -> Value {
    let memray = reference_memray();
    let script = fixtures().join("analysis/filereader_records.py");
    let text = stdout_of(&memray.python, [script.as_os_str(), capture.as_os_str()]);
    serde_json::from_str(&text).expect("the reference script prints JSON")
}

/// Our groups in the reference script's shape, minus the allocator: for a
/// location mixing allocators memray's representative record depends on
/// its hash-map order.
fn ours(groups: &[AllocationGroup], stacks: &dyn StackResolver) -> Value {
    groups
        .iter()
        .map(|g| {
            let stack: Vec<Value> = stacks
                .python_stack(g.allocation.python_node, g.tid())
                .iter()
                .map(|f| json!([&*f.function, &*f.filename, f.lineno]))
                .collect();
            json!({"tid": g.tid(), "size": g.size, "n_allocations": g.n_allocations, "stack": stack})
        })
        .collect()
}

fn without_allocator(records: &Value) -> Value {
    let mut records = records.clone();
    for r in records.as_array_mut().expect("a list of records") {
        r.as_object_mut().unwrap().remove("allocator");
    }
    records
}

fn single_pass(capture: &CaptureFile, two_pass: &Overview, merge: bool) -> Vec<AllocationGroup> {
    let (overview, groups) = overview_and_high_water_mark(capture, 10_000, merge).unwrap();
    assert_eq!(&overview, two_pass);
    groups
}

fn check(capture_path: &Path) {
    let expected = reference_records(capture_path);
    let capture = CaptureFile::open(capture_path).expect("our reader opens memray's capture");
    let overview = overview(&capture, 10_000).unwrap();
    assert_eq!(
        json!(overview.high_water_mark.bytes),
        expected["peak_memory"]
    );
    if !capture.is_aggregated() {
        assert_eq!(json!(overview.records), expected["total_allocations"]);
    }
    let memory: Vec<Value> = overview
        .memory
        .iter()
        .map(|m| json!([m.time_ms, m.rss, m.heap]))
        .collect();
    assert_eq!(Value::from(memory), expected["memory"]);

    let mut queries = vec![
        (
            "hwm_merged",
            high_water_mark(&capture, &overview, true).unwrap(),
        ),
        (
            "hwm_split",
            high_water_mark(&capture, &overview, false).unwrap(),
        ),
        // The single-pass variant must find the same peak and the same groups.
        ("hwm_merged", single_pass(&capture, &overview, true)),
        ("hwm_split", single_pass(&capture, &overview, false)),
        ("leaks_merged", leaks(&capture, true).unwrap()),
        ("leaks_split", leaks(&capture, false).unwrap()),
    ];
    if !capture.is_aggregated() {
        for threshold in [0, 1, 3] {
            let groups = temporary_allocations(&capture, threshold, false).unwrap();
            queries.push((
                ["temporary_0", "temporary_1", "", "temporary_3"][threshold],
                groups,
            ));
        }
    }
    for (name, groups) in queries {
        assert!(!groups.is_empty(), "{name}: the fixture allocates");
        assert_eq!(
            ours(&groups, &capture),
            without_allocator(&expected[name]),
            "{name} of {}",
            capture_path.display()
        );
    }
}

#[test]
fn plain_capture_matches_filereader() {
    check(&captures().1[0]);
}

#[test]
fn aggregated_capture_matches_filereader() {
    check(&captures().1[1]);
}

#[test]
fn native_capture_matches_filereader() {
    check(&captures().1[2]);
}

#[test]
fn python_allocator_capture_matches_filereader() {
    check(&captures().1[3]);
}
