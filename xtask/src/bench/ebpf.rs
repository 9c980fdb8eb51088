//! `cargo xtask bench ebpf`: the tracker workloads run six ways, interleaved —
//! plain python, `memray run --ebpf`, our in-process `memray run`, memray
//! 1.20's `memray run`, plain python under bench/workloads/allocs.bt
//! (`bpftrace -p PID`, counting libc's allocator calls), and plain python
//! with bare uprobes where `run --ebpf` places its libc probes (`traps`: the
//! floor of any uprobe profiler). Each run goes through
//! bench/workloads/self_cost.py, which holds the profiled process until
//! perf-event counters are opened on it: its own task clock, context switches
//! and page faults, whoever profiles it.
//! Then one `run --ebpf` of ~1 M malloc/free per second for 10 s: lost records
//! and our peak RSS.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use memray_tests::reference::ReferenceMemray;
use python_frames::maps::file_mappings;

use super::counters::{Counters, Counts};
use super::measure::{last_line, median_by, BenchCommand};
use super::proc_stats;
use super::traps::Traps;
use super::{report, Context};

const SIDES: [&str; 6] = [
    "plain",
    "ours --ebpf",
    "ours in-process",
    "memray 1.20",
    "bpftrace",
    "uprobe traps alone",
];
const PLAIN: usize = 0;
const EBPF: usize = 1;
const MEMRAY: usize = 3;
const BPFTRACE: usize = 4;
const TRAPS: usize = 5;

/// What one run cost: wall time, the launched process's peak RSS (memray's
/// own for ours, python's for the others), and the profiled process's own cost.
#[derive(Clone, Copy)]
struct Run {
    wall: Duration,
    launched_rss_kib: u64,
    counts: Counts,
}

/// How a side starts: a command, or python held until a tracer from
/// outside has attached (timed from its release: attaching is not the
/// program's cost).
enum Launch {
    Direct(BenchCommand),
    Traced {
        tracer: Tracer,
        python: PathBuf,
        args: Vec<OsString>,
    },
}

enum Tracer {
    Bpftrace(Bpftrace),
    Traps,
}

/// A tracer attached to the held python.
enum Attached {
    Bpftrace(Child),
    Traps(Traps),
}

impl Attached {
    /// Ends it, once python has exited.
    fn end(self) {
        match self {
            Attached::Bpftrace(mut tracer) => {
                // SAFETY: sends SIGINT to bpftrace, our own child, not yet waited for.
                unsafe { libc::kill(tracer.id() as libc::pid_t, libc::SIGINT) };
                let _ = tracer.wait();
            }
            Attached::Traps(traps) => drop(traps),
        }
    }
}

/// The bpftrace program and bench/workloads/allocs.bt.
#[derive(Clone)]
struct Bpftrace {
    program: PathBuf,
    script: PathBuf,
}

