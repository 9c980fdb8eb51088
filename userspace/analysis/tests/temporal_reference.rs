//! Temporal reports against memray 1.20's `FileReader`
//! (`get_temporal_high_water_mark_allocation_records`,
//! `get_temporal_allocation_records`) on captures memray recorded: the same
//! records in the same order, the same intervals and per-snapshot peaks,
//! with and without downsampled memory records.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use memray_analysis::{
    overview, overview_and_temporal_high_water_mark, overview_and_temporal_leaks,
    temporal_high_water_mark, temporal_leaks, AnalysisError, CaptureFile, NeedsEveryRecord,
    StackResolver, TemporalRecord,
};
use memray_tests::captures::record_with_reference;
use memray_tests::paths::fixtures;
use memray_tests::reference::reference_memray;
use memray_tests::run::stdout_of;
use serde_json::{json, Value};

struct Captures {
    _dir: tempfile::TempDir,
    plain: PathBuf,
    native: PathBuf,
    aggregated: PathBuf,
}

fn captures() -> &'static Captures {
    static CAPTURES: OnceLock<Captures> = OnceLock::new();
    CAPTURES.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = fixtures().join("analysis/allocate_over_time.py");
        let record =
            |name, flags: &[&str]| record_with_reference(dir.path(), name, flags, &[], &script);
        Captures {
            plain: record("plain", &[]),
            native: record("native", &["--native"]),
            aggregated: record("aggregated", &["--aggregate"]),
            _dir: dir,
        }
    })
}

fn reference(capture: &Path, max_memory_records: usize) -> Value {
    let memray = reference_memray();
    let script = fixtures().join("analysis/filereader_temporal.py");
    let max = max_memory_records.to_string();
    let text = stdout_of(
        &memray.python,
        [script.as_os_str(), capture.as_os_str(), max.as_ref()],
    );
    serde_json::from_str(&text).expect("the reference script prints JSON")
}

fn ours(records: &[TemporalRecord], stacks: &dyn StackResolver) -> Value {
    records
        .iter()
        .map(|r| {
            let stack: Vec<Value> = stacks
                .python_stack(r.location.python_node, r.location.tid)
                .iter()
                .map(|f| json!([&*f.function, &*f.filename, f.lineno]))
                .collect();
            let intervals: Vec<Value> = r
                .intervals
                .iter()
                .map(|i| {
                    json!([
                        i.allocated_before_snapshot,
                        i.deallocated_before_snapshot,
                        i.n_allocations,
                        i.n_bytes
                    ])
                })
                .collect();
            json!({
                "tid": r.location.tid,
                "allocator": r.location.allocator.name().to_ascii_uppercase(),
                "stack": stack,
                "intervals": intervals,
            })
        })
        .collect()
}

fn check(path: &Path, max_memory_records: usize) {
    let expected = reference(path, max_memory_records);
    let capture = CaptureFile::open(path).expect("our reader opens memray's capture");
    let overview = overview(&capture, max_memory_records).unwrap();
    assert_eq!(json!(overview.memory.len()), expected["snapshots"]);
    for (suffix, merge) in [("merged", true), ("split", false)] {
        let hwm = temporal_high_water_mark(&capture, &overview, merge).unwrap();
        assert!(
            hwm.high_water_mark_by_snapshot.len() > 3,
            "the fixture spans several snapshots"
        );
        assert_eq!(
            json!(hwm.high_water_mark_by_snapshot),
            expected[format!("hwm_by_snapshot_{suffix}")],
            "high_water_mark_by_snapshot, {suffix}, max {max_memory_records}"
        );
        assert_eq!(
            ours(&hwm.records, &capture),
            expected[format!("hwm_{suffix}")],
            "temporal high-water mark, {suffix}, max {max_memory_records}"
        );
        let leaks = temporal_leaks(&capture, &overview, merge).unwrap();
        assert!(leaks.iter().any(|r| r.intervals.len() > 1));
        assert_eq!(
            ours(&leaks, &capture),
            expected[format!("leaks_{suffix}")],
            "temporal leaks, {suffix}, max {max_memory_records}"
        );
        // The same from the overview's own pass (one pass unless downsampled).
        let (one_pass, hwm_one_pass) =
            overview_and_temporal_high_water_mark(&capture, max_memory_records, merge).unwrap();
        assert_eq!(one_pass, overview);
        assert_eq!(hwm_one_pass, hwm, "{suffix}, max {max_memory_records}");
        let (one_pass, leaks_one_pass) =
            overview_and_temporal_leaks(&capture, max_memory_records, merge).unwrap();
        assert_eq!(one_pass, overview);
        assert_eq!(leaks_one_pass, leaks, "{suffix}, max {max_memory_records}");
    }
}

#[test]
fn temporal_reports_match_filereader() {
    check(&captures().plain, 10_000);
}

#[test]
fn temporal_reports_of_native_captures_match_filereader() {
    check(&captures().native, 10_000);
}

#[test]
fn downsampled_snapshots_match_filereader() {
    // Few enough kept records that the stride is 2 or more.
    check(&captures().plain, 7);
}

#[test]
fn aggregated_captures_have_no_history() {
    let capture = CaptureFile::open(&captures().aggregated).unwrap();
    let overview = overview(&capture, 10_000).unwrap();
    let refused = AnalysisError::Unsupported(NeedsEveryRecord::AllocationHistory);
    assert_eq!(
        temporal_high_water_mark(&capture, &overview, true).unwrap_err(),
        refused
    );
    assert_eq!(
        temporal_leaks(&capture, &overview, false).unwrap_err(),
        refused
    );
    assert_eq!(
        overview_and_temporal_high_water_mark(&capture, 10_000, true).unwrap_err(),
        refused
    );
    assert_eq!(
        overview_and_temporal_leaks(&capture, 10_000, false).unwrap_err(),
        refused
    );
}
