//! `cargo xtask bench live`: live mode, ours beside memray 1.20's in one run.
//!
//! Keeping up: `memray run --live-remote bench/workloads/malloc_rate.py
//! 1000000 SECONDS` with `memray live PORT` in a tmux pane: the rate the
//! program reaches (a reader that falls behind slows it down through the
//! socket), and the reader's CPU time and RSS read from /proc along the run
//! (no backlog: CPU time linear in time, RSS flat).
//!
//! Added time: bench/workloads/tracker_threads.py timed inside the process
//! (self_cost.py, so start-up and the wait for the reader are left out), alone,
//! under `run` to a file and under `--live-remote` with the reader, ours and
//! memray's, interleaved; medians and ratios.

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use memray_tests::tmux::Terminal;

use super::measure::{last_line, median_by};
use super::{interleave, proc_stats, report, self_cost, Context};

/// malloc/free pairs per second of the keeping-up run.
const RATE: &str = "1000000";
/// Readings of the reader's CPU time and RSS along the keeping-up run.
const READINGS: u32 = 6;
/// The added-time workload and its arguments (the `run` benchmark's "4 threads").
const WORKLOAD: &str = "tracker_threads.py";
const WORKLOAD_ARGS: [&str; 1] = ["50"];
/// How long a live program may take beyond its own duration (start-up, the
/// reader's connection) before it is stopped.
const GRACE: Duration = Duration::from_secs(120);

/// One profiler: its `memray`, and the options that run our interpreter.
struct Profiler {
    label: &'static str,
    memray: PathBuf,
    /// `--python PATH` for ours; memray 1.20 runs in its own interpreter.
    python_option: Vec<OsString>,
}

pub fn run(context: &Context, rounds: usize) -> Result<()> {
    if memray_tests::skip::on_path("tmux").is_none() {
        bail!("tmux not found on PATH (`cargo xtask setup` installs it)");
    }
    let profilers = [
        Profiler {
            label: "ours",
            memray: context.ours.clone(),
            python_option: vec!["--python".into(), context.reference.python.clone().into()],
        },
        Profiler {
            label: "memray 1.20",
            memray: context.reference.memray.clone(),
            python_option: Vec::new(),
        },
    ];
    let pane = ReaderPane::open()?;
    let mut markdown = String::from("# cargo xtask bench live\n");
    for profiler in &profilers {
        let text = keep_up(context, profiler, &pane).unwrap_or_else(|why| {
            format!(
                "\n## Keeping up at {RATE} allocations/s: {}\n\nFAILED: {why}\n",
                profiler.label
            )
        });
        print!("{text}");
        markdown.push_str(&text);
    }
    let text = added_time(context, &profilers, &pane, rounds);
    print!("{text}");
    markdown.push_str(&text);
    report::write_markdown(&context.root.join("bench/results"), "live.md", &markdown)
}

/// The reader's CPU time and RSS at one moment of the run.
struct Reading {
    at: Duration,
    cpu_seconds: f64,
    rss_kib: u64,
}

