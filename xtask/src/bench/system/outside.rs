//! The cost to a process outside the pid set: the CPU time per malloc/free
//! pair of a C loop (the eBPF tests' allocators.c in `loop` mode, compiled
//! with `cc`), alone and beside each neighbour that places uprobes on the
//! same libc: ours, which place them for the recorded processes only, and
//! bpftrace, which places them for every process.

use std::fs::File;
use std::io::{BufReader, Write};
use std::process::{ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result};

use super::processes::{await_lines, interrupt, residents, wait_for, AttachAll, Owned};
use super::Setup;
use crate::bench::ebpf::start_bpftrace;
use crate::bench::measure::{last_line, median_by};
use crate::bench::{interleave, proc_stats};
use crate::process::execute;

/// malloc/free pairs of one round of the loop.
const PAIRS: u32 = 100_000;
/// Rounds of the loop per neighbour's turn: their median is the turn's figure.
const LOOP_ROUNDS: usize = 5;
/// malloc/free pairs per second of each recorded Python process.
const RECORDED_RATE: &str = "10000";
/// The peer: libc's malloc (entry and return) and free, in every process.
const BPFTRACE_PROBES: &str = "uprobe:libc:malloc {} uretprobe:libc:malloc {} uprobe:libc:free {}";
/// bpftrace says "Attaching N probes..." before it attaches them: time for
/// three uprobes to be in place.
const BPFTRACE_SETTLE: Duration = Duration::from_secs(1);

#[derive(Clone, Copy)]
enum Neighbour {
    Alone,
    AttachAll,
    RunFollowFork,
    Bpftrace,
}

const NEIGHBOURS: [Neighbour; 4] = [
    Neighbour::Alone,
    Neighbour::AttachAll,
    Neighbour::RunFollowFork,
    Neighbour::Bpftrace,
];

impl Neighbour {
    /// Who runs beside the loop, and what it is.
    fn describe(self, setup: &Setup) -> (&'static str, String) {
        let python = &setup.pythons[0];
        match self {
            Neighbour::Alone => ("alone", "nothing".to_string()),
            Neighbour::AttachAll => (
                "ours",
                format!(
                    "`memray attach --ebpf --all --name REGEX` recording one python {} \
                     `resident.py {RECORDED_RATE}` (the only match)",
                    python.label()
                ),
            ),
            Neighbour::RunFollowFork => (
                "ours",
                format!(
                    "`memray run --ebpf --follow-fork resident.py --fork {RECORDED_RATE}` \
                     on python {} (parent and child allocating, both recorded)",
                    python.label()
                ),
            ),
            Neighbour::Bpftrace => ("bpftrace", format!("`bpftrace -e '{BPFTRACE_PROBES}'`")),
        }
    }

    /// Starts it; returns once its probes are placed.
    fn start(self, setup: &Setup) -> Result<Running, String> {
        match self {
            Neighbour::Alone => Ok(Running::Alone),
            Neighbour::AttachAll => {
                let recorded =
                    residents(&setup.pythons[..1], 1, &setup.resident, &[RECORDED_RATE])?;
                let mut attach =
                    AttachAll::launch(&setup.memray, &setup.name, &setup.scratch.join("outside"))?;
                attach.attached(1)?;
                Ok(Running::Attach(attach, recorded))
            }
            Neighbour::RunFollowFork => follow_fork(setup),
            Neighbour::Bpftrace => bpftrace(setup),
        }
    }
}

