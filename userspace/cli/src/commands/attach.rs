//! `memray attach --ebpf PID`: records a running CPython process from
//! outside, nothing loaded into it, until Ctrl-C, SIGTERM, `--duration` or
//! its exit; then the probes are removed and the process goes on. With
//! `--live` the capture goes to the live view instead (`attach/live.rs`),
//! and leaving the view detaches. Without `--ebpf` (memray's injection
//! through gdb/lldb) it is not available yet.

use std::path::PathBuf;
use std::time::Duration;

use memray_ebpf::{OnSignal, Recording, Stop};
use memray_recorder::CaptureOptions;

use crate::commands::ebpf_capture::{self, ebpf_error};
use crate::error::{CliError, CliResult};

mod live;

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
    /// Show the live view instead of writing a file; leaving it detaches
    #[arg(long, conflicts_with_all = ["output", "force", "aggregate", "no_compress", "duration"])]
    live: bool,
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
}

pub fn run(args: Args) -> CliResult {
    if !args.ebpf {
        return Err(CliError::new(
            "memray attach: not available yet in memray-rs without --ebpf",
        ));
    }
    let duration = args
        .duration
        .map(|seconds| {
            Duration::try_from_secs_f64(seconds)
                .map_err(|_| CliError::usage("attach", format!("invalid duration: {seconds}")))
        })
        .transpose()?;
    let pid = args.pid;
    let output = args.output.clone().unwrap_or_else(|| default_output(pid));
    if !args.live {
        ebpf_capture::check_output(&output, args.force)?;
    }
    let mut session = ebpf_capture::load_session("attach")?;
    let exited = memray_ebpf::pidfd_open(pid)
        .map_err(|e| CliError::new(format!("memray attach: process {pid}: {e}")))?;
    session
        .attach(pid, false)
        .map_err(|e| ebpf_error("attach", e))?;
    let command_line: Vec<_> = std::env::args_os().collect();
    if args.live {
        let settings = ebpf_capture::settings(output, CaptureOptions::default(), &command_line);
        return live::watch(pid, &exited, settings, session, args.verbose);
    }
    let options = CaptureOptions {
        aggregate: args.aggregate,
        compress: !args.no_compress,
        overwrite: args.force,
        ..CaptureOptions::default()
    };
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

/// `memray-<process name>.<pid>.bin`, as `run` names its captures.
fn default_output(pid: u32) -> PathBuf {
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    PathBuf::from(format!("memray-{}.{pid}.bin", name.trim_end()))
}
