//! What a memray user meets around the reports, checked on real captures
//! recorded by memray 1.20: cut-off captures are said to be cut off by every
//! reporter, the leaks warning appears only where it applies, non-UTF-8 file
//! names work, OS errors and flag conflicts are worded as memray words them,
//! every memray command is here, and a report is written whole or
//! not at all.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use memray_tests::paths::{fixtures, memray_bin};
use memray_tests::reference::reference_memray;
use memray_tests::run::memray_in;
use memray_tests::small_disk::SmallDisk;

fn memray(dir: &Path, args: &[&str]) -> Output {
    memray_in(dir, args)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// memray 1.20 records `fixtures/analysis/many_allocations.py N` into `dir/name`.
fn record(dir: &Path, name: &str, flags: &[&str], allocations: u32) -> PathBuf {
    let capture = dir.join(name);
    let script = fixtures().join("analysis").join("many_allocations.py");
    let out = std::process::Command::new(reference_memray().memray)
        .args(["run", "-q", "-o"])
        .arg(&capture)
        .args(flags)
        .arg(script)
        .arg(allocations.to_string())
        .output()
        .expect("run the reference memray");
    assert!(out.status.success(), "memray run: {}", stderr(&out));
    capture
}

/// Every reporter, as `(arguments before the capture, whether it writes an HTML page)`.
const REPORTERS: &[(&[&str], bool)] = &[
    (&["stats"], false),
    (&["stats", "--json", "-f"], false),
    (&["summary"], false),
    (&["tree"], false),
    (&["transform", "csv", "-f"], false),
    (&["flamegraph", "-f"], true),
    (&["flamegraph", "-f", "--leaks"], true),
    (&["flamegraph", "-f", "--temporal"], true),
    (&["flamegraph", "-f", "--temporary-allocations"], true),
    (&["table", "-f"], true),
];

/// The HTML page a reporter wrote, named by memray's default.
fn page_of(dir: &Path, reporter: &str, capture: &str) -> String {
    let stem = capture.strip_suffix(".bin").unwrap();
    std::fs::read_to_string(dir.join(format!("memray-{reporter}-{stem}.html"))).unwrap()
}

#[test]
fn every_reporter_says_a_capture_was_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    for (name, flags) in [("plain.bin", &["--no-compress"][..]), ("lz4.bin", &[][..])] {
        let full = record(dir, name, flags, 100_000);
        let bytes = std::fs::read(&full).unwrap();
        let cut_name = format!("cut-{name}");
        std::fs::write(dir.join(&cut_name), &bytes[..bytes.len() * 2 / 3]).unwrap();
        let warning =
            format!("warning: {cut_name} ends without a trailer: the capture was cut off");
        for (args, html) in REPORTERS {
            for (capture, cut) in [(name, false), (cut_name.as_str(), true)] {
                let mut all = args.to_vec();
                all.push(capture);
                let out = memray(dir, &all);
                assert!(out.status.success(), "{all:?}: {}", stderr(&out));
                let said = stderr(&out);
                let expected = if cut {
                    format!("{warning}\n")
                } else {
                    String::new()
                };
                assert_eq!(said, expected, "{all:?}");
                if *html {
                    let page = page_of(dir, args[0], capture);
                    assert_eq!(page.contains("id=\"cut-off-warning\""), cut, "{all:?}");
                }
            }
        }
        let diff = memray(dir, &["diff", name, &cut_name]);
        assert!(diff.status.success(), "{}", stderr(&diff));
        assert_eq!(stderr(&diff), format!("{warning}\n"));
    }
}

#[test]
fn the_leaks_warning_appears_only_where_it_applies() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    record(dir, "pymalloc.bin", &[], 2_000);
    let sentence = "Report generated using <code>--leaks</code> with an arena allocator";
    for reporter in ["flamegraph", "table"] {
        assert!(memray(dir, &[reporter, "-f", "pymalloc.bin"])
            .status
            .success());
        let peak = page_of(dir, reporter, "pymalloc.bin");
        assert!(!peak.contains("pymalloc-warning") && !peak.contains("arena allocator"));
        assert!(memray(dir, &[reporter, "-f", "--leaks", "pymalloc.bin"])
            .status
            .success());
        let leaks = page_of(dir, reporter, "pymalloc.bin");
        assert!(leaks.contains(sentence) && leaks.contains("PYTHONMALLOC=malloc"));
    }
    record(dir, "traced.bin", &["--trace-python-allocators"], 2_000);
    assert!(memray(dir, &["flamegraph", "--leaks", "traced.bin"])
        .status
        .success());
    assert!(!page_of(dir, "flamegraph", "traced.bin").contains("arena allocator"));
}

