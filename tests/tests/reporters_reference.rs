//! `memray stats`, `summary`, `transform`, `tree` and `diff` of our binary
//! against memray 1.20 on captures memray itself recorded from
//! tests/fixtures/analysis/allocate.py.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use memray_tests::captures::record_with_reference;
use memray_tests::paths::{fixtures, memray_bin};
use memray_tests::reference::reference_memray;
use memray_tests::run::{output, stdout_of};
use serde_json::Value;

struct Captures {
    dir: tempfile::TempDir,
    plain: PathBuf,
    aggregated: PathBuf,
    native: PathBuf,
    pyalloc: PathBuf,
    bigger_leak: PathBuf,
}

fn captures() -> &'static Captures {
    static CAPTURES: OnceLock<Captures> = OnceLock::new();
    CAPTURES.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = fixtures().join("analysis/allocate.py");
        let record = |name, flags: &[&str], env: &[(&str, &str)]| {
            record_with_reference(dir.path(), name, flags, env, &script)
        };
        Captures {
            plain: record("plain", &[], &[]),
            aggregated: record("aggregated", &["--aggregate"], &[]),
            native: record("native", &["--native"], &[]),
            pyalloc: record("pyalloc", &["--trace-python-allocators"], &[]),
            bigger_leak: record("bigger-leak", &[], &[("ALLOCATE_LEAK_SCALE", "3")]),
            dir,
        }
    })
}

fn ours(args: &[&str]) -> Output {
    output(memray_bin(), args)
}

fn reference(args: &[&str]) -> Output {
    // Wide enough that rich does not wrap table cells.
    std::process::Command::new(reference_memray().memray)
        .args(args)
        .env("COLUMNS", "1000")
        .output()
        .expect("run the reference memray")
}

fn text(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8")
}

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn scratch(name: &str) -> PathBuf {
    captures().dir.path().join(name)
}

#[test]
fn stats_json_is_byte_identical() {
    let c = captures();
    for (name, capture) in [
        ("plain", &c.plain),
        ("native", &c.native),
        ("pyalloc", &c.pyalloc),
    ] {
        let (mine, theirs) = (
            scratch(&format!("{name}-ours.json")),
            scratch(&format!("{name}-ref.json")),
        );
        let wrote = text(&ours(&[
            "stats",
            "--json",
            "-f",
            "-o",
            s(&mine),
            s(capture),
        ]));
        assert_eq!(wrote.trim(), format!("Wrote {}", mine.display()));
        text(&reference(&[
            "stats",
            "--json",
            "-f",
            "-o",
            s(&theirs),
            s(capture),
        ]));
        assert_eq!(
            std::fs::read_to_string(&mine).unwrap(),
            std::fs::read_to_string(&theirs).unwrap(),
            "stats --json of the {name} capture"
        );
    }
}

