//! `cargo xtask bench [NAME…]`: each benchmark's command pairs run side by side
//! with memray 1.20, interleaved (ours, memray's, ours, memray's …) so that
//! machine noise hits both alike; medians of wall time and peak RSS are
//! compared and written under bench/results/. Profiling benchmarks also run
//! the program alone in the same rotation: what matters there is the time each
//! profiler adds to it, and the size of the capture each one writes.

mod catalog;
#[cfg(target_os = "linux")]
mod counters;
#[cfg(target_os = "linux")]
mod ebpf;
mod live;
mod measure;
mod native;
mod proc_stats;
mod report;
mod reports;
mod self_cost;
#[cfg(target_os = "linux")]
mod system;
mod tracker;
#[cfg(target_os = "linux")]
mod traps;

use std::path::PathBuf;

use anyhow::{bail, Result};
use memray_tests::reference::ReferenceMemray;

use crate::process::workspace_root;
use measure::{measure, BenchCommand, Sample};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Benchmarks to run (default: all). `--list` shows them.
    names: Vec<String>,
    /// Timed runs of each side (after one untimed warm-up run each).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// List the benchmarks and exit.
    #[arg(long)]
    list: bool,
    /// The `reports` benchmark runs only these reports (repeatable; default: all),
    /// e.g. `--report stats --report "flamegraph --leaks"`.
    #[arg(long = "report", value_name = "REPORT")]
    reports: Vec<String>,
    /// The `ebpf` benchmark runs only these workloads (repeatable; file stems
    /// of bench/workloads, e.g. `tracker_churn`; default: all, then the rate check).
    #[cfg(target_os = "linux")]
    #[arg(long = "workload", value_name = "STEM")]
    workloads: Vec<String>,
    /// How long the `live` benchmark's keeping-up run lasts.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    live_seconds: u64,
}

/// One entry of the catalog.
pub struct Benchmark {
    pub name: &'static str,
    pub about: &'static str,
    pub runner: Runner,
}

pub enum Runner {
    /// Creates or reuses the inputs and returns the command pairs to compare.
    Pairs(fn(&Context) -> Result<Vec<Variant>>),
    /// Runs, prints and saves a comparison of its own shape, given the rounds.
    Own(fn(&Context, usize) -> Result<()>),
}

/// A pair of equivalent commands: ours and memray's (`None` where memray
/// has no equivalent).
pub struct Variant {
    pub label: String,
    pub ours: BenchCommand,
    pub theirs: Option<BenchCommand>,
    /// Set when both commands run a program under a profiler.
    pub profiled: Option<Profiled>,
    /// A command run once whose last output line is reported alongside.
    pub extra: Option<Extra>,
}

/// What a profiling variant adds: the program run alone, and the capture
/// file each side writes (rewritten by every run).
pub struct Profiled {
    pub plain: BenchCommand,
    /// Ours, then memray's.
    pub captures: [PathBuf; 2],
}

pub struct Extra {
    pub label: &'static str,
    pub command: BenchCommand,
}

/// What `prepare` functions may use.
pub struct Context {
    pub root: PathBuf,
    /// Where generated inputs are kept between runs.
    pub cache: PathBuf,
    pub workloads: PathBuf,
    /// Our release `memray` binary.
    pub ours: PathBuf,
    pub reference: ReferenceMemray,
    /// The reports selected with `--report` (empty: all).
    pub reports: Vec<String>,
    /// The workloads selected with `--workload` (empty: all).
    #[cfg(target_os = "linux")]
    pub only_workloads: Vec<String>,
    /// The `live` benchmark's keeping-up duration (`--live-seconds`).
    pub live_seconds: u64,
}

/// Everything measured for one variant.
pub struct Outcome {
    pub benchmark: &'static str,
    pub variant: String,
    pub ours: Side,
    pub theirs: Option<Side>,
    /// The program without a profiler (profiling variants only).
    pub plain: Option<Side>,
    /// Bytes of ours and memray's capture after the last run (profiling variants only).
    pub capture_bytes: Option<[Option<u64>; 2]>,
    pub extra: Option<(String, String)>,
}