/// `memray run --ebpf --follow-fork resident.py --fork RATE`, once parent
/// and child run (each once its probes are placed).
fn follow_fork(setup: &Setup) -> Result<Running, String> {
    let stderr = tempfile::tempfile().map_err(|e| format!("temporary file: {e}"))?;
    // Emptied: each run adds a capture named after the child's pid.
    let captures = setup.scratch.join("follow-fork");
    let _ = std::fs::remove_dir_all(&captures);
    std::fs::create_dir_all(&captures).map_err(|e| format!("{}: {e}", captures.display()))?;
    let mut child = Command::new(&setup.memray)
        .args(["run", "--ebpf", "--follow-fork", "--quiet", "--force"])
        .args(["--no-compress", "--python"])
        .arg(&setup.pythons[0].path)
        .arg("-o")
        .arg(captures.join("out.bin"))
        .arg(&setup.resident)
        .args(["--fork", RECORDED_RATE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr.try_clone().map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", setup.memray.display()))?;
    let stdout = child.stdout.take().ok_or("memray run without stdout")?;
    let running = Owned(child);
    match await_lines(&mut BufReader::new(stdout), "ready", 2) {
        Ok(()) => Ok(Running::Run(running, stderr)),
        Err(why) => Err(format!("{why}: {}", last_line(stderr))),
    }
}

/// bpftrace with [`BPFTRACE_PROBES`], once they are placed.
fn bpftrace(setup: &Setup) -> Result<Running, String> {
    let running = Owned(start_bpftrace(&setup.bpftrace, &["-e", BPFTRACE_PROBES])?);
    std::thread::sleep(BPFTRACE_SETTLE);
    Ok(Running::Bpftrace(running))
}

/// A neighbour in place.
enum Running {
    Alone,
    Attach(AttachAll, Vec<Owned>),
    /// `memray run` and its stderr.
    Run(Owned, File),
    Bpftrace(Owned),
}

impl Running {
    fn stop(self) -> Result<(), String> {
        let status = match self {
            Running::Alone => return Ok(()),
            Running::Attach(attach, _recorded) => return attach.stop().map(drop),
            // The program ends when its stdin closes.
            Running::Run(mut memray, stderr) => {
                drop(memray.0.stdin.take());
                let status = wait_for(&mut memray.0)?;
                return match status.success() {
                    true => Ok(()),
                    false => Err(format!("{status}: {}", last_line(stderr))),
                };
            }
            Running::Bpftrace(mut bpftrace) => interrupt(&mut bpftrace.0)?,
        };
        if status.success() {
            Ok(())
        } else {
            Err(format!("ended with {status}"))
        }
    }
}

/// allocators.c in `loop PAIRS` mode, between its sync points.
struct CLoop {
    process: Owned,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl CLoop {
    /// Compiles allocators.c as the eBPF tests do and starts it.
    fn start(setup: &Setup) -> Result<CLoop> {
        let source = setup.root.join("userspace/ebpf/tests/support/allocators.c");
        let binary = setup.scratch.join("allocators");
        execute(
            Command::new("cc")
                // Its `all` mode's calls meant to fail draw warnings: not ours to show.
                .args(["-O1", "-fno-builtin", "-w", "-o"])
                .arg(&binary)
                .arg(&source),
        )?;
        let mut child = Command::new(&binary)
            .args(["loop", &PAIRS.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| binary.display().to_string())?;
        let stdin = child.stdin.take().context("no stdin")?;
        let mut stdout = BufReader::new(child.stdout.take().context("no stdout")?);
        let process = Owned(child);
        await_lines(&mut stdout, "ready", 1).map_err(anyhow::Error::msg)?;
        Ok(CLoop {
            process,
            stdin,
            stdout,
        })
    }

    /// CPU nanoseconds per pair of one round: CPU time, as wall time would
    /// count other processes' turns too on a shared machine.
    fn round(&mut self) -> Result<f64, String> {
        let pid = self.process.0.id();
        let run_time = || proc_stats::run_time_ns(pid).ok_or("the loop is gone");
        let before = run_time()?;
        self.stdin
            .write_all(b"g")
            .map_err(|e| format!("writing to the loop: {e}"))?;
        await_lines(&mut self.stdout, "done", 1)?;
        Ok((run_time()? - before) as f64 / f64::from(PAIRS))
    }
}

/// One turn beside `neighbour`: the median of [`LOOP_ROUNDS`] rounds.
fn turn(setup: &Setup, c_loop: &mut CLoop, neighbour: Neighbour) -> Result<f64, String> {
    let running = neighbour.start(setup)?;
    let rounds: Result<Vec<f64>, String> = (0..LOOP_ROUNDS).map(|_| c_loop.round()).collect();
    let stopped = running.stop();
    let rounds = rounds?;
    stopped?;
    Ok(median_by(&rounds, |&ns| ns))
}

/// The table: the loop's cost per pair beside each neighbour, interleaved
/// over `rounds` turns.
pub fn measure(setup: &Setup, rounds: usize) -> Result<String> {
    let mut c_loop = CLoop::start(setup)?;
    let results = interleave(&NEIGHBOURS, rounds, |&neighbour| {
        turn(setup, &mut c_loop, neighbour)
    });
    let alone = results[0]
        .as_ref()
        .ok()
        .map(|turns| median_by(turns, |&ns| ns));
    let mut text = format!(
        "\n## Cost to a process outside the pid set\n\n\
         A C loop of malloc(4242)/free pairs (userspace/ebpf/tests/support/allocators.c, \
         `loop {PAIRS}`), never recorded: its CPU time per pair (/proc/PID/schedstat), \
         the median of {LOOP_ROUNDS} rounds a turn, medians of {rounds} interleaved turns \
         (after one warm-up each). Each neighbour is started before the turn and stopped \
         after it; the recorded Python processes make {RECORDED_RATE} malloc/free pairs per \
         second each. Goal: no measurable difference for ours; bpftrace places its probes \
         for every process.\n\n\
         | side | beside the loop | CPU ns per pair (median) | min – max | vs alone |\n\
         |---|---|---|---|---|\n"
    );
    for (neighbour, result) in NEIGHBOURS.iter().zip(&results) {
        let (side, what) = neighbour.describe(setup);
        let row = match result {
            Ok(turns) => {
                let median = median_by(turns, |&ns| ns);
                let low = turns.iter().copied().fold(f64::INFINITY, f64::min);
                let high = turns.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let added = match (neighbour, alone) {
                    (Neighbour::Alone, _) => String::new(),
                    (_, Some(alone)) => format!(
                        "{:+.1} ns ({:+.1} %)",
                        median - alone,
                        (median / alone - 1.0) * 100.0
                    ),
                    (_, None) => "n/a".to_string(),
                };
                format!("{median:.1} | {low:.1} – {high:.1} | {added}")
            }
            Err(why) => format!("FAILED: {why} | | "),
        };
        text.push_str(&format!("| {side} | {what} | {row} |\n"));
    }
    Ok(text)
}
