//! `memray attach PID` without `--ebpf` (CPython 3.14+): a `memray.Tracker`
//! started inside the process through `sys.remote_exec`.

use std::path::PathBuf;
use std::time::Duration;

use super::{duration, Args};
use crate::commands::ebpf_capture;
use crate::commands::remote_exec::{self, TrackerOptions};
use crate::error::{CliError, CliResult};

pub fn run(args: Args) -> CliResult {
    let duration = duration(&args)?;
    let Some(pid) = args.pid else {
        return Err(CliError::usage("attach", "a PID is required"));
    };
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| memray_ebpf::capture_name(pid).into());
    ebpf_capture::check_output(&output, args.force)?;
    track_inside(&args, pid, output, duration)
}

/// Why a tracker inside the process stopped.
enum Ended {
    Signal,
    Duration,
    Detached,
    Exited,
}

/// The tracker inside the process (CPython 3.14+), from start to finished capture.
fn track_inside(args: &Args, pid: u32, output: PathBuf, duration: Option<Duration>) -> CliResult {
    // The process has its own working directory.
    let output = std::path::absolute(&output)
        .map_err(|e| CliError::new(format!("memray attach: {}: {e}", output.display())))?;
    let mut target = remote_exec::Target::find("attach", pid)?;
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
