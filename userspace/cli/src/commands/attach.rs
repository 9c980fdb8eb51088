//! `memray attach --ebpf PID`: records a running CPython process from
//! outside, nothing loaded into it, until Ctrl-C, SIGTERM, `--duration` or
//! its exit; then the probes are removed and the process goes on. Without
//! `--ebpf`, on CPython 3.14+: a `memray.Tracker` started inside the process
//! through `sys.remote_exec` ([`remote_exec`]), until Ctrl-C, SIGTERM,
//! `--duration`, `memray detach PID` or the process's exit.

use std::path::PathBuf;
use std::time::Duration;

use memray_ebpf::{OnSignal, Recording, Stop};
use memray_recorder::CaptureOptions;

use crate::commands::ebpf_capture::{self, ebpf_error};
use crate::commands::remote_exec::{self, TrackerOptions};
use crate::error::{CliError, CliResult};

#[derive(clap::Args, Debug)]
#[command(about = "Begin tracking allocations in an already-started process")]
pub struct Args {
    /// Process id to affect
    pid: u32,
    /// Record with eBPF uprobes, from outside the process (as root: sudo)
    #[arg(long)]
    ebpf: bool,
    /// Capture allocations into the given file (default: memray-<process name>.<pid>.bin)
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// If the output file already exists, overwrite it
    #[arg(short, long)]
    force: bool,
    /// Write aggregated stats to the output file instead of all allocations
    #[arg(long)]
    aggregate: bool,
    /// Do not compress the resulting file using lz4
    #[arg(long)]
    no_compress: bool,
    /// At the end, say why stack walks gave up (one line per reason)
    #[arg(short, long)]
    verbose: bool,
    /// Duration to track for (in seconds)
    #[arg(long, value_name = "DURATION")]
    duration: Option<f64>,
    /// Track native (C/C++) stack frames as well (without --ebpf)
    #[arg(long)]
    native: bool,
    /// Record allocations made by the pymalloc allocator (without --ebpf)
    #[arg(long)]
    trace_python_allocators: bool,
    /// Record allocations in child processes forked from the tracked script (without --ebpf)
    #[arg(long)]
    follow_fork: bool,
}

pub fn run(args: Args) -> CliResult {
    let duration = args
        .duration
        .map(|seconds| {
            Duration::try_from_secs_f64(seconds)
                .map_err(|_| CliError::usage("attach", format!("invalid duration: {seconds}")))
        })
        .transpose()?;
    let pid = args.pid;
    let output = args.output.clone().unwrap_or_else(|| default_output(pid));
    ebpf_capture::check_output(&output, args.force)?;
    if !args.ebpf {
        return track_inside(&args, output, duration);
    }
    let mut session = ebpf_capture::load_session("attach")?;
    let exited = memray_ebpf::pidfd_open(pid)
        .map_err(|e| CliError::new(format!("memray attach: process {pid}: {e}")))?;
    session
        .attach(pid, false)
        .map_err(|e| ebpf_error("attach", e))?;
    let options = CaptureOptions {
        aggregate: args.aggregate,
        compress: !args.no_compress,
        overwrite: args.force,
        ..CaptureOptions::default()
    };
    let command_line: Vec<_> = std::env::args_os().collect();
    let settings = ebpf_capture::settings(output.clone(), options, &command_line);
    println!("Writing profile results into {}", output.display());
    let recording = Recording {
        pid,
        exited: std::os::fd::AsFd::as_fd(&exited),
        settings,
        duration,
        on_signal: OnSignal::Stop,
        starting: false,
    };
    let outcome = ebpf_capture::record("attach", recording, session, None, args.verbose)?;
    if outcome.stop == Stop::Exited {
        println!("Process {pid} exited; the capture ends there.");
    }
    let memray = std::env::current_exe().unwrap_or_else(|_| "memray".into());
    ebpf_capture::announce_success(&memray, &output);
    Ok(())
}

/// Why a tracker inside the process stopped.
enum Ended {
    Signal,
    Duration,
    Detached,
    Exited,
}

/// The tracker inside the process (CPython 3.14+), from start to finished capture.
fn track_inside(args: &Args, output: PathBuf, duration: Option<Duration>) -> CliResult {
    // The process has its own working directory.
    let output = std::path::absolute(&output)
        .map_err(|e| CliError::new(format!("memray attach: {}: {e}", output.display())))?;
    let mut target = remote_exec::Target::find("attach", args.pid)?;
    let signals = remote_exec::Signals::block();
    let status = target.start_tracker(&TrackerOptions {
        output: output.clone(),
        force: args.force,
        native: args.native,
        trace_python_allocators: args.trace_python_allocators,
        follow_fork: args.follow_fork,
        aggregate: args.aggregate,
        compress: !args.no_compress,
    })?;
    println!("Writing profile results into {}", output.display());
    let deadline = duration.map(|duration| std::time::Instant::now() + duration);
    let ended = loop {
        if signals.wait(remote_exec::POLL) {
            break Ended::Signal;
        }
        if deadline.is_some_and(|deadline| std::time::Instant::now() >= deadline) {
            break Ended::Duration;
        }
        if remote_exec::read_status(&status).as_deref() == Some("stopped") {
            break Ended::Detached;
        }
        if !remote_exec::is_running(target.pid()) {
            break Ended::Exited;
        }
    };
    match ended {
        Ended::Signal | Ended::Duration => target.stop_tracker("detach")?,
        Ended::Detached => println!("Tracking was ended by memray detach {}.", target.pid()),
        Ended::Exited => println!("Process {} exited; the capture ends there.", target.pid()),
    }
    let memray = std::env::current_exe().unwrap_or_else(|_| "memray".into());
    ebpf_capture::announce_success(&memray, &output);
    Ok(())
}

/// `memray-<process name>.<pid>.bin`, as `run` names its captures.
fn default_output(pid: u32) -> PathBuf {
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    PathBuf::from(format!("memray-{}.{pid}.bin", name.trim_end()))
}
