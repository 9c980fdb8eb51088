//! `memray stats`, `summary`, `transform`, `tree` and `diff` of our binary
//! against memray 1.20 on captures memray itself recorded from
//! tests/fixtures/analysis/allocate.py (with and without `--native`: hybrid
//! stacks in every report of a capture with native traces).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use memray_tests::captures::record_with_reference;
use memray_tests::memray_tree::whole_tree;
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
    let cases: [(&PathBuf, &[&str]); 7] = [
        (&c.plain, &[]),
        (&c.native, &[]),
        (&c.native, &["--temporary-allocations"]),
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
            "summary {flags:?} of {}",
            capture.display()
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
        (&c.native, &[&[][..], &["--leaks"]][..]),
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

/// The part of pprof's `Profile` (github.com/google/pprof, profile.proto)
/// the check reads, decoded by prost.
mod pprof {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Profile {
        #[prost(message, repeated, tag = "1")]
        pub sample_type: Vec<ValueType>,
        #[prost(message, repeated, tag = "2")]
        pub sample: Vec<Sample>,
        #[prost(message, repeated, tag = "4")]
        pub location: Vec<Location>,
        #[prost(message, repeated, tag = "5")]
        pub function: Vec<Function>,
        #[prost(string, repeated, tag = "6")]
        pub string_table: Vec<String>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ValueType {
        #[prost(int64, tag = "1")]
        pub r#type: i64,
        #[prost(int64, tag = "2")]
        pub unit: i64,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        #[prost(uint64, repeated, tag = "1")]
        pub location_id: Vec<u64>,
        #[prost(int64, repeated, tag = "2")]
        pub value: Vec<i64>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Location {
        #[prost(uint64, tag = "1")]
        pub id: u64,
        #[prost(message, repeated, tag = "4")]
        pub line: Vec<Line>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Line {
        #[prost(uint64, tag = "1")]
        pub function_id: u64,
        #[prost(int64, tag = "2")]
        pub line: i64,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Function {
        #[prost(uint64, tag = "1")]
        pub id: u64,
        #[prost(int64, tag = "2")]
        pub name: i64,
        #[prost(int64, tag = "4")]
        pub filename: i64,
    }
}

/// A stack, innermost frame first: (function, file, line) per frame.
type Stack = Vec<(String, String, i64)>;

/// (allocations, bytes) per stack of the samples in our pprof profile.
fn pprof_samples(path: &Path) -> BTreeMap<Stack, (u64, u64)> {
    use prost::Message;
    use std::io::Read;

    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut bytes)
        .expect("a gzip stream");
    let profile = pprof::Profile::decode(bytes.as_slice()).expect("a pprof Profile");
    let string = |id: i64| profile.string_table[id as usize].clone();
    let types: Vec<(String, String)> = profile
        .sample_type
        .iter()
        .map(|t| (string(t.r#type), string(t.unit)))
        .collect();
    assert_eq!(
        types,
        [("allocations", "count"), ("space", "bytes")].map(|(t, u)| (t.to_owned(), u.to_owned()))
    );
    let function = |id: u64| {
        let f = profile
            .function
            .iter()
            .find(|f| f.id == id)
            .expect("a function");
        (string(f.name), string(f.filename))
    };
    let frame = |id: u64| {
        let location = profile
            .location
            .iter()
            .find(|l| l.id == id)
            .expect("a location");
        let [line] = location.line.as_slice() else {
            panic!("one line per location: {location:?}");
        };
        let (name, file) = function(line.function_id);
        (name, file, line.line)
    };
    let mut samples: BTreeMap<Stack, (u64, u64)> = BTreeMap::new();
    for sample in &profile.sample {
        let stack = sample.location_id.iter().map(|&id| frame(id)).collect();
        let [count, size] = sample.value.as_slice() else {
            panic!("two values per sample: {sample:?}");
        };
        let entry = samples.entry(stack).or_default();
        entry.0 += *count as u64;
        entry.1 += *size as u64;
    }
    samples
}

/// (allocations, bytes) per stack of the allocations memray 1.20's
/// FileReader finds at the peak of `capture`, threads merged; hybrid stacks
/// when the capture has native traces.
fn memray_peak_by_stack(capture: &Path) -> BTreeMap<Stack, (u64, u64)> {
    let script = "import sys, memray\n\
        reader = memray.FileReader(sys.argv[1])\n\
        native = reader.metadata.has_native_traces\n\
        for r in reader.get_high_watermark_allocation_records(merge_threads=True):\n\
        \x20   frames = r.hybrid_stack_trace() if native else r.stack_trace()\n\
        \x20   stack = '\\x1f'.join(f'{f}\\x1e{file}\\x1e{line}' for f, file, line in frames)\n\
        \x20   print(r.n_allocations, r.size, stack, sep='\\t')";
    let out = stdout_of(reference_memray().python, ["-c", script, s(capture)]);
    let mut peak: BTreeMap<Stack, (u64, u64)> = BTreeMap::new();
    for line in out.lines() {
        let mut fields = line.splitn(3, '\t');
        let (Some(count), Some(size), Some(stack)) = (fields.next(), fields.next(), fields.next())
        else {
            panic!("unexpected line: {line}");
        };
        let stack = stack
            .split('\x1f')
            .filter(|frame| !frame.is_empty())
            .map(|frame| {
                let parts: Vec<&str> = frame.split('\x1e').collect();
                (
                    parts[0].to_owned(),
                    parts[1].to_owned(),
                    parts[2].parse().unwrap(),
                )
            })
            .collect();
        let entry = peak.entry(stack).or_default();
        entry.0 += count.parse::<u64>().unwrap();
        entry.1 += size.parse::<u64>().unwrap();
    }
    peak
}

#[test]
fn pprof_samples_are_the_peak_by_stack() {
    let out = scratch("profile.pb.gz");
    for capture in [&captures().plain, &captures().native] {
        text(&ours(&[
            "transform",
            "pprof",
            "-f",
            "-o",
            s(&out),
            s(capture),
        ]));
        let samples = pprof_samples(&out);
        let peak = memray_peak_by_stack(capture);
        assert!(
            samples
                .keys()
                .flatten()
                .any(|(f, file, _)| f == "make_buffer" && file.ends_with("allocate.py")),
            "the peak's allocator is sampled: {samples:?}"
        );
        assert_eq!(samples, peak, "{}", capture.display());
    }
}

/// Our plain-text tree (`memray tree` piped), row by row: (depth, label up
/// to the function), as memray 1.20's tree reporter labels its nodes.
fn text_tree_rows(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .filter_map(|line| {
            let start = line.find(['📂', '📄'])?;
            let depth = line[..start].chars().count() / 4;
            let label = &line[start..];
            let head = label.split_once("  ").map_or(label, |(head, _)| head);
            Some((depth, head.to_owned()))
        })
        .collect()
}

/// The `Peak memory: … Allocations: …` line of our text tree.
fn text_tree_header(text: &str) -> &str {
    text.lines()
        .find(|l| l.starts_with("Peak memory: "))
        .expect("a metadata line")
}

#[test]
fn tree_text_is_memrays_tree() {
    let c = captures();
    for (capture, biggest) in [(&c.plain, 200), (&c.plain, 1), (&c.native, 200)] {
        let what = format!("tree -b {biggest} of {}", capture.display());
        let theirs = whole_tree(capture, biggest);
        let text = text(&ours(&["tree", "-b", &biggest.to_string(), s(capture)]));
        let rows = text_tree_rows(&text);
        let expected: Vec<(usize, String)> = theirs
            .nodes
            .iter()
            .map(|(depth, label, _)| (*depth, label.clone()))
            .collect();
        assert!(expected.len() > 3, "{what}: memray's tree: {expected:?}");
        assert_eq!(rows, expected, "{what}:\n{text}");
        assert_eq!(
            text_tree_header(&text),
            format!(
                "Peak memory: {}  Allocations: {}",
                theirs.root_size, theirs.root_allocations
            ),
            "{what}"
        );
        let elided = format!(
            "Only the top {biggest} allocation locations are shown; {} more ({}) are elided.",
            theirs.elided_locations, theirs.elided_size
        );
        assert_eq!(
            text.contains(&elided),
            theirs.elided_locations > 0,
            "{what}: {elided}\n{text}"
        );
    }
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
