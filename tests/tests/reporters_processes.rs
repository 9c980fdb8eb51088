//! Reports over several processes: a real `memray run --follow-fork` of a
//! fork pool (a parent and two workers: `out.bin`, `out.bin.<pid>`), given
//! as a directory and as a list of files. Each process's figures must be
//! the ones its own capture's report gives, the totals their sum, and the
//! peak the peak of the summed heap over time, computed independently here
//! from memray 1.20's `FileReader.get_memory_snapshots()`. The flame graph
//! page is checked in Chromium.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use memray_tests::browser::{fresh_output_dir, Browser};
use memray_tests::html_pages::our_payload;
use memray_tests::interpreters::reference_python;
use memray_tests::paths::{fixtures, memray_bin};
use memray_tests::reference::reference_memray;
use memray_tests::run::{memray_in, stdout_of};
use serde_json::{json, Value};

/// The fork pool's captures, recorded once for every test of this binary.
struct Pool {
    dir: tempfile::TempDir,
    /// The capture files, by name.
    captures: Vec<PathBuf>,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let captures_dir = dir.path().join("captures");
        std::fs::create_dir(&captures_dir).unwrap();
        let script = fixtures().join("processes").join("fork_pool.py");
        let python = reference_python().path;
        stdout_of(
            memray_bin(),
            [
                "run".as_ref(),
                "-q".as_ref(),
                "--follow-fork".as_ref(),
                "--python".as_ref(),
                python.as_os_str(),
                "-o".as_ref(),
                captures_dir.join("out.bin").as_os_str(),
                script.as_os_str(),
            ],
        );
        let mut captures: Vec<PathBuf> = std::fs::read_dir(&captures_dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        captures.sort();
        assert_eq!(
            captures.len(),
            3,
            "the parent and two workers: {captures:?}"
        );
        Pool { dir, captures }
    })
}

impl Pool {
    fn captures_dir(&self) -> PathBuf {
        self.dir.path().join("captures")
    }

