//! `sudo memray run --ebpf`: the program runs as plain `python` (nothing is
//! loaded into it), started held before `exec` as the user who ran sudo,
//! recorded by the probes from outside. Its exit status and death by signal
//! become ours; SIGINT and SIGTERM are passed on to it. With `--live` the
//! live view has the terminal (`ebpf_live.rs`): the program's output is
//! held back, as memray's `run --live` does.

use std::ffi::OsString;
use std::io::{PipeReader, Write};

use memray_ebpf::{
    Follow, HeldProgram, OnSignal, ProgramExit, ProgramOutput, Recording, RunAs, Session,
};
use memray_recorder::CaptureOptions;

use super::{default_output, live, own_command_line, program, Args, Mode};
use crate::commands::ebpf_capture::{self, ebpf_error};
use crate::commands::ebpf_live::{self, Watched};
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
    let (program_output, errors) = if args.live {
        let (errors, stderr) = std::io::pipe().map_err(|e| ebpf_error("run", e))?;
        (
            ProgramOutput::Quiet {
                stderr: stderr.into(),
            },
            Some(errors),
        )
    } else {
        (ProgramOutput::Inherited, None)
    };
    let mut held = HeldProgram::start(
        &python,
        &python_arguments(mode, &args.program),
        run_as.as_ref(),
        program_output,
    )
    .map_err(|e| ebpf_error("run", e))?;
    let pid = held.pid();
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| default_output(mode, target, pid));
    if !args.live {
        ebpf_capture::check_output(&output, args.force)?;
    }
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
    if let Some(errors) = errors {
        held.release().map_err(|e| ebpf_error("run", e))?;
        let watched = Watched {
            pid,
            exited: held.pidfd(),
            settings,
            starting: true,
            follow,
        };
        return live_view(&held, watched, session, errors, args.verbose);
    }
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

/// `--live`: the view until it is left or the program ends. A program
/// still running is then ended (SIGTERM, as memray does); one that failed
/// has its error output shown and its exit status passed on.
fn live_view(
    held: &HeldProgram,
    watched: Watched<'_>,
    session: Session,
    errors: PipeReader,
    verbose: bool,
) -> CliResult {
    let errors = live::collect(Some(errors));
    let shown = ebpf_live::watch("run", watched, session, verbose);
    let left_running = !held.has_ended();
    if left_running {
        held.terminate();
    }
    let exit = held.wait().map_err(|e| ebpf_error("run", e))?;
    let errors = errors.join().unwrap_or_default();
    shown?;
    if left_running || exit == ProgramExit::Exited(0) {
        return Ok(());
    }
    let _ = std::io::stderr().write_all(&errors);
    end_as(exit)
}

/// The live view's refusals are memray's (`live::reject_unsupported`);
/// `--ebpf` does not combine with these yet.
fn reject_unsupported(args: &Args) -> CliResult {
    live::reject_unsupported(args)?;
    if args.live_remote {
        return Err(CliError::new(
            "memray run: --ebpf with --live-remote is not supported yet (--live is)",
        ));
    }
    Ok(())
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
