//! `memray attach --ebpf --all [--name REGEX] [-o DIR]`: every CPython
//! process of the machine (whose command line matches REGEX), those that
//! exec a CPython meanwhile, and their children, each into
//! `DIR/memray-<name>.<pid>.bin`, until Ctrl-C, SIGTERM or `--duration`;
//! then one line per process: pid, command, peak, allocations, drops.

use std::path::{Path, PathBuf};
use std::time::Duration;

use memray_analysis::{statistics, PathInfo};
use memray_ebpf::{ProcessCapture, SystemRecording};
use memray_reporters::size_fmt;

use super::ebpf::capture_options;
use super::Args;
use crate::commands::ebpf_capture::{self, ebpf_error};
use crate::error::{CliError, CliResult};

pub fn run(args: &Args, duration: Option<Duration>) -> CliResult {
    let filter = args
        .name
        .as_deref()
        .map(regex_lite::Regex::new)
        .transpose()
        .map_err(|e| CliError::usage("attach", format!("--name: {e}")))?;
    let directory = args.output.clone().unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&directory).map_err(|e| {
        CliError::new(format!(
            "memray attach: cannot create {}: {e}",
            directory.display()
        ))
    })?;
    let allocators = ebpf_capture::custom_allocators("attach", &args.allocator)?;
    let mut session = ebpf_capture::load_session("attach", args.native)?;
    session.probe_allocators(allocators);
    if args.trace_python_allocators {
        session.probe_python_allocators();
    }
    let command_line: Vec<_> = std::env::args_os().collect();
    // Each capture gets its own output and its process's command line.
    let settings = ebpf_capture::settings(PathBuf::new(), capture_options(args), &command_line);
    let wanted = |command: &str| filter.as_ref().is_none_or(|f| f.is_match(command));
    println!(
        "Writing profile results of every Python process into {}",
        directory.display()
    );
    let recording = SystemRecording {
        directory,
        settings,
        duration,
        wanted: &wanted,
    };
    let outcome = recording.run(&mut session);
    if let Some(why) = session.python_allocators_refused() {
        eprintln!("memray attach: warning: --trace-python-allocators: {why}: not recorded");
    }
    session.close_after_exit();
    let outcome = outcome.map_err(|e| ebpf_error("attach", e))?;
    if args.verbose {
        eprintln!(
            "memray attach: found and attached the running processes in {:.3} s",
            outcome.attach_time.as_secs_f64()
        );
        for (reason, count) in memray_ebpf::python::give_ups(&outcome.walks) {
            eprintln!("memray attach: {count} stack walks gave up: {reason}");
        }
    }
    println!(
        "{:>8}  {:<40}  {:>10}  {:>12}  {:>6}  capture",
        "pid", "command", "peak", "allocations", "drops"
    );
    let mut failed = None;
    for capture in &outcome.captures {
        if let Err(error) = &capture.finished.result {
            failed = Some(format!("memray attach: {error}"));
        }
        println!("{}", summary_line(capture));
    }
    for capture in &outcome.captures {
        ebpf_capture::warn_of_gaps("attach", &capture.finished);
    }
    failed.map_or(Ok(()), |message| Err(CliError::new(message)))
}

/// pid, command (short), peak, allocations, drops and file; the
/// peak and count are `-` where the capture cannot tell them (aggregated).
fn summary_line(capture: &ProcessCapture) -> String {
    let output = &capture.finished.output;
    let (peak, allocations) = peak_and_allocations(output)
        .map(|(peak, count)| (size_fmt(peak), count.to_string()))
        .unwrap_or_else(|| ("-".into(), "-".into()));
    let command = short_command(&capture.command);
    format!(
        "{:>8}  {:<40}  {:>10}  {:>12}  {:>6}  {}",
        capture.finished.pid,
        command,
        peak,
        allocations,
        capture.finished.lost_records,
        output.display()
    )
}

/// The command line with its program's directory left out, cut to 40
/// characters.
fn short_command(command: &str) -> String {
    let (program, arguments) = command.split_once(' ').unwrap_or((command, ""));
    let program = program.rsplit('/').next().unwrap_or(program);
    let short = format!("{program} {arguments}");
    match short.char_indices().nth(39) {
        Some((cut, _)) => format!("{}…", &short[..cut]),
        None => short.trim_end().to_string(),
    }
}

fn peak_and_allocations(output: &Path) -> Option<(u64, u64)> {
    let capture = memray_analysis::CaptureFile::open(output).ok()?;
    let collector = statistics(&capture).ok()?;
    let stats = collector.finish(&capture, PathInfo::default(), 0);
    Some((stats.peak_bytes, stats.total_allocations))
}