pub struct Side {
    pub command: String,
    /// The timed samples, or why the command failed.
    pub samples: Result<Vec<Sample>, String>,
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let catalog = catalog::all();
    if args.list {
        for benchmark in &catalog {
            println!("{:<12} {}", benchmark.name, benchmark.about);
        }
        return Ok(());
    }
    if let Some(unknown) = args
        .names
        .iter()
        .find(|n| !catalog.iter().any(|b| b.name == *n))
    {
        bail!("no benchmark named {unknown:?} (`cargo xtask bench --list`)");
    }
    if args.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    if args.live_seconds == 0 {
        bail!("--live-seconds must be at least 1");
    }
    reports::check_selection(&args.reports)?;
    let selected: Vec<&Benchmark> = catalog
        .iter()
        .filter(|b| args.names.is_empty() || args.names.iter().any(|n| n == b.name))
        .collect();

    let release = crate::workspace::build_release_memray()?;
    let root = workspace_root();
    let context = Context {
        cache: memray_tests::paths::cache_dir().join("bench"),
        workloads: root.join("bench/workloads"),
        ours: release.join("memray"),
        reference: memray_tests::reference::reference_memray(),
        reports: args.reports.clone(),
        #[cfg(target_os = "linux")]
        only_workloads: args.workloads.clone(),
        live_seconds: args.live_seconds,
        root,
    };
    std::fs::create_dir_all(&context.cache)?;

    let mut outcomes = Vec::new();
    for benchmark in selected {
        println!("== {}: {}", benchmark.name, benchmark.about);
        match benchmark.runner {
            Runner::Pairs(prepare) => {
                for variant in prepare(&context)? {
                    let outcome = run_variant(benchmark.name, variant, args.rounds);
                    report::print_outcome(&outcome);
                    outcomes.push(outcome);
                }
            }
            Runner::Own(run) => run(&context, args.rounds)?,
        }
    }
    if outcomes.is_empty() {
        return Ok(());
    }
    let written = report::write(&context.root.join("bench/results"), &outcomes)?;
    println!("results written to {}", written.display());
    Ok(())
}

fn run_variant(benchmark: &'static str, variant: Variant, rounds: usize) -> Outcome {
    let mut sides = vec![&variant.ours];
    sides.extend(variant.theirs.as_ref());
    sides.extend(variant.profiled.as_ref().map(|p| &p.plain));
    let samples = interleave(&sides, rounds, |command| measure(command));
    let mut sides: Vec<Side> = sides
        .iter()
        .zip(samples)
        .map(|(command, samples)| Side {
            command: command.display(),
            samples,
        })
        .collect();
    let plain = variant.profiled.as_ref().and_then(|_| sides.pop());
    let capture_bytes = variant.profiled.as_ref().map(|p| {
        p.captures
            .each_ref()
            .map(|capture| std::fs::metadata(capture).ok().map(|m| m.len()))
    });
    let theirs = variant.theirs.as_ref().and_then(|_| sides.pop());
    let ours = sides.pop().expect("our side");
    let extra = variant
        .extra
        .map(|extra| (extra.label.to_string(), last_stdout_line(&extra.command)));
    Outcome {
        benchmark,
        variant: variant.label,
        ours,
        theirs,
        plain,
        capture_bytes,
        extra,
    }
}

/// One untimed warm-up run of each side (page cache, lazy imports), then
/// `rounds` rounds of each in turn, so that machine noise hits all alike; a
/// failure ends that side.
fn interleave<S, T>(
    sides: &[S],
    rounds: usize,
    mut run: impl FnMut(&S) -> Result<T, String>,
) -> Vec<Result<Vec<T>, String>> {
    let mut results: Vec<Result<Vec<T>, String>> = sides
        .iter()
        .map(|side| run(side).map(|_| Vec::new()))
        .collect();
    for _ in 0..rounds {
        for (side, collected) in sides.iter().zip(results.iter_mut()) {
            if let Ok(list) = collected {
                match run(side) {
                    Ok(sample) => list.push(sample),
                    Err(why) => *collected = Err(why),
                }
            }
        }
    }
    results
}

/// The command's last stdout line, or why it failed.
fn last_stdout_line(command: &BenchCommand) -> String {
    match std::process::Command::new(&command.program)
        .args(&command.args)
        .output()
    {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or("(no output)")
            .to_string(),
        Ok(out) => format!(
            "failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ),
        Err(e) => format!("cannot start: {e}"),
    }
}
