//! `sudo memray run --ebpf`: the program runs as plain `python` (nothing is
//! loaded into it), started held before `exec` as the user who ran sudo,
//! recorded by the probes from outside. Its exit status and death by signal
//! become ours; SIGINT and SIGTERM are passed on to it. With `--live` the
//! live view has the terminal (`ebpf_live.rs`): the program's output is
//! held back, as memray's `run --live` does. With `--live-remote` the
//! capture goes to the `memray live PORT` that connects, the program held
//! until it has.

use std::ffi::OsString;
use std::io::{PipeReader, Write};
use std::net::{TcpListener, TcpStream};

use memray_ebpf::{
    resolve_interpreter, Follow, HeldProgram, OnSignal, ProgramExit, ProgramOutput, Recording,
    RunAs, Session,
};
use memray_recorder::{describe_os_error, CaptureOptions, LiveListener};

use super::{default_output, live, own_command_line, program, Args, Mode};
use crate::commands::ebpf_capture::{self, ebpf_error, Recorded};
use crate::commands::ebpf_live::{self, Watched};
use crate::commands::live::valid_port;
use crate::error::{CliError, CliResult};

pub fn run(args: Args) -> CliResult {
    // The live modes' refusals are memray's.
    live::reject_unsupported(&args)?;
    let (mode, target) = program(&args)?;
    // A port in use is said before anything runs.
    let remote = match args.live_remote {
        true => Some(live::bind(args.live_port.map(valid_port).transpose()?)?),
        false => None,
    };
    let allocators = ebpf_capture::custom_allocators("run", &args.allocator)?;
    let mut session = ebpf_capture::load_session("run", args.native)?;
    session.probe_allocators(allocators);
    if args.trace_python_allocators {
        session.probe_python_allocators();
    }
    let run_as = RunAs::invoking_user().map_err(|e| ebpf_error("run", e))?;
    let python = args.python.clone().unwrap_or_else(|| "python3".into());
    let python = resolve_interpreter(python.as_os_str(), run_as.as_ref())
        .map_err(|e| ebpf_error("run", e))?
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
    let to_file = !args.live && !args.live_remote;
    if to_file {
        ebpf_capture::check_output(&output, args.force)?;
    }
    let follow = Follow {
        forks: args.follow_fork,
        execs: args.follow_exec,
    };
    session
        .attach(pid, follow.forks)
        .and_then(|()| session.expect_exec(pid))
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
    let mut settings = ebpf_capture::settings(output.clone(), options, &own_command_line(&memray));
    if let Some((listener, port)) = remote {
        match wait_for_reader(listener, port)? {
            Some(reader) => settings.live = Some(LiveListener::connected(reader)),
            // Ctrl-C: the program, still held, never runs.
            None => return Ok(()),
        }
    }
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
    if !args.quiet && to_file {
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
    let finished = matches!(recorded?, Recorded::Finished(_));
    if !args.quiet && to_file && finished {
        ebpf_capture::announce_success(&memray, &output);
    }
    end_as(exit)
}

/// `--live-remote`: invites the reader, as memray does, and waits for it;
/// `None` if Ctrl-C comes first.
fn wait_for_reader(listener: TcpListener, port: u16) -> Result<Option<TcpStream>, CliError> {
    println!("Run 'memray live {port}' in another shell to see live results");
    let _ = std::io::stdout().flush();
    let failed =
        |e: std::io::Error| CliError::new(format!("memray run: {}", describe_os_error(&e)));
    listener.set_nonblocking(true).map_err(failed)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(failed)?;
    let reader = runtime
        .block_on(async {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            tokio::select! {
                accepted = listener.accept() => Ok(Some(accepted?.0.into_std()?)),
                interrupted = tokio::signal::ctrl_c() => interrupted.map(|()| None),
            }
        })
        .map_err(failed)?;
    if let Some(reader) = &reader {
        reader.set_nonblocking(false).map_err(failed)?;
    }
    Ok(reader)
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
