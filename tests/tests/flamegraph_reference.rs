//! `memray flamegraph` and `memray table` against memray 1.20: the data our
//! pages embed must equal what memray's pages embed (`packed_data`) for the
//! same capture, node by node, and the figures must be the capture's own
//! (the peak `memray stats --json` reports, the bytes memray finds leaked).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use memray_tests::captures::record_with_reference;
use memray_tests::html_pages::{
    memray_intervals, memray_memory_records, memray_packed_data, memray_tree, our_intervals,
    our_payload, our_tree, unescape_html, FlatTree,
};
use memray_tests::paths::{fixtures, memray_bin};
use memray_tests::reference::reference_memray;
use memray_tests::run::{output, stdout_of};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    fixtures().join("flamegraph").join(name)
}

/// Our page and memray's for `capture` with the same flags.
fn both_pages(dir: &Path, capture: &Path, command: &str, flags: &[&str]) -> (PathBuf, PathBuf) {
    let tag = flags.join("").replace('-', "_");
    let ours = dir.join(format!("ours-{command}{tag}.html"));
    let theirs = dir.join(format!("memray-{command}{tag}.html"));
    for (program, page) in [(memray_bin(), &ours), (reference_memray().memray, &theirs)] {
        stdout_of(
            program,
            [command, "-f", "-o"]
                .iter()
                .map(Path::new)
                .chain([page.as_path()])
                .chain(flags.iter().map(Path::new))
                .chain([capture]),
        );
    }
    (ours, theirs)
}

/// Our page's kept nodes equal memray's nodes, values and flags included.
/// Subtrees our page folds (smaller than a millionth of the total) are only
/// checked through their parents' totals.
fn assert_same_tree(ours: &FlatTree, theirs: &FlatTree, what: &str) {
    let total = theirs[&Vec::new()].bytes;
    let folded = (total as f64 * 1e-6) as u64;
    for (path, values) in theirs {
        if values.bytes < folded {
            continue;
        }
        let Some(our_values) = ours.get(path) else {
            panic!("{what}: memray's node {:?} is missing", path.last());
        };
        assert_eq!(our_values, values, "{what}: node {:?}", path.last());
    }
    for path in ours.keys() {
        let fold = path
            .last()
            .is_some_and(|f| f.1.ends_with("smaller stacks>"));
        assert!(
            fold || theirs.contains_key(path),
            "{what}: extra node {:?}",
            path.last()
        );
    }
}

/// The peak of `capture` as our `memray stats --json` reports it.
fn stats_peak(dir: &Path, capture: &Path) -> u64 {
    let json = dir.join("stats.json");
    stdout_of(
        memray_bin(),
        ["stats", "--json", "-f", "-o"]
            .iter()
            .map(Path::new)
            .chain([json.as_path(), capture]),
    );
    let stats: Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    stats["metadata"]["peak_memory"]
        .as_u64()
        .expect("peak_memory")
}

/// The bytes memray 1.20's own FileReader finds in `capture` for a flame
/// graph with `flags`: at the peak, leaked, or in temporary allocations
/// (memray's default threshold for `--temporary-allocations` is 1). An
/// independent truth for the root of the graph, which our page and memray's
/// reporter both derive from their own trees.
fn reference_total(capture: &Path, flags: &[&str]) -> u64 {
    let selection = match flags {
        [] | ["--split-threads"] => {
            "reader.get_high_watermark_allocation_records(merge_threads=True)"
        }
        ["--leaks"] => "reader.get_leaked_allocation_records(merge_threads=True)",
        ["--temporary-allocations"] => {
            "reader.get_temporary_allocation_records(merge_threads=True, threshold=1)"
        }
        ["--temporary-allocation-threshold", "0"] => {
            "reader.get_temporary_allocation_records(merge_threads=True, threshold=0)"
        }
        _ => panic!("no reference total for {flags:?}"),
    };
    let script = format!(
        "import sys, memray\n\
         reader = memray.FileReader(sys.argv[1])\n\
         print(sum(r.size for r in {selection}))"
    );
    let out = stdout_of(
        reference_memray().python,
        ["-c", &script, capture.to_str().unwrap()],
    );
    out.trim().parse().expect("a byte count")
}