#[test]
fn non_utf8_file_names_work_with_every_reporter() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let recorded = record(dir, "recorded.bin", &[], 2_000);
    let name = OsStr::from_bytes(b"out\xff.bin");
    std::fs::rename(recorded, dir.join(name)).unwrap();
    for (args, _) in REPORTERS {
        let mut all: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        all.push(name);
        let out = memray_in(dir, &all);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    for expected in [
        &b"memray-flamegraph-out\xff.html"[..],
        b"memray-table-out\xff.html",
        b"memray-csv-out\xff.csv",
        b"memray-stats-out\xff.bin.json",
    ] {
        assert!(
            dir.join(OsStr::from_bytes(expected)).is_file(),
            "{expected:?}"
        );
    }
    let out = memray_in(dir, [OsStr::new("diff"), name, name]);
    assert!(out.status.success(), "{}", stderr(&out));
    let parsed = std::process::Command::new(memray_bin())
        .args([OsStr::new("parse"), name])
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(parsed.status.success(), "{}", stderr(&parsed));
}

#[test]
fn os_errors_read_as_memray_words_them() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    record(dir, "capture.bin", &[], 2_000);
    for args in [
        &["flamegraph", "-o", "/doesn/t/exist.html", "capture.bin"][..],
        &[
            "transform",
            "csv",
            "-o",
            "/doesn/t/exist.html",
            "capture.bin",
        ],
        &[
            "stats",
            "--json",
            "-o",
            "/doesn/t/exist.html",
            "capture.bin",
        ],
    ] {
        let out = memray(dir, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(
            stderr(&out),
            "Cannot write /doesn/t/exist.html: No such file or directory\n",
            "{args:?}"
        );
    }
}

#[test]
fn conflicting_flags_are_refused_in_argparse_s_words() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    record(dir, "capture.bin", &[], 2_000);
    let leaks = ["--leaks"];
    let pairs: [(&[&str], &[&str]); 4] = [
        (&leaks, &["--temporary-allocations"]),
        (&["--temporary-allocations"], &leaks),
        (
            &["--temporary-allocation-threshold", "3"],
            &["--temporary-allocations"],
        ),
        (
            &["--temporary-allocations"],
            &["--temporary-allocation-threshold=2"],
        ),
    ];
    for reporter in [
        &["flamegraph"][..],
        &["table"],
        &["summary"],
        &["tree"],
        &["transform", "csv"],
    ] {
        for (first, second) in pairs {
            let takes_leaks = !matches!(reporter[0], "summary" | "tree");
            if !takes_leaks && (first == leaks || second == leaks) {
                continue;
            }
            let args: Vec<&str> = [reporter, first, second, &["capture.bin"]].concat();
            let ours = memray(dir, &args);
            let theirs = std::process::Command::new(reference_memray().memray)
                .args(&args)
                .current_dir(dir)
                .output()
                .unwrap();
            let last_line = |out: &Output| {
                stderr(out)
                    .trim_end()
                    .lines()
                    .last()
                    .unwrap_or("")
                    .to_owned()
            };
            assert_eq!(
                stderr(&ours).lines().count(),
                1,
                "{args:?}: {}",
                stderr(&ours)
            );
            assert_eq!(last_line(&ours), last_line(&theirs), "{args:?}");
            assert_eq!(ours.status.code(), Some(2), "{args:?}");
            assert_eq!(theirs.status.code(), Some(2), "{args:?}");
        }
    }
}

/// Every subcommand of memray 1.20 is here, and none is a placeholder.
#[test]
fn every_memray_command_is_here() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let help = String::from_utf8(memray(dir, &["--help"]).stdout).unwrap();
    let memrays = [
        "run",
        "flamegraph",
        "table",
        "live",
        "tree",
        "parse",
        "summary",
        "stats",
        "transform",
        "attach",
        "detach",
    ];
    for command in memrays {
        let line = help
            .lines()
            .find(|line| line.trim_start().starts_with(&format!("{command} ")))
            .unwrap_or_else(|| panic!("{command} is missing from:\n{help}"));
        assert!(!line.contains("not available"), "{line}");
    }
}

#[test]
fn a_report_is_written_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    record(dir, "capture.bin", &[], 2_000);

    // Written where there is room, with the mode a plain create gives.
    assert!(memray(dir, &["flamegraph", "capture.bin"]).status.success());
    let page = dir.join("memray-flamegraph-capture.html");
    let plain = dir.join("plain");
    std::fs::write(&plain, "").unwrap();
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode();
    assert_eq!(mode(&page), mode(&plain));
    assert!(memray(dir, &["table", "capture.bin"]).status.success());
    let table = dir.join("memray-table-capture.html");
    for page in [&page, &table] {
        assert!(
            std::fs::metadata(page).unwrap().len() > 8 << 10,
            "the page outgrows the disk"
        );
    }

    // 8 KiB: smaller than any page.
    let Some(disk) = SmallDisk::mount("8k") else {
        return;
    };
    let target = disk.path().join("page.html");
    for reporter in ["flamegraph", "table"] {
        let out = memray_in(
            dir,
            [
                OsStr::new(reporter),
                OsStr::new("-o"),
                target.as_os_str(),
                OsStr::new("capture.bin"),
            ],
        );
        let left: Vec<_> = std::fs::read_dir(disk.path()).unwrap().collect();
        assert!(left.is_empty(), "{reporter} left {left:?} on the full disk");
        assert_eq!(out.status.code(), Some(1), "{reporter}");
        assert_eq!(
            stderr(&out),
            format!(
                "Cannot write {}: No space left on device\n",
                target.display()
            )
        );
    }
}