fn keep_up(context: &Context, profiler: &Profiler, pane: &ReaderPane) -> Result<String, String> {
    let seconds = context.live_seconds;
    let program: Vec<OsString> = [
        context.workloads.join("malloc_rate.py").into_os_string(),
        RATE.into(),
        seconds.to_string().into(),
    ]
    .into();
    let mut live = LiveRun::start(profiler, pane, &program, None)?;
    let start = Instant::now();
    let step = Duration::from_secs(seconds).max(Duration::from_secs(READINGS.into())) / READINGS;
    let mut readings = Vec::new();
    let mut next = step;
    let reader = live.reader;
    let outcome = live.wait(Duration::from_secs(seconds), || {
        if start.elapsed() >= next {
            next += step;
            if let (Some(cpu_seconds), Some(rss_kib)) = (
                proc_stats::cpu_seconds(reader),
                proc_stats::status_kib(reader, "VmRSS"),
            ) {
                readings.push(Reading {
                    at: start.elapsed(),
                    cpu_seconds,
                    rss_kib,
                });
            }
        }
    });
    let output = live.finish(pane, outcome)?;
    let mut text = format!(
        "\n## Keeping up at {RATE} allocations/s: {}\n\n\
         `{} run {}--live-remote malloc_rate.py {RATE} {seconds}` with `memray live PORT` \
         in an 80x24 tmux pane.\n\nThe program: {}\n\n\
         | since the reader started | reader CPU time | reader RSS |\n|---|---|---|\n",
        profiler.label,
        profiler.memray.display(),
        profiler
            .python_option
            .iter()
            .map(|o| format!("{} ", o.to_string_lossy()))
            .collect::<String>(),
        output.lines().last().unwrap_or("(no output)"),
    );
    for reading in &readings {
        text.push_str(&format!(
            "| {:.0} s | {:.2} s | {:.2} MiB |\n",
            reading.at.as_secs_f64(),
            reading.cpu_seconds,
            reading.rss_kib as f64 / 1024.0
        ));
    }
    text.push_str(&backlog_verdict(&readings));
    Ok(text)
}

/// CPU time per second in the run's first and second halves (equal when the
/// reader keeps up), and the RSS from the first reading to the last.
fn backlog_verdict(readings: &[Reading]) -> String {
    let (Some(first), Some(last)) = (readings.first(), readings.last()) else {
        return "\nno readings: the run ended before the first\n".to_string();
    };
    let middle = &readings[readings.len() / 2];
    let rate = |from: &Reading, to: &Reading| {
        let span = (to.at - from.at).as_secs_f64();
        (span > 0.0).then(|| (to.cpu_seconds - from.cpu_seconds) / span)
    };
    let share = |rate: Option<f64>| rate.map_or("n/a".into(), |r| format!("{:.1} %", r * 100.0));
    format!(
        "\nreader CPU, share of a core: {} over the run, {} up to the middle reading, \
         {} after it; RSS {:.2} → {:.2} MiB\n",
        share(Some(last.cpu_seconds / last.at.as_secs_f64())),
        share(Some(middle.cpu_seconds / middle.at.as_secs_f64())),
        share(rate(middle, last)),
        first.rss_kib as f64 / 1024.0,
        last.rss_kib as f64 / 1024.0,
    )
}

/// The ways the added-time workload runs.
#[derive(Clone, Copy)]
enum Timed<'a> {
    Plain,
    ToFile(&'a Profiler),
    Live(&'a Profiler),
}

impl Timed<'_> {
    fn label(&self) -> String {
        match self {
            Timed::Plain => "plain".to_string(),
            Timed::ToFile(profiler) => format!("{} `run -o FILE`", profiler.label),
            Timed::Live(profiler) => {
                format!("{} `run --live-remote` + `memray live`", profiler.label)
            }
        }
    }
}