/// Compares every non-temporal flame graph mode and checks the totals.
fn check_flamegraphs(dir: &Path, capture: &Path) {
    let peak = stats_peak(dir, capture);
    for flags in [
        &[][..],
        &["--split-threads"],
        &["--leaks"],
        &["--temporary-allocations"],
        &["--temporary-allocation-threshold", "0"],
    ] {
        let what = format!("{} {flags:?}", capture.display());
        let (ours, theirs) = both_pages(dir, capture, "flamegraph", flags);
        let payload = our_payload(&ours);
        let (tree, _) = our_tree(&payload);
        let (memray, _) = memray_tree(&memray_packed_data(&theirs));
        assert_same_tree(&tree, &memray, &what);
        let total = tree[&Vec::new()].bytes;
        assert_eq!(
            total,
            reference_total(capture, flags),
            "{what}: root = memray's FileReader total"
        );
        assert_eq!(
            payload["meta"]["peak_memory"].as_u64(),
            Some(peak),
            "{what}"
        );
        match flags {
            [] | ["--split-threads"] => assert_eq!(total, peak, "{what}: root = peak"),
            ["--leaks"] => {}
            _ => assert!(total > 0, "{what}: temporary allocations found"),
        }
    }
}

fn check_temporal(dir: &Path, capture: &Path) {
    for flags in [
        &["--temporal"][..],
        &["--temporal", "--split-threads"],
        &["--temporal", "--leaks"],
    ] {
        let what = format!("{} {flags:?}", capture.display());
        let (ours, theirs) = both_pages(dir, capture, "flamegraph", flags);
        let payload = our_payload(&ours);
        let packed = memray_packed_data(&theirs);
        let intervals = our_intervals(&payload);
        assert!(!intervals.is_empty(), "{what}: intervals");
        assert_eq!(intervals, memray_intervals(&packed), "{what}: intervals");
        let samples = payload["memory"]["time"].as_array().unwrap().len();
        assert_eq!(samples, memray_memory_records(&theirs).len());
        let ours_hwm = &payload["temporal"]["hwm"];
        match packed["high_water_mark_by_snapshot"].as_array() {
            None => assert!(ours_hwm.is_null(), "{what}: a leaks view has no marks"),
            Some(marks) => {
                let ours_hwm = ours_hwm.as_array().expect("marks");
                assert_eq!(ours_hwm.len(), samples + 1, "{what}: one mark per snapshot");
                // memray leaves out the snapshots after the last allocation.
                assert_eq!(&ours_hwm[..marks.len()], marks.as_slice(), "{what}: marks");
                let peak = marks.iter().filter_map(Value::as_u64).max();
                let our_peak = ours_hwm.iter().filter_map(Value::as_u64).max();
                assert_eq!(our_peak, peak, "{what}: the run's peak");
            }
        }
    }
}

/// One table row: (thread unless threads are merged, location) -> (allocator, size, count).
type Rows = Vec<((String, String), (String, u64, u64))>;

fn our_rows(payload: &Value) -> Rows {
    let merged = payload["meta"]["merge_threads"].as_bool().unwrap();
    let text = |column: &str, i: usize| {
        let id = payload[column][i].as_u64().unwrap() as usize;
        payload["strings"][id].as_str().unwrap().to_owned()
    };
    let number = |column: &str, i: usize| payload[column][i].as_u64().unwrap();
    (0..payload["size"].as_array().unwrap().len())
        .map(|i| {
            let thread = if merged {
                String::new()
            } else {
                text("thread", i)
            };
            let values = (text("allocator", i), number("size", i), number("count", i));
            ((thread, text("location", i)), values)
        })
        .collect()
}

fn memray_rows(packed: &Value, merged: bool) -> Rows {
    packed
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let thread = if merged {
                ""
            } else {
                row["tid"].as_str().unwrap()
            };
            let location = unescape_html(row["stack_trace"].as_str().unwrap());
            let values = (
                row["allocator"].as_str().unwrap().to_owned(),
                row["size"].as_u64().unwrap(),
                row["n_allocations"].as_u64().unwrap(),
            );
            ((thread.to_owned(), location), values)
        })
        .collect()
}

