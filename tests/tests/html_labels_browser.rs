//! Flame graph boxes say what memray's say: the source line that ran, or
//! `function at file:line` when sources are confidential. Read in headless
//! Chromium (`tests/browser/run.js`, suite `labels`) from our pages of a real
//! capture recorded by memray 1.20, with memray's own pages of the same
//! capture giving the expected labels and the header's peak in memray's units.
//!
//! Needs `chromium` and `node` (skipped with a message when absent) and
//! `npm ci` run in tests/browser.

use std::path::Path;

use memray_tests::browser::{fresh_output_dir, Browser};
use memray_tests::captures::record_with_reference;
use memray_tests::html_pages::{memray_packed_data, unescape_html};
use memray_tests::paths::{fixtures, memray_bin};
use memray_tests::reference::reference_memray;
use memray_tests::run::stdout_of;
use serde_json::{json, Value};

/// The function whose box the test reads: it allocates at one source line.
const FUNCTION: &str = "build";

/// The name memray gives the first node of `function` (its boxes' text; the
/// SVG drops the source line's indentation and newline).
fn memray_label(page: &Path, function: &str) -> String {
    let packed = memray_packed_data(page);
    let text = |id: &Value| {
        packed["strings"][id.as_u64().unwrap() as usize]
            .as_str()
            .unwrap()
    };
    let nodes = &packed["nodes"];
    let node = nodes["function"]
        .as_array()
        .unwrap()
        .iter()
        .position(|id| unescape_html(text(id)) == function)
        .unwrap_or_else(|| panic!("memray's page has no node for {function}"));
    unescape_html(text(&nodes["name"][node])).trim().to_owned()
}

/// The peak as memray's stats panel shows it ("1.2 MB").
fn memray_peak_text(page: &Path) -> String {
    let html = std::fs::read_to_string(page).unwrap();
    let start = html
        .find("Peak memory usage: ")
        .expect("memray's stats panel")
        + 19;
    let end = html[start..].find("<br>").unwrap() + start;
    html[start..end].trim().to_owned()
}

#[test]
fn boxes_are_labelled_with_the_source_line_as_memray_does() {
    let Some(browser) = Browser::find() else {
        return;
    };
    let dir = fresh_output_dir("html-label-tests");
    let script = fixtures().join("flamegraph").join("labels.py");
    let capture = record_with_reference(&dir, "labels", &[], &[], &script);
    let memray = reference_memray().memray;
    let reference = dir.join("reference");
    std::fs::create_dir_all(&reference).unwrap();

    let mut pages = Vec::new();
    for (name, flags) in [
        ("labels.html", &[][..]),
        ("confidential.html", &["--confidential-files", "all"][..]),
    ] {
        let theirs = reference.join(name);
        for (program, page) in [(&memray, &theirs), (&memray_bin(), &dir.join(name))] {
            let page: &Path = page;
            let output = [
                Path::new("flamegraph"),
                Path::new("-f"),
                Path::new("-o"),
                page,
            ];
            let flags = flags.iter().map(Path::new);
            stdout_of(
                program,
                output.into_iter().chain(flags).chain([capture.as_path()]),
            );
        }
        pages.push(json!({
            "file": name,
            "function": FUNCTION,
            "label": memray_label(&theirs, FUNCTION),
        }));
    }
    // The labels the test expects are the ones a user must see.
    assert_eq!(pages[0]["label"], "s = json.dumps(doc)");
    let confidential = pages[1]["label"].as_str().unwrap();
    assert!(
        confidential.starts_with("build at ") && confidential.contains("labels.py:"),
        "{confidential}"
    );
    let expectations = json!({
        "labels": {
            "pages": pages,
            "peak_text": memray_peak_text(&reference.join("labels.html")),
        }
    });
    std::fs::write(
        dir.join("expectations.json"),
        serde_json::to_string_pretty(&expectations).unwrap(),
    )
    .unwrap();
    browser.check_pages(&dir);
}