    /// `memray ARGS… <the captures>` in a fresh directory, given as the
    /// directory or as the files.
    fn report(&self, args: &[&str], as_directory: bool) -> (Output, tempfile::TempDir) {
        let cwd = tempfile::tempdir().unwrap();
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        if as_directory {
            all.push(self.captures_dir().display().to_string());
        } else {
            all.extend(self.captures.iter().map(|c| c.display().to_string()));
        }
        let out = memray_in(cwd.path(), &all);
        assert!(
            out.status.success(),
            "memray {all:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (out, cwd)
    }

    /// `memray ARGS… capture` for one capture.
    fn own(&self, args: &[&str], capture: &Path) -> (Output, tempfile::TempDir) {
        let cwd = tempfile::tempdir().unwrap();
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.push(capture.display().to_string());
        let out = memray_in(cwd.path(), &all);
        assert!(out.status.success(), "memray {all:?}");
        (out, cwd)
    }

    /// The peak of the processes' summed heap, from memray 1.20's reader (a
    /// process counts with its latest snapshot from its first snapshot to
    /// its last), and as memray's `size_fmt` writes it.
    fn reference_peak_of_sum(&self) -> (u64, String) {
        let program = r#"
import sys
from memray import FileReader
from memray._memray import size_fmt
timelines = []
for path in sys.argv[1:]:
    timelines.append([(s.time, s.heap) for s in FileReader(path).get_memory_snapshots()])
peak = 0
for t in sorted({time for timeline in timelines for time, _ in timeline}):
    total = 0
    for timeline in timelines:
        if timeline and timeline[0][0] <= t <= timeline[-1][0]:
            total += [heap for time, heap in timeline if time <= t][-1]
    peak = max(peak, total)
print(peak, size_fmt(peak))
"#;
        let mut args = vec!["-c".to_owned(), program.to_owned()];
        args.extend(self.captures.iter().map(|c| c.display().to_string()));
        let printed = stdout_of(reference_memray().python, &args);
        let (bytes, text) = printed.trim().split_once(' ').unwrap();
        (bytes.parse().unwrap(), text.to_owned())
    }
}

fn text(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn json_file(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Each capture's own `memray stats --json` document, by capture path.
fn own_stats(pool: &Pool) -> Vec<(PathBuf, Value)> {
    pool.captures
        .iter()
        .map(|capture| {
            let (_, cwd) = pool.own(&["stats", "--json", "-o", "own.json"], capture);
            (capture.clone(), json_file(&cwd.path().join("own.json")))
        })
        .collect()
}

#[test]
fn stats_show_each_process_as_its_own_capture_and_the_peak_of_the_sum() {
    let pool = pool();
    let own = own_stats(pool);
    let (peak_of_sum, peak_of_sum_text) = pool.reference_peak_of_sum();
    let mut documents = Vec::new();
    for as_directory in [true, false] {
        let (_, cwd) = pool.report(&["stats", "--json", "-o", "all.json"], as_directory);
        documents.push(json_file(&cwd.path().join("all.json")));
    }
    assert_eq!(documents[0], documents[1], "directory and file list agree");
    let all = &documents[0];
    let processes = all["processes"].as_array().unwrap();
    assert_eq!(processes.len(), 3);
    for (capture, own) in &own {
        let process = processes
            .iter()
            .find(|p| p["capture"].as_str() == Some(capture.to_str().unwrap()))
            .unwrap_or_else(|| panic!("{} is in the report", capture.display()));
        assert_eq!(&process["stats"], own, "{}", capture.display());
        let pid = own["metadata"]["pid"].as_i64().unwrap();
        assert!(process["process"]
            .as_str()
            .unwrap()
            .starts_with(&format!("pid {pid}: ")));
    }
    let sum = |field: &str, of: &dyn Fn(&Value) -> &Value| -> u64 {
        own.iter()
            .map(|(_, o)| of(o)[field].as_u64().unwrap())
            .sum()
    };
    let total = &all["total"];
    assert_eq!(
        total["total_num_allocations"],
        json!(sum("total_num_allocations", &|o| o))
    );
    assert_eq!(
        total["total_bytes_allocated"],
        json!(sum("total_bytes_allocated", &|o| o))
    );
    let sum_of_peaks = sum("peak_memory", &|o| &o["metadata"]);
    assert_eq!(total["sum_of_peak_memory"], json!(sum_of_peaks));
    assert_eq!(total["peak_memory"], json!(peak_of_sum));
    assert!(peak_of_sum <= sum_of_peaks);
    // The workers hold their memory at the same time as the parent.
    let largest_own_peak = own
        .iter()
        .map(|(_, o)| o["metadata"]["peak_memory"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(peak_of_sum > largest_own_peak);

    // The text: each process's row holds its own report's figures.
    let (out, _) = pool.report(&["stats"], true);
    let report = text(&out);
    for (capture, own) in &own {
        let pid = own["metadata"]["pid"].as_i64().unwrap();
        let row = report
            .lines()
            .find(|line| line.contains(&format!("pid {pid}: ")))
            .unwrap_or_else(|| panic!("a row for pid {pid} in:\n{report}"));
        let (own_text, _) = pool.own(&["stats"], capture);
        let own_text = text(&own_text);
        for heading in [
            "Total allocations:",
            "Total memory allocated:",
            "Peak memory usage:",
        ] {
            let figure = figure_under(&own_text, heading);
            assert!(row.contains(&format!(" {figure} ")), "{figure} in {row}");
        }
    }
    let total_row = report
        .lines()
        .find(|line| line.contains("All 3 processes"))
        .unwrap();
    assert!(total_row.contains(&format!(" {peak_of_sum_text} ")));
    assert_eq!(
        figure_under(&report, "Peak memory usage of all processes together:"),
        peak_of_sum_text
    );
}

/// The tab-indented figure on the line after `heading` in `memray stats` text.
fn figure_under(report: &str, heading: &str) -> String {
    let mut lines = report.lines();
    lines
        .find(|line| line.ends_with(heading))
        .unwrap_or_else(|| panic!("{heading} in:\n{report}"));
    lines.next().unwrap().trim().to_owned()
}

#[test]
fn summaries_hold_each_process_s_own_table_and_the_total() {
    let pool = pool();
    let (_, peak_of_sum_text) = pool.reference_peak_of_sum();
    let (out, _) = pool.report(&["summary"], true);
    let report = text(&out);
    let (listed, _) = pool.report(&["summary"], false);
    assert_eq!(text(&listed), report, "directory and file list agree");
    for capture in &pool.captures {
        let (own, _) = pool.own(&["summary"], capture);
        let own = text(&own);
        assert!(
            report.contains(&own),
            "{}'s own summary is in the report:\n{own}\n---\n{report}",
            capture.display()
        );
    }
    assert!(report.contains("All 3 processes"));
    assert!(report.contains(&format!(
        "Peak memory usage of all processes together: {peak_of_sum_text} "
    )));
}

/// Bytes of each depth-1 node (a process) of a flame graph payload, by name.
fn process_roots(payload: &Value) -> Vec<(String, u64)> {
    let nodes = &payload["nodes"];
    let function = |i: usize| {
        let frame = nodes["frame"][i].as_u64().unwrap() as usize;
        let string = payload["frames"]["function"][frame].as_u64().unwrap() as usize;
        payload["strings"][string].as_str().unwrap().to_owned()
    };
    let mut roots = Vec::new();
    for i in 1..nodes["frame"].as_array().unwrap().len() {
        if nodes["parent_gap"][i].as_u64().unwrap() as usize == i {
            roots.push((function(i), nodes["bytes"][i].as_u64().unwrap()));
        }
    }
    roots
}

/// Each capture's own flame graph root (its peak), by pid.
fn own_peaks(pool: &Pool) -> Vec<(i64, u64)> {
    pool.captures
        .iter()
        .map(|capture| {
            let (_, cwd) = pool.own(&["flamegraph", "-o", "own.html"], capture);
            let payload = our_payload(&cwd.path().join("own.html"));
            let bytes = payload["nodes"]["bytes"][0].as_u64().unwrap();
            (payload["meta"]["pid"].as_i64().unwrap(), bytes)
        })
        .collect()
}

#[test]
fn flame_graphs_and_tables_put_each_process_at_its_own_peak() {
    let pool = pool();
    let (peak_of_sum, _) = pool.reference_peak_of_sum();
    let own = own_peaks(pool);
    let mut payloads = Vec::new();
    for as_directory in [true, false] {
        let (_, cwd) = pool.report(&["flamegraph", "-o", "all.html"], as_directory);
        let mut payload = our_payload(&cwd.path().join("all.html"));
        payload["meta"]["capture_name"] = Value::Null;
        payloads.push(payload);
    }
    assert_eq!(payloads[0], payloads[1], "directory and file list agree");
    let payload = &payloads[0];
    let roots = process_roots(payload);
    assert_eq!(roots.len(), 3, "one root per process: {roots:?}");
    for (pid, peak) in &own {
        let (_, bytes) = roots
            .iter()
            .find(|(name, _)| name.starts_with(&format!("pid {pid}: ")))
            .unwrap_or_else(|| panic!("a root for pid {pid} in {roots:?}"));
        assert_eq!(bytes, peak, "pid {pid}");
    }
    let sum_of_peaks: u64 = own.iter().map(|(_, peak)| peak).sum();
    assert_eq!(payload["nodes"]["bytes"][0], json!(sum_of_peaks));
    assert_eq!(payload["meta"]["peak_memory"], json!(peak_of_sum));
    let heap: Vec<u64> = serde_json::from_value(payload["memory"]["heap"].clone()).unwrap();
    assert_eq!(heap.iter().max(), Some(&peak_of_sum));
    let lines = payload["memory"]["processes"].as_array().unwrap();
    let names: Vec<&str> = lines.iter().map(|l| l["name"].as_str().unwrap()).collect();
    let root_names: Vec<&str> = roots.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, root_names);

    let (_, cwd) = pool.report(&["table", "-o", "all.html"], true);
    let table = our_payload(&cwd.path().join("all.html"));
    for (pid, peak) in &own {
        let prefix = format!("pid {pid}: ");
        let rows_bytes: u64 = (0..table["size"].as_array().unwrap().len())
            .filter(|&i| {
                let string = table["process"][i].as_u64().unwrap() as usize;
                table["strings"][string]
                    .as_str()
                    .unwrap()
                    .starts_with(&prefix)
            })
            .map(|i| table["size"][i].as_u64().unwrap())
            .sum();
        assert_eq!(rows_bytes, *peak, "table rows of pid {pid}");
    }
    assert_eq!(table["meta"]["peak_memory"], json!(peak_of_sum));
}

#[test]
fn what_makes_no_sense_across_processes_is_refused_in_one_line() {
    let pool = pool();
    let cwd = tempfile::tempdir().unwrap();
    let dir = pool.captures_dir();
    let refused = |args: &[&str], code: i32, message: &str| {
        let out = memray_in(cwd.path(), args);
        assert_eq!(out.status.code(), Some(code), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim_end(), message, "{args:?}");
        assert!(out.stdout.is_empty());
    };
    refused(
        &["flamegraph", "--temporal", dir.to_str().unwrap()],
        2,
        "memray flamegraph: error: --temporal shows one process: give one capture file",
    );
    let empty = cwd.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join("notes.txt"), "not a capture").unwrap();
    refused(
        &["stats", empty.to_str().unwrap()],
        1,
        &format!("No capture files in {}", empty.display()),
    );
    refused(
        &[
            "summary",
            pool.captures[0].to_str().unwrap(),
            empty.to_str().unwrap(),
        ],
        1,
        &format!(
            "{} is a directory: give one directory of captures, or capture files",
            empty.display()
        ),
    );
}

#[test]
fn the_processes_flame_graph_works_in_headless_chromium() {
    let Some(browser) = Browser::find() else {
        return;
    };
    let pool = pool();
    let out = fresh_output_dir("processes-browser-tests");
    stdout_of(
        memray_bin(),
        [
            "flamegraph",
            "-o",
            out.join("processes.html").to_str().unwrap(),
            pool.captures_dir().to_str().unwrap(),
        ],
    );
    let payload = our_payload(&out.join("processes.html"));
    let roots = process_roots(&payload);
    let expectations = json!({
        "processes": {
            "file": "processes.html",
            "processes": roots
                .iter()
                .map(|(name, bytes)| json!({ "name": name, "peak_bytes": bytes }))
                .collect::<Vec<_>>(),
            "sum_of_peaks": roots.iter().map(|(_, bytes)| bytes).sum::<u64>(),
            "peak_of_sum": pool.reference_peak_of_sum().0,
        }
    });
    std::fs::write(
        out.join("expectations.json"),
        serde_json::to_string_pretty(&expectations).unwrap(),
    )
    .unwrap();
    browser.check_pages(&out);
}

#[test]
fn default_outputs_are_named_after_the_directory_or_the_first_file() {
    let pool = pool();
    let cwd = tempfile::tempdir().unwrap();
    let dir = pool.captures_dir();
    let wrote = |args: &[&str], expected: &Path| {
        let out = memray_in(cwd.path(), args);
        assert!(out.status.success(), "{args:?}");
        assert_eq!(text(&out).trim(), format!("Wrote {}", expected.display()));
        assert!(expected.is_file());
    };
    wrote(
        &["flamegraph", dir.to_str().unwrap()],
        &pool.dir.path().join("memray-flamegraph-captures.html"),
    );
    let mut stats = vec!["stats", "--json"];
    stats.extend(pool.captures.iter().map(|c| c.to_str().unwrap()));
    // Written among the captures: a later report over the directory leaves it out.
    wrote(&stats, &dir.join("memray-stats-out-processes.json"));
    let (out, _) = pool.report(&["stats"], true);
    assert!(text(&out).contains("All 3 processes"));
}
