//! Our flame graph pages of a REAL capture in headless Chromium: the
//! two-thread fixture recorded by memray 1.20, pages made by our `memray
//! flamegraph`, and every figure the browser must show taken from memray's
//! own pages of the same capture (peak, a frame's bytes, search, each
//! thread's total, the temporal peaks). `tests/browser/run.js` drives the
//! pages (no console error, no network request, zoom, search, thread switch,
//! temporal window, the window and zoom restored from the URL hash) and
//! saves screenshots under `<target>/html-capture-tests/screenshots`.
//!
//! Needs `chromium` and `node` (skipped, and counted as skipped, when absent) and
//! `npm ci` run in tests/browser.

use std::path::Path;

use memray_tests::browser::{fresh_output_dir, Browser};
use memray_tests::captures::record_with_reference;
use memray_tests::html_pages::{memray_packed_data, memray_tree, our_payload, FlatTree};
use memray_tests::paths::{fixtures, memray_bin};
use memray_tests::reference::reference_memray;
use memray_tests::run::stdout_of;
use serde_json::{json, Value};

fn make_page(program: &Path, page: &Path, flags: &[&str], capture: &Path) {
    let mut args = vec!["flamegraph", "-f", "-o", page.to_str().unwrap()];
    args.extend_from_slice(flags);
    args.push(capture.to_str().unwrap());
    stdout_of(program, args);
}

/// Bytes of the outermost nodes whose function is `function`.
fn function_bytes(tree: &FlatTree, function: &str) -> u64 {
    tree.iter()
        .filter(|(path, _)| {
            let mut matches = path.iter().map(|frame| frame.1 == function);
            matches.next_back() == Some(true) && !matches.any(|m| m)
        })
        .map(|(_, values)| values.bytes)
        .sum()
}

/// The first snapshot holding the highest mark of `marks[window]`.
fn peak_of(marks: &[u64], start: usize, end: usize) -> (usize, u64) {
    let peak = *marks[start..=end].iter().max().unwrap();
    (
        start + marks[start..=end].iter().position(|&m| m == peak).unwrap(),
        peak,
    )
}

/// What the browser must show, from memray's pages in `reference`.
fn expectations(dir: &Path, reference: &Path) -> Value {
    let (merged, _) = memray_tree(&memray_packed_data(&reference.join("merged.html")));
    let peak = merged[&Vec::new()].bytes;
    let (split, _) = memray_tree(&memray_packed_data(&reference.join("split.html")));
    let our_threads = our_payload(&dir.join("capture_split.html"))["threads"].clone();
    let threads: Vec<Value> = our_threads
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(index, name)| {
            let name = name.as_str().unwrap();
            let bytes: u64 = split
                .iter()
                .filter(|(path, _)| path.len() == 1 && path[0].0 == name)
                .map(|(_, values)| values.bytes)
                .sum();
            json!({ "index": index, "name": name, "bytes": bytes })
        })
        .collect();
    assert!(threads.len() >= 2, "the fixture runs two threads");

    let temporal = memray_packed_data(&reference.join("temporal.html"));
    let marks: Vec<u64> = temporal["high_water_mark_by_snapshot"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_u64().unwrap())
        .collect();
    let (_, full_peak) = peak_of(&marks, 0, marks.len() - 1);
    assert_eq!(full_peak, peak, "memray's temporal peak is the peak");
    // A window after the peak's plateau: the page must find the window's own peak.
    let plateau_end = marks.iter().rposition(|&m| m == full_peak).unwrap();
    assert!(
        plateau_end + 1 < marks.len(),
        "the fixture frees memory after its peak"
    );
    let window = (plateau_end + 1, marks.len() - 1);
    let (window_peak_snapshot, window_peak) = peak_of(&marks, window.0, window.1);
    assert!(window_peak < full_peak);
    let samples = our_payload(&dir.join("capture_temporal.html"))["memory"]["time"]
        .as_array()
        .unwrap()
        .len();
    json!({
        "capture": {
            "peak_bytes": peak,
            "zoom": { "function": "phase_peak", "bytes": function_bytes(&merged, "phase_peak") },
            "search": { "term": "worker_buffers", "bytes": function_bytes(&merged, "worker_buffers") },
            "threads": threads,
            "temporal": {
                "snapshots": samples + 1,
                "full_peak_bytes": full_peak,
                "window": [window.0, window.1],
                "window_peak_bytes": window_peak,
                "window_peak_snapshot": window_peak_snapshot,
            },
        }
    })
}

#[test]
fn a_real_capture_s_flame_graph_works_in_headless_chromium() {
    let Some(browser) = Browser::find() else {
        return;
    };
    let out = fresh_output_dir("html-capture-tests");
    let reference = out.join("memray-1.20");
    std::fs::create_dir_all(&reference).unwrap();
    let script = fixtures().join("flamegraph").join("two_threads.py");
    let capture = record_with_reference(&out, "two_threads", &[], &[], &script);

    let memray = reference_memray().memray;
    for (name, flags) in [
        ("merged", &[][..]),
        ("split", &["--split-threads"]),
        ("temporal", &["--temporal"]),
    ] {
        make_page(
            &memray_bin(),
            &out.join(format!("capture_{name}.html")),
            flags,
            &capture,
        );
        make_page(
            &memray,
            &reference.join(format!("{name}.html")),
            flags,
            &capture,
        );
    }
    std::fs::rename(
        out.join("capture_merged.html"),
        out.join("capture_flamegraph.html"),
    )
    .unwrap();
    let expect = expectations(&out, &reference);
    std::fs::write(out.join("expectations.json"), expect.to_string()).unwrap();

    browser.check_pages(&out);
}
