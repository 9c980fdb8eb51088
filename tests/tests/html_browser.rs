//! The HTML reports in a real browser: memray-html's `sample_pages` example
//! writes flame graph, temporal, table and million-stack pages with the
//! figures they must show; `tests/browser/run.js` drives them through
//! headless Chromium (no network, no console errors, zoom, search, threads,
//! filters, inverted view, temporal window, jump to peak, views shared through
//! the URL hash, table sorting and filtering) and saves screenshots under
//! `target/html-report-tests/`.
//!
//! Needs `chromium` and `node` (skipped, and counted as skipped, when absent) and
//! `npm ci` run in tests/browser.

use std::path::Path;
use std::process::Command;

use memray_tests::browser::{fresh_output_dir, Browser};
use memray_tests::paths;

/// The million distinct stacks the issue asks the page to survive.
const BIG_STACKS: &str = "1000000";
const MAX_BIG_PAGE_BYTES: u64 = 50 * 1024 * 1024;
const MAX_BIG_LOAD_MS: u64 = 5_000;

fn write_sample_pages(dir: &Path) {
    let generator = paths::built_artifact("examples/sample_pages");
    let status = Command::new(&generator)
        .arg(dir)
        .args(["--big", BIG_STACKS])
        .status()
        .expect("run sample_pages");
    assert!(status.success(), "sample_pages failed: {status}");
}

#[test]
fn reports_work_in_headless_chromium() {
    let Some(browser) = Browser::find() else {
        return;
    };
    let dir = fresh_output_dir("html-report-tests");
    write_sample_pages(&dir);

    let big_page = std::fs::metadata(dir.join("big.html"))
        .expect("big.html")
        .len();
    eprintln!("million-stack page: {:.1} MB", big_page as f64 / 1e6);
    assert!(
        big_page < MAX_BIG_PAGE_BYTES,
        "big.html is {big_page} bytes"
    );

    let stdout = browser.check_pages(&dir);
    let report: serde_json::Value =
        serde_json::from_str(stdout.trim()).expect("run.js prints JSON");
    let load_ms = report["measurements"]["big"]["load_ms"]
        .as_u64()
        .expect("the big page's load time");
    assert!(
        load_ms < MAX_BIG_LOAD_MS,
        "the million-stack page took {load_ms} ms to open"
    );
}
