//! `memray attach --ebpf PID`: records a running CPython process from
//! outside, nothing loaded into it, until Ctrl-C, SIGTERM, `--duration` or
//! its exit; then the probes are removed and the process goes on (Linux only,
//! `attach/ebpf.rs`); `--all` records every CPython process of the machine
//! (`attach/all.rs`); with `--live` the capture goes to the live view instead
//! (`ebpf_live.rs`), and leaving the view detaches. Without `--ebpf`, on
//! CPython 3.14+: a `memray.Tracker` started inside the process through
//! `sys.remote_exec` (`attach/inside.rs`), until Ctrl-C, SIGTERM,
//! `--duration`, `memray detach PID` or the process's exit.

use std::path::PathBuf;

use crate::error::{CliError, CliResult};

#[cfg(target_os = "linux")]
mod all;
#[cfg(target_os = "linux")]
mod ebpf;
#[cfg(target_os = "linux")]
mod inside;

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
    /// Show the live view instead of writing a file; leaving it detaches
    #[arg(long, conflicts_with_all = ["all", "output", "force", "aggregate", "no_compress", "duration"])]
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
    /// Track native (C/C++) stack frames as well
    #[arg(long)]
    native: bool,
    /// Record allocations made by the pymalloc allocator
    #[arg(long)]
    trace_python_allocators: bool,
    /// Record allocations in child processes forked from the tracked script (without --ebpf)
    #[arg(long)]
    follow_fork: bool,
}

pub fn run(args: Args) -> CliResult {
    if args.ebpf {
        attach_ebpf(args)
    } else if args.all {
        Err(CliError::usage(
            "attach",
            "--all records through eBPF: add --ebpf",
        ))
    } else {
        attach_inside(args)
    }
}

/// `--duration`, checked.
#[cfg(target_os = "linux")]
fn duration(args: &Args) -> Result<Option<std::time::Duration>, CliError> {
    args.duration
        .map(|seconds| {
            std::time::Duration::try_from_secs_f64(seconds)
                .map_err(|_| CliError::usage("attach", format!("invalid duration: {seconds}")))
        })
        .transpose()
}

#[cfg(target_os = "linux")]
fn attach_ebpf(args: Args) -> CliResult {
    ebpf::run(args)
}

#[cfg(not(target_os = "linux"))]
fn attach_ebpf(_: Args) -> CliResult {
    Err(super::ebpf_is_linux_only("attach"))
}

#[cfg(target_os = "linux")]
fn attach_inside(args: Args) -> CliResult {
    inside::run(args)
}

#[cfg(not(target_os = "linux"))]
fn attach_inside(_: Args) -> CliResult {
    Err(super::remote_tracking_is_linux_only("attach"))
}
