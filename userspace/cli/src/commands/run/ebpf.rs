//! `sudo memray run --ebpf`: the program runs as plain `python` (nothing is
//! loaded into it), started held before `exec` as the user who ran sudo,
//! recorded by the probes from outside. Its exit status and death by signal
//! become ours; SIGINT and SIGTERM are passed on to it.

use std::ffi::OsString;

use memray_ebpf::{Follow, HeldProgram, OnSignal, ProgramExit, Recording, RunAs};
use memray_recorder::CaptureOptions;

use super::{default_output, own_command_line, program, Args, Mode};
use crate::commands::ebpf_capture::{self, ebpf_error};
use crate::error::{CliError, CliResult};

pub fn run(args: Args) -> CliResult {
    reject_unsupported(&args)?;
    let (mode, target) = program(&args)?;
    let allocators = ebpf_capture::custom_allocators("run", &args.allocator)?;
    let mut session = ebpf_capture::load_session("run", args.native)?;
    session.probe_allocators(allocators);
    if args.trace_python_allocators {
        session.probe_python_allocators();
    }
    let run_as = RunAs::invoking_user().map_err(|e| ebpf_error("run", e))?;
    let python = args
        .python
        .clone()
        .unwrap_or_else(|| "python3".into())
        .into_os_string();
    let mut held = HeldProgram::start(
        &python,
        &python_arguments(mode, &args.program),
        run_as.as_ref(),
    )
    .map_err(|e| ebpf_error("run", e))?;
    let pid = held.pid();
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| default_output(mode, target, pid));
    ebpf_capture::check_output(&output, args.force)?;
    let follow = Follow {
        forks: args.follow_fork,
        execs: args.follow_exec,
    };
    session
        .attach(pid, follow.forks)
        .map_err(|e| ebpf_error("run", e))?;
    // Without the hold (not CPython, or its libpython not found) stacks
    // start once the interpreter is found, milliseconds into the program.
    session
        .hold_interpreter(pid, held.path())
        .map_err(|e| ebpf_error("run", e))?;
    let memray = std::env::current_exe()
        .map_err(|e| CliError::new(format!("memray run: cannot locate myself: {e}")))?;
    let options = CaptureOptions {
        aggregate: args.aggregate,
        trace_python_allocators: args.trace_python_allocators,
        native_traces: args.native,
        compress: !args.no_compress,
        buffered: args.buffered_file_io,
        overwrite: args.force,
    };
    let settings = ebpf_capture::settings(output.clone(), options, &own_command_line(&memray));
    if !args.quiet {
        println!("Writing profile results into {}", output.display());
    }
    held.release().map_err(|e| ebpf_error("run", e))?;
    let recording = Recording {
        pid,
        exited: held.pidfd(),
        settings,
        duration: None,
        on_signal: OnSignal::Forward,
        starting: true,
        follow,
    };
    let recorded = ebpf_capture::record("run", recording, session, run_as.as_ref(), args.verbose);
    let exit = held.wait().map_err(|e| ebpf_error("run", e))?;
    recorded?;
    if !args.quiet {
        ebpf_capture::announce_success(&memray, &output);
    }
    end_as(exit)
}

/// `--ebpf` does not combine with these yet.
fn reject_unsupported(args: &Args) -> CliResult {
    let unsupported = [(args.live, "--live"), (args.live_remote, "--live-remote")];
    match unsupported.iter().find(|(set, _)| *set) {
        Some((_, flag)) => Err(CliError::new(format!(
            "memray run: --ebpf with {flag} is not supported yet"
        ))),
        None => Ok(()),
    }
}

/// `python file.py …`, `python -m module …` or `python -c code …`.
fn python_arguments(mode: Mode, program: &[OsString]) -> Vec<OsString> {
    let flag = match mode {
        Mode::File => None,
        Mode::Module => Some("-m"),
        Mode::Code => Some("-c"),
    };
    flag.map(OsString::from)
        .into_iter()
        .chain(program.iter().cloned())
        .collect()
}

/// Ends as the program ended: its exit status, or its signal.
fn end_as(exit: ProgramExit) -> CliResult {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    match exit {
        ProgramExit::Exited(0) => Ok(()),
        ProgramExit::Exited(code) => std::process::exit(code),
        ProgramExit::Signaled(signal) => {
            // SAFETY: resetting a disposition and raising a signal have no
            // memory preconditions.
            unsafe {
                libc::signal(signal, libc::SIG_DFL);
                libc::raise(signal);
            }
            std::process::exit(128 + signal)
        }
    }
}
