//! `cargo xtask bench system`: `memray attach --ebpf --all` on a machine of
//! many Python processes (bench/workloads/resident.py, under two CPython
//! versions): how long it takes to attach to them, what its consumer costs
//! per tracked process (CPU time and peak RSS from /proc), and what the
//! probes cost a process outside the pid set (`outside`). memray 1.20 has no
//! system-wide mode; bpftrace is the peer for the cost outside the pid set.

mod outside;
mod processes;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use memray_tests::interpreters::{self, Interpreter};

use super::measure::median_by;
use super::{interleave, proc_stats, report, Context};
use processes::{residents, AttachAll};

/// Idle residents, half under each interpreter.
const IDLE: usize = 20;
/// Busy residents, and the malloc/free pairs per second each makes.
const BUSY: usize = 4;
const BUSY_RATE: &str = "100000";
/// How long each `attach --all` of the consumer's figures runs.
const RECORDING: Duration = Duration::from_secs(10);

/// What every benchmark of this file uses.
pub struct Setup {
    root: PathBuf,
    memray: PathBuf,
    /// Two CPython versions: the reference one, and the newest other one.
    pythons: Vec<Interpreter>,
    resident: PathBuf,
    /// `--name`: the residents' command lines, so that nothing else running
    /// on the machine is recorded.
    name: String,
    /// The captures and the compiled C loop.
    scratch: PathBuf,
    bpftrace: PathBuf,
}

pub fn run(context: &Context, rounds: usize) -> Result<()> {
    let reference = interpreters::reference_python();
    let other = interpreters::supported()
        .into_iter()
        .rev()
        .find(|python| python.version != reference.version)
        .context(
            "the system benchmark needs two CPython versions (pyenv or the project's cache)",
        )?;
    let resident = context.workloads.join("resident.py");
    let setup = Setup {
        root: context.root.clone(),
        memray: context.ours.clone(),
        name: regex_literal(&resident.to_string_lossy()),
        resident,
        pythons: vec![reference, other],
        scratch: context.cache.join("system"),
        bpftrace: memray_tests::skip::on_path("bpftrace")
            .context("bpftrace not found on PATH (`cargo xtask setup` installs it)")?,
    };
    std::fs::create_dir_all(&setup.scratch)?;
    let mut markdown = format!(
        "# cargo xtask bench system\n\n\
         memray 1.20 has no system-wide mode (no `attach --all`, no eBPF): our figures \
         alone, with bpftrace as the peer for the cost outside the pid set. Python \
         processes: bench/workloads/resident.py under CPython {} and {} in turn, selected \
         with `--name '{}'` so that nothing else running on the machine is recorded \
         (every process is still looked at).\n",
        setup.pythons[0].label(),
        setup.pythons[1].label(),
        setup.name,
    );
    print!("{markdown}");
    let text = attach_and_consumer(&setup, rounds);
    print!("{text}");
    markdown.push_str(&text);
    let text = outside::measure(&setup, rounds)?;
    print!("{text}");
    markdown.push_str(&text);
    report::write_markdown(&context.root.join("bench/results"), "system.md", &markdown)
}

/// The residents an `attach --all` records.
struct Population {
    label: &'static str,
    idle: usize,
    busy: usize,
}

const POPULATIONS: [Population; 3] = [
    Population {
        label: "none",
        idle: 0,
        busy: 0,
    },
    Population {
        label: "20 idle",
        idle: IDLE,
        busy: 0,
    },
    Population {
        label: "20 idle + 4 busy",
        idle: IDLE,
        busy: BUSY,
    },
];

/// One `attach --all` run.
struct Recorded {
    /// From the launch until every capture was open, and memray's own
    /// figure (finding and attaching, its start-up left out); none when
    /// nothing is recorded.
    attach: Option<(Duration, Duration)>,
    /// memray's CPU time and peak RSS at the end of [`RECORDING`].
    cpu_seconds: f64,
    peak_rss_kib: u64,
}

