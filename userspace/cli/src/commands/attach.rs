//! `memray attach --ebpf PID`: records a running CPython process from
//! outside, nothing loaded into it, until Ctrl-C, SIGTERM, `--duration` or
//! its exit; then the probes are removed and the process goes on. Without
//! `--ebpf` (memray's injection through gdb/lldb) it is not available yet.
//! `--all` records every CPython process of the machine (`attach/all.rs`).

mod all;

use std::path::PathBuf;
use std::time::Duration;

use memray_ebpf::{OnSignal, Recording, Stop};
use memray_recorder::CaptureOptions;

use crate::commands::ebpf_capture::{self, ebpf_error};
use crate::error::{CliError, CliResult};

#[derive(clap::Args, Debug)]
#[command(about = "Begin tracking allocations in an already-started process")]
pub struct Args {
    /// Process id to affect
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pid: Option<u32>,
    /// Record with eBPF uprobes, from outside the process (as root: sudo)
    #[arg(long)]
    ebpf: bool,
    /// With --ebpf: every CPython process of the machine, those started meanwhile, and their children, each into DIR/memray-<name>.<pid>.bin
    #[arg(long)]
    all: bool,
    /// With --all: only the processes whose command line matches REGEX (their children are followed whatever theirs)
    #[arg(long, value_name = "REGEX", requires = "all")]
    name: Option<String>,
    /// Also probe a third-party allocator, LIB:SYMBOL=KIND (repeatable), or all of jemalloc's or mimalloc's with `jemalloc` / `mimalloc`
    #[arg(long, value_name = "SPEC")]
    allocator: Vec<String>,
    /// Capture allocations into the given file (default: memray-<process name>.<pid>.bin); with --all, the directory of the captures (default: .)
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
    if args.all {
        return all::run(&args, duration);
    }
    let Some(pid) = args.pid else {
        return Err(CliError::usage("attach", "a PID or --all is required"));
    };
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| memray_ebpf::capture_name(pid).into());
    ebpf_capture::check_output(&output, args.force)?;
    let allocators = ebpf_capture::custom_allocators("attach", &args.allocator)?;
    let mut session = ebpf_capture::load_session("attach")?;
    session.probe_allocators(allocators);
    let exited = memray_ebpf::pidfd_open(pid)
        .map_err(|e| CliError::new(format!("memray attach: process {pid}: {e}")))?;
    session
        .attach(pid, false)
        .map_err(|e| ebpf_error("attach", e))?;
    let command_line: Vec<_> = std::env::args_os().collect();
    let settings = ebpf_capture::settings(output.clone(), capture_options(&args), &command_line);
    println!("Writing profile results into {}", output.display());
    let recording = Recording {
        pid,
        exited: std::os::fd::AsFd::as_fd(&exited),
        settings,
        duration,
        on_signal: OnSignal::Stop,
        starting: false,
        follow: memray_ebpf::Follow::default(),
    };
    let outcome = ebpf_capture::record("attach", recording, session, None, args.verbose)?;
    if outcome.stop == Stop::Exited {
        println!("Process {pid} exited; the capture ends there.");
    }
    let memray = std::env::current_exe().unwrap_or_else(|_| "memray".into());
    ebpf_capture::announce_success(&memray, &output);
    Ok(())
}

fn capture_options(args: &Args) -> CaptureOptions {
    CaptureOptions {
        aggregate: args.aggregate,
        compress: !args.no_compress,
        overwrite: args.force,
        ..CaptureOptions::default()
    }
}