fn added_time(
    context: &Context,
    profilers: &[Profiler; 2],
    pane: &ReaderPane,
    rounds: usize,
) -> String {
    let program: Vec<OsString> = [
        context.workloads.join("self_cost.py").into_os_string(),
        context.workloads.join(WORKLOAD).into_os_string(),
    ]
    .into_iter()
    .chain(WORKLOAD_ARGS.map(OsString::from))
    .collect();
    let cost_file = context.cache.join("live-self-cost.txt");
    let sides: Vec<Timed> = std::iter::once(Timed::Plain)
        .chain(
            profilers
                .iter()
                .flat_map(|p| [Timed::ToFile(p), Timed::Live(p)]),
        )
        .collect();
    let results = interleave(&sides, rounds, |side| {
        let _ = std::fs::remove_file(&cost_file);
        match side {
            Timed::Plain => run_to_end(
                Command::new(&context.reference.python).args(&program),
                &cost_file,
            ),
            Timed::ToFile(profiler) => {
                let capture = context.cache.join(format!(
                    "live-bench-{}.bin",
                    profiler.label.replace(' ', "-")
                ));
                run_to_end(
                    Command::new(&profiler.memray)
                        .arg("run")
                        .args(&profiler.python_option)
                        .args(["--quiet", "--force", "--no-compress", "-o"])
                        .arg(capture)
                        .args(&program),
                    &cost_file,
                )
            }
            Timed::Live(profiler) => {
                let mut live = LiveRun::start(profiler, pane, &program, Some(&cost_file))?;
                let outcome = live.wait(Duration::ZERO, || {});
                live.finish(pane, outcome).map(drop)
            }
        }?;
        self_cost::read(&cost_file)
    });
    let seconds: Vec<Option<f64>> = results
        .iter()
        .map(|r| r.as_ref().ok().map(|s| median_by(s, |c| c.elapsed_seconds)))
        .collect();
    // Side 0 is the program alone.
    let added = |side: usize| Some(seconds[side]? - seconds[0]?).filter(|_| side > 0);
    let mut text = format!(
        "\n## Added time: {WORKLOAD} {}, timed inside the process\n\n\
         Medians of {rounds} interleaved rounds (after one warm-up each); \
         other work on the machine makes single figures noisy.\n\n\
         | side | workload time (median) | min – max | added vs plain | the process's CPU time |\n\
         |---|---|---|---|---|\n",
        WORKLOAD_ARGS.join(" ")
    );
    for (side, (timed, result)) in sides.iter().zip(&results).enumerate() {
        let row = match result {
            Ok(samples) => {
                let elapsed = samples.iter().map(|c| c.elapsed_seconds);
                format!(
                    "{:.4} s | {:.4} – {:.4} s | {} | {:.3} s",
                    seconds[side].unwrap_or(f64::NAN),
                    elapsed.clone().fold(f64::INFINITY, f64::min),
                    elapsed.fold(f64::NEG_INFINITY, f64::max),
                    added(side).map_or(String::new(), |a| format!("{a:+.4} s")),
                    median_by(samples, |c| c.cpu_seconds),
                )
            }
            Err(why) => format!("FAILED: {why} | | |"),
        };
        text.push_str(&format!("| {} | {row} |\n", timed.label()));
    }
    // Sides: 1, 2 ours to a file and live; 3, 4 memray's.
    let ratio = |a: usize, b: usize| {
        report::format_ratio(
            added(a)
                .zip(added(b))
                .and_then(|(a, b)| report::ratio(a, b)),
        )
    };
    text.push_str(&format!(
        "\nadded time, `--live-remote` / `run` to a file: ours {}, memray 1.20 {}; \
         ours / memray 1.20: to a file {}, live {}\n",
        ratio(2, 1),
        ratio(4, 3),
        ratio(1, 3),
        ratio(2, 4),
    ));
    text
}

/// Runs `command` to its end, its output discarded; a failure is one line.
fn run_to_end(command: &mut Command, cost_file: &Path) -> Result<(), String> {
    let stderr = tempfile::tempfile().map_err(|e| format!("temporary file: {e}"))?;
    let status = command
        .env("MEMRAY_BENCH_COST", cost_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr.try_clone().map_err(|e| e.to_string())?)
        .status()
        .map_err(|e| format!("cannot start {:?}: {e}", command.get_program()))?;
    if !status.success() {
        return Err(format!("{status}: {}", last_line(stderr)));
    }
    Ok(())
}

/// `memray run --live-remote PROGRAM…` and its reader in the pane.
struct LiveRun {
    program: Child,
    stdout: BufReader<ChildStdout>,
    stderr: File,
    /// The reader's pid.
    reader: u32,
}