pub fn run(context: &Context, rounds: usize) -> Result<()> {
    let bpftrace = Bpftrace {
        program: memray_tests::skip::on_path("bpftrace")
            .context("bpftrace not found on PATH (`cargo xtask setup` installs it)")?,
        script: context.workloads.join("allocs.bt"),
    };
    let self_cost = context.workloads.join("self_cost.py");
    let pid_file = context.cache.join("ebpf-held.pid");
    let mut markdown = String::from("# cargo xtask bench ebpf\n");
    let workloads = super::tracker::workloads(context)?;
    let stem = |workload: &super::tracker::Workload| {
        workload
            .file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    if let Some(unknown) = context
        .only_workloads
        .iter()
        .find(|name| !workloads.iter().any(|w| stem(w) == **name))
    {
        anyhow::bail!("no tracker workload named {unknown:?} in bench/workloads");
    }
    for workload in workloads
        .iter()
        .filter(|w| context.only_workloads.is_empty() || context.only_workloads.contains(&stem(w)))
    {
        let program: Vec<OsString> = [self_cost.as_os_str(), workload.file.as_os_str()]
            .into_iter()
            .map(OsStr::to_os_string)
            .chain(workload.args.iter().map(OsString::from))
            .collect();
        let sides = launches(context, &workload.environment, &program, &bpftrace);
        let results = super::interleave(&sides, rounds, |side| run_once(side, &pid_file));
        let text = describe(workload.label, &sides, &results);
        print!("{text}");
        markdown.push_str(&text);
    }
    if context.only_workloads.is_empty() {
        let rate = rate_check(context)?;
        println!("{rate}");
        markdown.push_str(&rate);
    }
    report::write_markdown(&context.root.join("bench/results"), "ebpf.md", &markdown)
}

fn launches(
    context: &Context,
    environment: &ReferenceMemray,
    program: &[OsString],
    bpftrace: &Bpftrace,
) -> Vec<Launch> {
    let python = &environment.python;
    let capture = |name: &str| context.cache.join(format!("ebpf-bench-{name}.bin"));
    let run = |options: &[&str], output: PathBuf| -> Vec<OsString> {
        ["run"]
            .iter()
            .chain(options)
            .chain(&["--quiet", "--force", "--no-compress", "-o"])
            .map(OsString::from)
            .chain([output.into_os_string()])
            .chain(program.iter().cloned())
            .collect()
    };
    let python_option = python.to_string_lossy().into_owned();
    vec![
        Launch::Direct(BenchCommand::new(python, program.to_vec())),
        Launch::Direct(BenchCommand::new(
            &context.ours,
            run(&["--ebpf", "--python", &python_option], capture("ebpf")),
        )),
        Launch::Direct(BenchCommand::new(
            &context.ours,
            run(&["--python", &python_option], capture("ours")),
        )),
        Launch::Direct(BenchCommand::new(
            &environment.memray,
            run(&[], capture("memray")),
        )),
        Launch::Traced {
            tracer: Tracer::Bpftrace(bpftrace.clone()),
            python: python.to_path_buf(),
            args: program.to_vec(),
        },
        Launch::Traced {
            tracer: Tracer::Traps,
            python: python.to_path_buf(),
            args: program.to_vec(),
        },
    ]
}

fn run_once(launch: &Launch, pid_file: &Path) -> Result<Run, String> {
    let _ = std::fs::remove_file(pid_file);
    let stderr = tempfile::tempfile().map_err(|e| format!("temporary file: {e}"))?;
    let (program, args) = match launch {
        Launch::Direct(command) => (&command.program, &command.args),
        Launch::Traced { python, args, .. } => (python, args),
    };
    let spawned = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .env("MEMRAY_BENCH_HOLD", pid_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(stderr.try_clone().map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
    let held = hold(launch, &mut child, pid_file);
    let Ok((mut counters, tracer)) = held else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!(
            "{}: {}",
            held.err().unwrap_or_default(),
            last_line(stderr)
        ));
    };
    let start = if tracer.is_some() {
        Instant::now()
    } else {
        spawned
    };
    let released = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(b"\n"))
        .transpose();
    let finished = watch(child, start);
    if let Some(tracer) = tracer {
        tracer.end();
    }
    released.map_err(|e| format!("releasing python: {e}"))?;
    let finished = finished?;
    if !finished.status.success() {
        return Err(format!("{}: {}", finished.status, last_line(stderr)));
    }
    let counts = counters
        .read()
        .map_err(|e| format!("reading the perf-event counters: {e}"))?;
    Ok(Run {
        wall: finished.wall,
        launched_rss_kib: finished.peak_rss_kib,
        counts,
    })
}

/// Once the held python (self_cost.py) has written its pid: the tracer
/// of its side attached to it, and its counters opened.
fn hold(
    launch: &Launch,
    child: &mut Child,
    pid_file: &Path,
) -> Result<(Counters, Option<Attached>), String> {
    let pid = held_pid(child, pid_file)?;
    let tracer = match launch {
        Launch::Traced {
            tracer: Tracer::Bpftrace(bpftrace),
            ..
        } => Some(Attached::Bpftrace(trace_until_attached(bpftrace, pid)?)),
        Launch::Traced {
            tracer: Tracer::Traps,
            ..
        } => {
            libc_of(pid)?;
            Some(Attached::Traps(Traps::place(pid)?))
        }
        Launch::Direct(_) => None,
    };
    let counters = Counters::open(pid).map_err(|e| {
        format!("cannot open perf-event counters on process {pid} (root needed): {e}")
    });
    match (counters, tracer) {
        (Ok(counters), tracer) => Ok((counters, tracer)),
        (Err(why), Some(Attached::Bpftrace(mut tracer))) => {
            let _ = tracer.kill();
            let _ = tracer.wait();
            Err(why)
        }
        (Err(why), _) => Err(why),
    }
}