#[test]
fn stats_json_refuses_to_overwrite_without_force() {
    let target = scratch("exists.json");
    std::fs::write(&target, "keep").unwrap();
    let out = ours(&["stats", "--json", "-o", s(&target), s(&captures().plain)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("will not overwrite without --force"));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
}

#[test]
fn stats_text_is_byte_identical() {
    let capture = s(&captures().plain);
    for n in ["5", "2"] {
        assert_eq!(
            text(&ours(&["stats", "-n", n, capture])),
            text(&reference(&["stats", "-n", n, capture]))
        );
    }
}

/// The cells of each table row, whitespace-trimmed.
fn table_rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .filter(|l| l.starts_with('│'))
        .map(|l| {
            l.split('│')
                .map(|c| c.trim().to_owned())
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect()
}

#[test]
fn summary_rows_match() {
    let c = captures();
    let cases: [(&PathBuf, &[&str]); 5] = [
        (&c.plain, &[]),
        (&c.plain, &["-s", "3", "-r", "40"]),
        (&c.plain, &["--temporary-allocations", "-s", "5"]),
        (&c.aggregated, &["-r", "30"]),
        (&c.pyalloc, &["--temporary-allocation-threshold", "0"]),
    ];
    for (capture, flags) in cases {
        let mut args = vec!["summary"];
        args.extend_from_slice(flags);
        args.push(s(capture));
        let mine = table_rows(&text(&ours(&args)));
        assert!(!mine.is_empty());
        assert_eq!(
            mine,
            table_rows(&text(&reference(&args))),
            "summary {flags:?}"
        );
    }
}

/// memray's csv minus the allocator column: for a location that mixes
/// allocators, memray's representative record depends on its hash-map order.
fn csv_without_allocator(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .split("\r\n")
        .map(|line| {
            line.split_once(',')
                .map_or(line, |(_, rest)| rest)
                .to_owned()
        })
        .collect()
}

fn without_exporter(path: &Path) -> Value {
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    doc.as_object_mut().unwrap().remove("exporter");
    doc
}

#[test]
fn transform_outputs_match() {
    let c = captures();
    for (capture, modes) in [
        (
            &c.plain,
            &[&[][..], &["--leaks"], &["--temporary-allocations"]][..],
        ),
        (&c.pyalloc, &[&[][..], &["--leaks"]][..]),
        (&c.aggregated, &[&[][..], &["--leaks"]][..]),
    ] {
        for mode in modes {
            for format in ["csv", "gprof2dot", "speedscope"] {
                let (mine, theirs) = (scratch("t-ours"), scratch("t-ref"));
                let run = |out: &Path| {
                    let mut args = vec!["transform", format, "-f", "-o", s(out)];
                    args.extend_from_slice(mode);
                    args.push(s(capture));
                    args.into_iter().map(str::to_owned).collect::<Vec<_>>()
                };
                text(&ours(
                    &run(&mine).iter().map(String::as_str).collect::<Vec<_>>(),
                ));
                text(&reference(
                    &run(&theirs).iter().map(String::as_str).collect::<Vec<_>>(),
                ));
                let what = format!("{format} {mode:?} of {}", capture.display());
                match format {
                    "csv" => assert_eq!(
                        csv_without_allocator(&mine),
                        csv_without_allocator(&theirs),
                        "{what}"
                    ),
                    "gprof2dot" => assert_eq!(
                        std::fs::read(&mine).unwrap(),
                        std::fs::read(&theirs).unwrap(),
                        "{what}"
                    ),
                    _ => assert_eq!(without_exporter(&mine), without_exporter(&theirs), "{what}"),
                }
            }
        }
    }
}

#[test]
fn transform_default_output_name_follows_memray() {
    let capture = scratch("memray-named.bin");
    std::fs::copy(&captures().plain, &capture).unwrap();
    let out = text(&ours(&["transform", "csv", s(&capture)]));
    let expected = scratch("memray-csv-named.csv");
    assert_eq!(out.trim(), format!("Wrote {}", expected.display()));
    assert!(expected.exists());
}

#[test]
fn pprof_is_a_gzipped_profile_naming_the_allocating_functions() {
    let out = scratch("profile.pb.gz");
    text(&ours(&[
        "transform",
        "pprof",
        "-f",
        "-o",
        s(&out),
        s(&captures().plain),
    ]));
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "gzip magic");
    let unzipped = output("gzip", ["-dc", s(&out)]);
    assert!(unzipped.status.success());
    let profile = String::from_utf8_lossy(&unzipped.stdout);
    for needle in [
        "make_buffer",
        "allocate.py",
        "space",
        "bytes",
        "allocations",
    ] {
        assert!(profile.contains(needle), "{needle} is in the string table");
    }
}

#[test]
fn tree_shows_the_peak_as_a_call_tree() {
    let tree = text(&ours(&["tree", s(&captures().plain)]));
    let stats: Value = {
        let json = scratch("tree-stats.json");
        text(&ours(&[
            "stats",
            "--json",
            "-f",
            "-o",
            s(&json),
            s(&captures().plain),
        ]));
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap()
    };
    let peak = stats["metadata"]["peak_memory"].as_u64().unwrap();
    let root = tree
        .lines()
        .find(|l| l.contains("<ROOT>"))
        .expect("a root line");
    assert!(root.contains(&memray_reporters_size(peak)), "{root}");
    let leaf = tree
        .lines()
        .find(|l| l.contains("make_buffer"))
        .expect("the peak's allocator");
    assert!(leaf.contains("allocate.py:"));
    let limited = text(&ours(&["tree", "-b", "1", s(&captures().plain)]));
    assert!(limited.contains("Only the top 1 allocation locations are shown"));
}

/// memray's size_fmt, computed independently for the tree check.
fn memray_reporters_size(bytes: u64) -> String {
    let python = reference_memray().python;
    stdout_of(
        python,
        [
            "-c",
            &format!("from memray._memray import size_fmt; print(size_fmt({bytes}))"),
        ],
    )
    .trim()
    .to_owned()
}

#[test]
fn diff_reports_the_grown_leak() {
    let c = captures();
    let out = text(&ours(&["diff", s(&c.plain), s(&c.bigger_leak)]));
    let leaks = out.split("Leaks:").nth(1).expect("a leaks section");
    let row = leaks
        .lines()
        .find(|l| l.contains("make_buffer at"))
        .expect("the leaking location is listed");
    // 123456 bytes leaked, then three times as many.
    assert!(row.contains("+246.912kB"), "{row}");
    let same = text(&ours(&["diff", s(&c.plain), s(&c.plain)]));
    assert_eq!(same.matches("No location changed.").count(), 2, "{same}");
}

#[test]
fn aggregated_captures_are_refused_where_memray_refuses() {
    let agg = s(&captures().aggregated);
    for (args, message) in [
        (
            vec!["stats", agg],
            "Can't compute statistics using a pre-aggregated capture file.",
        ),
        (
            vec!["summary", "--temporary-allocations", agg],
            "Can't find temporary allocations using a pre-aggregated capture file.",
        ),
    ] {
        let out = ours(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), format!("{message}\n"));
    }
}