impl LiveRun {
    /// Starts the program, reads the port from its invitation, and starts
    /// the profiler's own reader on it.
    fn start(
        profiler: &Profiler,
        pane: &ReaderPane,
        program: &[OsString],
        cost_file: Option<&Path>,
    ) -> Result<LiveRun, String> {
        let stderr = tempfile::tempfile().map_err(|e| format!("temporary file: {e}"))?;
        let mut command = Command::new(&profiler.memray);
        command
            .arg("run")
            .args(&profiler.python_option)
            .arg("--live-remote")
            .args(program)
            // memray 1.20 prints its invitation with Python's print.
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr.try_clone().map_err(|e| e.to_string())?);
        if let Some(cost_file) = cost_file {
            command.env("MEMRAY_BENCH_COST", cost_file);
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", profiler.memray.display()))?;
        let mut stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut invitation = String::new();
        let _ = stdout.read_line(&mut invitation);
        // "Run 'memray live PORT' in another shell to see live results"
        let port = invitation
            .split("live ")
            .nth(1)
            .map(|rest| {
                rest.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
            })
            .and_then(|digits| digits.parse::<u16>().ok());
        let reader = match port {
            Some(port) => pane.start_reader(&profiler.memray, port),
            None => Err(format!("no port in the invitation {invitation:?}")),
        };
        match reader {
            Ok(reader) => Ok(LiveRun {
                program: child,
                stdout,
                stderr,
                reader,
            }),
            Err(why) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!("{why}; stderr: {}", last_line(stderr)))
            }
        }
    }

    /// Waits up to `duration` + [`GRACE`] for the program to end, calling
    /// `tick` every 50 ms meanwhile; stops it after that.
    fn wait(&mut self, duration: Duration, mut tick: impl FnMut()) -> Result<(), String> {
        let deadline = Instant::now() + duration + GRACE;
        loop {
            match self.program.try_wait().map_err(|e| e.to_string())? {
                Some(status) if status.success() => return Ok(()),
                Some(status) => return Err(format!("{status}")),
                None if Instant::now() > deadline => {
                    let _ = self.program.kill();
                    let _ = self.program.wait();
                    return Err("still running at the deadline: stopped".to_string());
                }
                None => {}
            }
            tick();
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Quits the reader; the program's output after the invitation, or why it failed.
    fn finish(mut self, pane: &ReaderPane, outcome: Result<(), String>) -> Result<String, String> {
        pane.stop_reader(self.reader);
        let mut output = String::new();
        let _ = self.stdout.read_to_string(&mut output);
        outcome
            .map(|()| output)
            .map_err(|why| format!("{why}: {}", last_line(self.stderr)))
    }
}

/// A tmux terminal, 80x24, where each run's reader runs in turn.
struct ReaderPane {
    terminal: Terminal,
    dir: tempfile::TempDir,
}

impl ReaderPane {
    fn open() -> Result<ReaderPane> {
        let dir = tempfile::tempdir()?;
        Ok(ReaderPane {
            terminal: Terminal::start(80, 24, dir.path()),
            dir,
        })
    }

    /// `MEMRAY live PORT` in the pane; its pid once it runs.
    fn start_reader(&self, memray: &Path, port: u16) -> Result<u32, String> {
        let pid_file = self.dir.path().join("reader.pid");
        let _ = std::fs::remove_file(&pid_file);
        self.terminal.run(&format!(
            "sh -c 'echo $$ > reader.pid; exec \"{}\" live {port}'",
            memray.display()
        ));
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let pid = std::fs::read_to_string(&pid_file).ok();
            if let Some(pid) = pid.and_then(|p| p.trim().parse().ok()) {
                return Ok(pid);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!(
            "the reader did not start:\n{}",
            self.terminal.screen()
        ))
    }

    /// Presses `q` (the program has ended; both readers then stay until
    /// asked), and kills the reader if it is still there 5 s later.
    fn stop_reader(&self, pid: u32) {
        self.terminal.keys(&["q"]);
        let deadline = Instant::now() + Duration::from_secs(5);
        while proc_stats::is_running(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if proc_stats::is_running(pid) {
            // SAFETY: a plain signal to the reader this benchmark started.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
        // Whatever reached the shell instead of the reader: erased (VKILL).
        self.terminal.keys(&["C-u"]);
    }
}
