//! `memray attach --ebpf PID` itself: the probes attached to the running
//! process, recorded until it stops.

use std::os::fd::AsFd;

use memray_ebpf::{OnSignal, Recording, Stop};
use memray_recorder::CaptureOptions;

use super::{all, duration, Args};
use crate::commands::ebpf_capture::{self, ebpf_error, Recorded};
use crate::commands::ebpf_live::{self, Watched};
use crate::error::{CliError, CliResult};

pub fn run(args: Args) -> CliResult {
    let duration = duration(&args)?;
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
    if !args.live {
        ebpf_capture::check_output(&output, args.force)?;
    }
    let allocators = ebpf_capture::custom_allocators("attach", &args.allocator)?;
    let mut session = ebpf_capture::load_session("attach", args.native)?;
    session.probe_allocators(allocators);
    if args.trace_python_allocators {
        session.probe_python_allocators();
    }
    let exited = memray_ebpf::pidfd_open(pid)
        .map_err(|e| CliError::new(format!("memray attach: process {pid}: {e}")))?;
    session
        .attach(pid, false)
        .map_err(|e| ebpf_error("attach", e))?;
    let command_line: Vec<_> = std::env::args_os().collect();
    if args.live {
        let watched = Watched {
            pid,
            exited: exited.as_fd(),
            settings: ebpf_capture::settings(output, live_options(&args), &command_line),
            starting: false,
            follow: memray_ebpf::Follow::default(),
        };
        return ebpf_live::watch("attach", watched, session, args.verbose).map(drop);
    }
    let settings = ebpf_capture::settings(output.clone(), capture_options(&args), &command_line);
    println!("Writing profile results into {}", output.display());
    let recording = Recording {
        pid,
        exited: exited.as_fd(),
        settings,
        duration,
        on_signal: OnSignal::Stop,
        starting: false,
        follow: memray_ebpf::Follow::default(),
    };
    let Recorded::Finished(outcome) =
        ebpf_capture::record("attach", recording, session, None, args.verbose)?
    else {
        // Said already; the process goes on.
        return Err(CliError {
            message: String::new(),
            exit_code: 1,
        });
    };
    match outcome.stop {
        Stop::Exited => println!("Process {pid} exited; the capture ends there."),
        Stop::Exec => println!("Process {pid} ran exec; the capture ends there."),
        Stop::Signal | Stop::Duration => {}
    }
    let memray = std::env::current_exe().unwrap_or_else(|_| "memray".into());
    ebpf_capture::announce_success(&memray, &output);
    Ok(())
}

/// What the live view records: the stacks asked for (a live stream is
/// neither aggregated nor compressed).
fn live_options(args: &Args) -> CaptureOptions {
    CaptureOptions {
        native_traces: args.native,
        trace_python_allocators: args.trace_python_allocators,
        ..CaptureOptions::default()
    }
}

pub(super) fn capture_options(args: &Args) -> CaptureOptions {
    CaptureOptions {
        aggregate: args.aggregate,
        native_traces: args.native,
        compress: !args.no_compress,
        overwrite: args.force,
        trace_python_allocators: args.trace_python_allocators,
        ..CaptureOptions::default()
    }
}
