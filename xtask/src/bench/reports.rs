//! Every reporter, ours and memray 1.20's, on the two large captures: the
//! 51 M-record churn capture and a 100 M-record one of calls that allocate at
//! every depth (many FRAME_PUSH/POP records). Both are recorded once by
//! memray 1.20 with `--trace-python-allocators` and kept in the cache.

use std::ffi::OsString;
use std::path::Path;

use anyhow::{bail, Result};

use super::catalog::record;
use super::measure::BenchCommand;
use super::{Context, Variant};

/// A report: its label (what `--report` selects), its arguments before the
/// capture, and whether it writes a file (given with `-o`).
struct Report {
    label: &'static str,
    args: &'static [&'static str],
    writes_file: bool,
    /// memray 1.20 has it too, and it ends by itself: it has no `diff` and no
    /// pprof transform, and its `tree` is an interactive screen that waits
    /// for a key, even with nowhere to draw.
    in_memray: bool,
}

const fn report(label: &'static str, args: &'static [&'static str], writes_file: bool) -> Report {
    Report {
        label,
        args,
        writes_file,
        in_memray: true,
    }
}

const REPORTS: &[Report] = &[
    report("stats", &["stats"], false),
    report("summary", &["summary"], false),
    Report {
        in_memray: false,
        ..report("tree", &["tree"], false)
    },
    report("table", &["table"], true),
    report("flamegraph", &["flamegraph"], true),
    report("flamegraph --leaks", &["flamegraph", "--leaks"], true),
    report("flamegraph --temporal", &["flamegraph", "--temporal"], true),
    report(
        "flamegraph --temporary-allocations",
        &["flamegraph", "--temporary-allocations"],
        true,
    ),
    report("transform gprof2dot", &["transform", "gprof2dot"], true),
    report("transform csv", &["transform", "csv"], true),
    report("transform speedscope", &["transform", "speedscope"], true),
    Report {
        in_memray: false,
        ..report("transform pprof", &["transform", "pprof"], true)
    },
    report("parse", &["parse"], false),
    Report {
        in_memray: false,
        ..report("diff", &["diff"], false)
    },
];

/// A large capture: its label, cache file, workload and workload rounds.
struct BigCapture {
    label: &'static str,
    file: &'static str,
    workload: &'static str,
    rounds: &'static str,
}

const CAPTURES: [BigCapture; 2] = [
    BigCapture {
        label: "51M records",
        file: "alloc_churn-big.bin",
        workload: "alloc_churn.py",
        rounds: "720",
    },
    // ~49.8 k records per round: 2100 rounds make ~105 M records.
    BigCapture {
        label: "105M records",
        file: "call_churn-big.bin",
        workload: "call_churn.py",
        rounds: "2100",
    },
];

/// Checks the `--report` names given (all reports when none is).
pub fn check_selection(selected: &[String]) -> Result<()> {
    if let Some(unknown) = selected
        .iter()
        .find(|name| !REPORTS.iter().any(|r| r.label == name.as_str()))
    {
        let known: Vec<&str> = REPORTS.iter().map(|r| r.label).collect();
        bail!(
            "no report named {unknown:?}; the reports: {}",
            known.join(", ")
        );
    }
    Ok(())
}

/// The selected reports on each large capture, recorded first if missing.
pub fn prepare(context: &Context) -> Result<Vec<Variant>> {
    let output_dir = context.cache.join("reports-out");
    std::fs::create_dir_all(&output_dir)?;
    let mut variants = Vec::new();
    for capture in &CAPTURES {
        let file = context.cache.join(capture.file);
        if !file.exists() {
            record(context, capture.workload, capture.rounds, &file)?;
        }
        for report in REPORTS
            .iter()
            .filter(|r| context.reports.is_empty() || context.reports.iter().any(|s| s == r.label))
        {
            let command = |program: &Path, side: &str| {
                let output = output_dir.join(format!("{side}-{}", report.label.replace(' ', "_")));
                BenchCommand::new(program, report_args(report, &file, &output))
            };
            variants.push(Variant {
                label: format!("{}: {}", capture.label, report.label),
                ours: command(&context.ours, "ours"),
                theirs: report
                    .in_memray
                    .then(|| command(&context.reference.memray, "memray")),
                profiled: None,
                extra: None,
            });
        }
    }
    Ok(variants)
}

/// `ARGS… [-f -o OUTPUT] CAPTURE` (`diff` compares the capture with itself).
fn report_args(report: &Report, capture: &Path, output: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = report.args.iter().map(OsString::from).collect();
    if report.writes_file {
        args.extend(["-f".into(), "-o".into(), output.as_os_str().to_owned()]);
    }
    if report.label == "diff" {
        args.push(capture.as_os_str().to_owned());
    }
    args.push(capture.as_os_str().to_owned());
    args
}

/// `memray.FileReader`'s high-water-mark records of the 51 M-record capture
/// from Python, ours (the source tree's package with the release extension,
/// assembled in the cache) and memray 1.20's.
pub fn prepare_reader_api(context: &Context) -> Result<Vec<Variant>> {
    let capture = &CAPTURES[0];
    let file = context.cache.join(capture.file);
    if !file.exists() {
        record(context, capture.workload, capture.rounds, &file)?;
    }
    let package_root = context.cache.join("python-package");
    let package = package_root.join("memray");
    let _ = std::fs::remove_dir_all(&package);
    std::fs::create_dir_all(&package)?;
    for entry in std::fs::read_dir(context.root.join("userspace/python/memray"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "py") {
            std::fs::copy(&path, package.join(path.file_name().unwrap_or_default()))?;
        }
    }
    let release = context.ours.parent().unwrap_or(Path::new("."));
    std::fs::copy(
        release.join("lib_memray.so"),
        package.join("_memray.abi3.so"),
    )?;
    let script = context.workloads.join("reader_hwm.py");
    let python = &context.reference.python;
    let ours = [
        OsString::from(format!("PYTHONPATH={}", package_root.display())),
        python.clone().into_os_string(),
        script.clone().into_os_string(),
        file.clone().into_os_string(),
    ];
    Ok(vec![Variant {
        label: format!("{}: FileReader high-water mark", capture.label),
        // `env` puts our package first for our side only.
        ours: BenchCommand::new("env", ours),
        theirs: Some(BenchCommand::new(python, [script, file])),
        profiled: None,
        extra: None,
    }])
}