#[test]
fn bad_input_fails_as_memray_words_it() {
    let garbage = scratch("garbage.bin");
    std::fs::write(&garbage, b"definitely not a capture").unwrap();
    for command in [
        &["stats"][..],
        &["summary"],
        &["tree"],
        &["transform", "csv"],
    ] {
        let mut args = command.to_vec();
        args.push("nosuchfile.bin");
        let out = ours(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "No such file: nosuchfile.bin\n"
        );

        // memray's two lines: "Failed to … <path>" then "Reason: …", where
        // only the reason's wording is ours.
        args.pop();
        args.push(s(&garbage));
        let (mine, theirs) = (ours(&args), reference(&args));
        assert_eq!(mine.status.code(), Some(1), "{args:?}");
        assert_eq!(theirs.status.code(), Some(1), "{args:?}");
        let (mine, theirs) = (
            String::from_utf8_lossy(&mine.stderr),
            String::from_utf8_lossy(&theirs.stderr),
        );
        let first_line = |text: &str| text.lines().next().unwrap_or_default().to_owned();
        assert_eq!(first_line(&mine), first_line(&theirs), "{args:?}");
        assert_eq!(mine.lines().count(), 2, "{args:?}: {mine}");
        assert!(
            mine.lines().nth(1).unwrap().starts_with("Reason: "),
            "{mine}"
        );
    }
    for (flags, message) in [
        (
            ["--leaks", "--temporary-allocations"],
            "argument --temporary-allocations: not allowed with argument --leaks",
        ),
        (
            ["--temporary-allocations", "--leaks"],
            "argument --leaks: not allowed with argument --temporary-allocations",
        ),
    ] {
        let mut args = vec!["transform", "csv"];
        args.extend(flags);
        args.push(s(&captures().plain));
        let out = ours(&args);
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("memray transform: error: {message}\n")
        );
        let theirs = String::from_utf8_lossy(&reference(&args).stderr).into_owned();
        assert!(theirs.ends_with(&format!("{message}\n")), "{theirs}");
    }
    let out = ours(&["transform", "nosuchformat", s(&captures().plain)]);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Format not supported: nosuchformat\n"
    );
}