/// Per (thread, location): the allocators shown and the summed size and count.
fn by_location(rows: &Rows) -> BTreeMap<(String, String), (BTreeSet<String>, u64, u64)> {
    let mut out: BTreeMap<_, (BTreeSet<String>, u64, u64)> = BTreeMap::new();
    for (key, (allocator, size, count)) in rows {
        let entry = out.entry(key.clone()).or_default();
        entry.0.insert(allocator.clone());
        entry.1 += size;
        entry.2 += count;
    }
    out
}

/// Rows agree with memray's per location. memray names a row after the
/// allocator of whichever record its hash map yields first, so allocators
/// are compared only where each side shows one allocator for the location.
fn check_tables(dir: &Path, capture: &Path) {
    for flags in [
        &[][..],
        &["--split-threads"],
        &["--leaks"],
        &["--temporary-allocations"],
    ] {
        let what = format!("{} table {flags:?}", capture.display());
        let (ours, theirs) = both_pages(dir, capture, "table", flags);
        let payload = our_payload(&ours);
        let merged = payload["meta"]["merge_threads"].as_bool().unwrap();
        let mine = by_location(&our_rows(&payload));
        let reference = by_location(&memray_rows(&memray_packed_data(&theirs), merged));
        assert!(!mine.is_empty(), "{what}: rows");
        assert_eq!(
            mine.keys().collect::<Vec<_>>(),
            reference.keys().collect::<Vec<_>>(),
            "{what}: locations"
        );
        for (key, (allocators, size, count)) in &mine {
            let (their_allocators, their_size, their_count) = &reference[key];
            assert_eq!((size, count), (their_size, their_count), "{what}: {key:?}");
            if allocators.len() == 1 && their_allocators.len() == 1 {
                assert_eq!(allocators, their_allocators, "{what}: {key:?}");
            }
        }
    }
}

#[test]
fn a_two_thread_capture_matches_memray() {
    let dir = tempfile::tempdir().unwrap();
    let capture =
        record_with_reference(dir.path(), "threads", &[], &[], &fixture("two_threads.py"));
    check_flamegraphs(dir.path(), &capture);
    check_temporal(dir.path(), &capture);
    check_tables(dir.path(), &capture);
}

#[test]
fn the_bundled_example_matches_memray() {
    let dir = tempfile::tempdir().unwrap();
    let bundled = fixtures().join("captures").join("example-memray-1.20.bin");
    check_flamegraphs(dir.path(), &bundled);
    let example = fixtures().join("example").join("example.py");
    let fresh = record_with_reference(dir.path(), "example", &[], &[], &example);
    check_flamegraphs(dir.path(), &fresh);
    check_temporal(dir.path(), &fresh);
    check_tables(dir.path(), &fresh);
}

#[test]
fn deep_stacks_are_cut_where_memray_cuts_them() {
    let dir = tempfile::tempdir().unwrap();
    let capture = record_with_reference(dir.path(), "deep", &[], &[], &fixture("deep.py"));
    let (ours, theirs) = both_pages(dir.path(), &capture, "flamegraph", &[]);
    let (tree, _) = our_tree(&our_payload(&ours));
    let (memray, _) = memray_tree(&memray_packed_data(&theirs));
    assert_same_tree(&tree, &memray, "deep");
    let cut = tree
        .keys()
        .filter(|p| p.last().is_some_and(|f| f.1 == "<STACK TOO DEEP>"));
    assert_eq!(cut.count(), 1, "one cut marker");
}

#[test]
fn aggregated_captures_give_the_same_graph() {
    let dir = tempfile::tempdir().unwrap();
    let capture = record_with_reference(
        dir.path(),
        "aggregated",
        &["--aggregate"],
        &[],
        &fixture("two_threads.py"),
    );
    for flags in [&[][..], &["--leaks"]] {
        let (ours, theirs) = both_pages(dir.path(), &capture, "flamegraph", flags);
        let (tree, _) = our_tree(&our_payload(&ours));
        let (memray, _) = memray_tree(&memray_packed_data(&theirs));
        assert_same_tree(&tree, &memray, "aggregated");
    }
    let refused = output(
        memray_bin(),
        ["flamegraph", "--temporal", capture.to_str().unwrap()],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&refused.stderr).trim(),
        "Can't get allocation history using a pre-aggregated capture file."
    );
}