/// Starts the population's residents, then `attach --all` over them for
/// [`RECORDING`] from its launch.
fn record(setup: &Setup, population: &Population) -> Result<Recorded, String> {
    let mut started = residents(&setup.pythons, population.idle, &setup.resident, &[])?;
    started.extend(residents(
        &setup.pythons,
        population.busy,
        &setup.resident,
        &[BUSY_RATE],
    )?);
    let mut attach = AttachAll::launch(&setup.memray, &setup.name, &setup.scratch.join("all"))?;
    let attached = match started.len() {
        0 => None,
        count => Some(attach.attached(count)?),
    };
    std::thread::sleep((attach.launched() + RECORDING).saturating_duration_since(Instant::now()));
    let pid = attach.pid();
    let cpu_seconds = proc_stats::cpu_seconds(pid).ok_or("memray attach ended early")?;
    let peak_rss_kib = proc_stats::status_kib(pid, "VmHWM").ok_or("memray attach ended early")?;
    let own = attach.stop()?;
    Ok(Recorded {
        attach: attached.map(|launch| (launch, own)),
        cpu_seconds,
        peak_rss_kib,
    })
}

/// The attach-time and consumer table, the populations interleaved over `rounds`.
fn attach_and_consumer(setup: &Setup, rounds: usize) -> String {
    let results = interleave(&POPULATIONS, rounds, |population| record(setup, population));
    let seconds = RECORDING.as_secs();
    let mut text = format!(
        "\n## `memray attach --ebpf --all` over idle and busy Python processes\n\n\
         Attach time: from launching memray until every process's capture is open (memray \
         opens it once the process's probes are placed); memray's own figure (`--verbose`) \
         leaves out its start-up (loading the probes). Goal: under 2 s with 20 idle. \
         Consumer: memray's CPU time and peak RSS (/proc) {seconds} s after its launch; per \
         tracked process, beyond the run recording none. Busy processes make {BUSY_RATE} \
         malloc/free pairs per second each. Medians of {rounds} interleaved rounds (after \
         one warm-up each).\n\n\
         | processes recorded | attach time | memray's own | CPU time over {seconds} s | \
         per tracked process | peak RSS | per tracked process |\n\
         |---|---|---|---|---|---|---|\n"
    );
    let cpu = |runs: &[Recorded]| median_by(runs, |r| r.cpu_seconds);
    let rss_kib = |runs: &[Recorded]| median_by(runs, |r| r.peak_rss_kib as f64);
    let none = results[0].as_ref().ok();
    for (population, result) in POPULATIONS.iter().zip(&results) {
        let runs = match result {
            Ok(runs) => runs,
            Err(why) => {
                text.push_str(&format!(
                    "| {} | FAILED: {why} | | | | | |\n",
                    population.label
                ));
                continue;
            }
        };
        // Beyond the run that records nothing, per tracked process.
        let tracked = (population.idle + population.busy) as f64;
        let (cpu_each, rss_each) = match none {
            Some(none) if tracked > 0.0 => (
                format!("{:.1} ms", (cpu(runs) - cpu(none)) / tracked * 1000.0),
                format!("{:.0} KiB", (rss_kib(runs) - rss_kib(none)) / tracked),
            ),
            _ => (String::new(), String::new()),
        };
        let attach = |pick: fn(&(Duration, Duration)) -> Duration| {
            let times: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.attach.as_ref().map(|a| pick(a).as_secs_f64()))
                .collect();
            match times.is_empty() {
                true => "n/a".to_string(),
                false => format!("{:.3} s", median_by(&times, |&t| t)),
            }
        };
        text.push_str(&format!(
            "| {} | {} | {} | {:.2} s | {cpu_each} | {:.1} MiB | {rss_each} |\n",
            population.label,
            attach(|a| a.0),
            attach(|a| a.1),
            cpu(runs),
            rss_kib(runs) / 1024.0,
        ));
    }
    text
}

/// `text` as a regular expression that matches it literally.
fn regex_literal(text: &str) -> String {
    text.chars().fold(String::new(), |mut escaped, c| {
        if "\\.+*?()|[]{}^$".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
        escaped
    })
}
