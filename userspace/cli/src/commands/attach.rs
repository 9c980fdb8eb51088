//! `memray attach --ebpf PID`: records a running CPython process from
//! outside, nothing loaded into it, until Ctrl-C, SIGTERM, `--duration` or
//! its exit; then the probes are removed and the process goes on. Without
//! `--ebpf` (memray's injection through gdb/lldb) it is not available yet;
//! with it, Linux only (`attach/ebpf.rs`).

use std::path::PathBuf;

use crate::error::{CliError, CliResult};

#[cfg(target_os = "linux")]
mod ebpf;

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
}

pub fn run(args: Args) -> CliResult {
    if !args.ebpf {
        return Err(CliError::new(
            "memray attach: not available yet in memray-rs without --ebpf",
        ));
    }
    attach_ebpf(args)
}

#[cfg(target_os = "linux")]
fn attach_ebpf(args: Args) -> CliResult {
    ebpf::run(args)
}

#[cfg(not(target_os = "linux"))]
fn attach_ebpf(_: Args) -> CliResult {
    Err(super::ebpf_is_linux_only("attach"))
}