/// The pid self_cost.py writes once it holds (the profiler may have started
/// it as a child of its own).
fn held_pid(child: &mut Child, pid_file: &Path) -> Result<u32, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(pid) = std::fs::read_to_string(pid_file)
            .ok()
            .and_then(|text| text.trim().parse().ok())
        {
            return Ok(pid);
        }
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("ended ({status}) before holding"));
        }
        if Instant::now() > deadline {
            return Err("not held after 60 s".to_string());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// `bpftrace -p PID` on the held python's libc, once it prints "Attaching …".
fn trace_until_attached(bpftrace: &Bpftrace, pid: u32) -> Result<Child, String> {
    let libc = libc_of(pid)?;
    let script = std::fs::read_to_string(&bpftrace.script)
        .map_err(|e| format!("allocs.bt: {e}"))?
        .replace("LIBC", &libc);
    let pid = pid.to_string();
    start_bpftrace(&bpftrace.program, &["-p", &pid, "-e", &script, &pid])
}

/// `bpftrace ARGS…`, once it prints "Attaching …" (it attaches its probes
/// right after). Its stdout stays open: a closed pipe would end bpftrace at
/// its next line.
pub(super) fn start_bpftrace(program: &Path, args: &[&str]) -> Result<Child, String> {
    let mut tracer = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start bpftrace: {e}"))?;
    let stdout = tracer.stdout.take().ok_or("bpftrace without stdout")?;
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    while !line.starts_with("Attaching") {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            let status = tracer.wait().map_err(|e| e.to_string())?;
            return Err(format!("bpftrace ended ({status}) before attaching"));
        }
    }
    tracer.stdout = Some(reader.into_inner());
    Ok(tracer)
}

/// The libc mapped into `pid`, once its dynamic loader has mapped it.
fn libc_of(pid: u32) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
        let found = file_mappings(&maps)
            .map(|mapping| mapping.path)
            .find(|path| {
                path.rsplit('/')
                    .next()
                    .is_some_and(|f| f.starts_with("libc.so"))
            });
        if let Some(path) = found {
            return Ok(path.to_string());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Err(format!("no libc mapped in process {pid}"))
}

struct Finished {
    status: ExitStatus,
    wall: Duration,
    peak_rss_kib: u64,
}

/// Waits for `child`, reading its peak RSS (VmHWM) until it exits: the
/// process's own, where wait4's would include its children.
fn watch(mut child: Child, start: Instant) -> Result<Finished, String> {
    let pid = child.id();
    let mut peak_rss_kib = 0;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| format!("wait: {e}"))? {
            return Ok(Finished {
                status,
                wall: start.elapsed(),
                peak_rss_kib,
            });
        }
        peak_rss_kib = proc_stats::status_kib(pid, "VmHWM").unwrap_or(peak_rss_kib);
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn read_all(mut file: std::fs::File, text: &mut String) -> std::io::Result<()> {
    use std::io::{Read, Seek};
    file.rewind()?;
    file.read_to_string(text).map(drop)
}

/// The workload's table: medians per side, time added to plain, and the ratios.
fn describe(label: &str, sides: &[Launch], results: &[Result<Vec<Run>, String>]) -> String {
    let mut text = format!("\n## {label}\n\n");
    for (side, launch) in sides.iter().enumerate() {
        let command = match launch {
            Launch::Direct(command) => command.display(),
            Launch::Traced {
                tracer,
                python,
                args,
            } => format!(
                "{}; {} {}",
                match tracer {
                    Tracer::Bpftrace(_) => "bpftrace -p PID allocs.bt PID",
                    Tracer::Traps => "perf-event uprobes, no program, where --ebpf probes libc",
                },
                python.display(),
                args.iter()
                    .map(|a| a.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        };
        text.push_str(&format!("- {}: `{command}`\n", SIDES[side]));
    }
    text.push_str("\n| side | wall (median) | added vs plain | profiled process: task clock | context switches | page faults | launched process peak RSS |\n|---|---|---|---|---|---|---|\n");
    let wall = |side: usize| -> Option<f64> {
        results[side]
            .as_ref()
            .ok()
            .map(|runs| median_by(runs, |r| r.wall.as_secs_f64()))
    };
    let added = |side: usize| Some(wall(side)? - wall(PLAIN)?);
    for (side, result) in results.iter().enumerate() {
        let row = match result {
            Ok(runs) => format!(
                "{:.3} s | {} | {:.3} s | {:.0} | {:.0} | {:.1} MiB",
                median_by(runs, |r| r.wall.as_secs_f64()),
                added(side).map_or("n/a".into(), |a| format!("{a:+.3} s")),
                median_by(runs, |r| r.counts.task_clock_seconds),
                median_by(runs, |r| r.counts.context_switches as f64),
                median_by(runs, |r| r.counts.page_faults as f64),
                median_by(runs, |r| r.launched_rss_kib as f64) / 1024.0,
            ),
            Err(why) => format!("FAILED: {why} | | | | | "),
        };
        text.push_str(&format!("| {} | {row} |\n", SIDES[side]));
    }
    let ratio = |other: usize| {
        report::format_ratio(
            added(EBPF)
                .zip(added(other))
                .and_then(|(o, t)| report::ratio(o, t)),
        )
    };
    let floor = report::format_ratio(
        added(TRAPS)
            .zip(added(MEMRAY))
            .and_then(|(t, m)| report::ratio(t, m)),
    );
    text.push_str(&format!(
        "\nadded time, ours --ebpf / memray 1.20: {}; ours --ebpf / bpftrace: {}; \
         uprobe traps alone / memray 1.20: {floor}\n",
        ratio(MEMRAY),
        ratio(BPFTRACE)
    ));
    text
}

/// `memray run --ebpf` of bench/workloads/malloc_rate.py, twice: one
/// process asked for 1 M malloc/free pairs per second (the probes cap what
/// one thread reaches), then two processes (`--follow-fork`) sharing 500 K
/// pairs per second, 1 M records per second, for 10 s each; the rate
/// reached, lost records, our peak RSS.
fn rate_check(context: &Context) -> Result<String> {
    let mut text =
        String::from("\n## 1 M records per second for 10 s under `memray run --ebpf`\n\n");
    for (label, rate, processes) in [
        ("one process asked for 1 M pairs/s", "1000000", "1"),
        (
            "two processes (--follow-fork), 500 K pairs/s between them",
            "500000",
            "2",
        ),
    ] {
        let finished = rate_run(context, rate, processes)?;
        text.push_str(&format!("- {label}: {finished}\n"));
    }
    Ok(text)
}

/// The followed children's captures of `output` (`OUTPUT.PID`), which
/// would pile up in the cache run after run.
fn remove_child_captures(output: &Path) -> Result<()> {
    let (Some(directory), Some(name)) = (output.parent(), output.file_name()) else {
        return Ok(());
    };
    let prefix = format!("{}.", name.to_string_lossy());
    for entry in std::fs::read_dir(directory)? {
        let path = entry?.path();
        let child = path
            .file_name()
            .is_some_and(|file| file.to_string_lossy().starts_with(&prefix));
        if child {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// One `rate_check` run, described.
fn rate_run(context: &Context, rate: &str, processes: &str) -> Result<String> {
    let python = &context.reference.python;
    let output = context.cache.join("ebpf-bench-rate.bin");
    let stdout = tempfile::tempfile()?;
    let stderr = tempfile::tempfile()?;
    let mut command = Command::new(&context.ours);
    command.args(["run", "--ebpf"]);
    if processes != "1" {
        command.arg("--follow-fork");
    }
    let child = command
        .args(["--quiet", "--force", "--no-compress", "--python"])
        .arg(python)
        .arg("-o")
        .arg(&output)
        .arg(context.workloads.join("malloc_rate.py"))
        .args([rate, "10", processes])
        .stdin(Stdio::null())
        .stdout(stdout.try_clone()?)
        .stderr(stderr.try_clone()?)
        .spawn()
        .context("starting memray run --ebpf")?;
    let finished = watch(child, Instant::now()).map_err(anyhow::Error::msg)?;
    remove_child_captures(&output)?;
    let mut errors = String::new();
    let _ = read_all(stderr, &mut errors);
    let lost: Vec<&str> = errors
        .lines()
        .filter(|line| line.contains("lost"))
        .collect();
    let lost = match lost.is_empty() {
        true => "no records lost".to_string(),
        false => lost.join("; "),
    };
    Ok(format!(
        "exit: {}; workload: {}; memray peak RSS {:.1} MiB; {lost}",
        finished.status,
        last_line(stdout),
        finished.peak_rss_kib as f64 / 1024.0,
    ))
}
