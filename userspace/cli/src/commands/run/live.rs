//! `memray run --live-remote [--live-port N]` and `memray run --live`: the
//! capture goes to a live reader over TCP instead of a file.
//!
//! We bind the loopback port here (a port in use is said before anything
//! runs, and the kernel picks a free one when none is given) and hand the
//! listening socket to the interpreter; the bootstrap invites the reader
//! and the tracker waits for it there before the program starts. `--live-remote` then becomes the
//! interpreter, as a plain `run` does; `--live` runs it in the background
//! and shows the live view (`memray-live`) in the foreground.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Stdio};
use std::thread::{self, JoinHandle};

use memray_activation::flags;
use memray_recorder::describe_os_error;

use super::{Args, TrackedProgram};
use crate::commands::live::valid_port;
use crate::error::{CliError, CliResult};

pub fn run(args: Args) -> CliResult {
    let port = args.live_port.map(valid_port).transpose()?;
    let tracked = TrackedProgram::new(&args)?;
    let (listener, port) = bind(port)?;
    let socket = inheritable(&listener)?;
    let mut command = tracked.command(&args, &OsString::from(socket.to_string()), flags::LIVE)?;
    if args.live_remote {
        // The bootstrap says which port to connect to, once Ctrl-C can stop it.
        return Err(tracked.cannot_run(command.exec()));
    }
    // Like memray: the program's output would garble the view.
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|e| tracked.cannot_run(e))?;
    drop(listener);
    let stderr = collect(child.stderr.take());
    let shown = watch(port);
    if matches!(shown, Ok(false)) {
        // The program failed before tracking: its own words say why.
        let _ = child.wait();
    }
    finish(child, stderr)?;
    shown.map(drop)
}

/// The live view of the session on `port`, until the user quits; false if
/// the program ended before tracking started (nothing to show).
fn watch(port: u16) -> Result<bool, CliError> {
    let failed =
        |e: std::io::Error| CliError::new(format!("memray run: {}", describe_os_error(&e)));
    let stream = memray_live::connect(port).map_err(CliError::new)?;
    let feed = memray_live::Feed::start(stream).map_err(failed)?;
    if !feed.started() {
        return Ok(false);
    }
    memray_live::show(&feed).map_err(failed)?;
    Ok(true)
}

/// After the view closed: a program that failed has its error output shown
/// and its exit status passed on; one still running is terminated (memray's
/// `terminate()`).
fn finish(mut child: Child, stderr: JoinHandle<Vec<u8>>) -> CliResult {
    match child.try_wait() {
        Ok(Some(status)) => {
            let output = stderr.join().unwrap_or_default();
            match status.code() {
                Some(0) => Ok(()),
                code => {
                    let _ = std::io::stderr().write_all(&output);
                    // Its own words were just shown: nothing to add.
                    Err(CliError {
                        message: String::new(),
                        exit_code: code.unwrap_or(1),
                    })
                }
            }
        }
        _ => {
            // SAFETY: signalling our own child, which we have not reaped yet.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            let _ = child.wait();
            Ok(())
        }
    }
}

/// Reads the program's error output as it comes, so that it never blocks on a full pipe.
pub(super) fn collect(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut output = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut output);
        }
        output
    })
}

/// The listening socket of `--live-port` (else one the kernel picks) and its port.
pub(super) fn bind(port: Option<u16>) -> Result<(TcpListener, u16), CliError> {
    let listener = listen(port)?;
    let port = listener
        .local_addr()
        .map_err(|e| CliError::new(format!("memray run: {}", describe_os_error(&e))))?
        .port();
    Ok((listener, port))
}

/// The loopback address only: the capture shows the program's code and data.
fn listen(port: Option<u16>) -> Result<TcpListener, CliError> {
    let port = port.unwrap_or(0);
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).map_err(|e| {
        CliError::new(format!(
            "memray run: cannot listen on 127.0.0.1:{port}: {}",
            describe_os_error(&e)
        ))
    })
}

/// The listener's descriptor, made to survive `exec` into the interpreter.
fn inheritable(listener: &TcpListener) -> Result<RawFd, CliError> {
    let fd = listener.as_raw_fd();
    // SAFETY: clearing FD_CLOEXEC on a descriptor we own.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } < 0 {
        let error = std::io::Error::last_os_error();
        return Err(CliError::new(format!(
            "memray run: {}",
            describe_os_error(&error)
        )));
    }
    Ok(fd)
}

/// memray's refusals of live mode, in argparse's order and words.
pub fn reject_unsupported(args: &Args) -> CliResult {
    if let Some(message) = exclusive_conflict(args) {
        return Err(CliError::usage("run", message));
    }
    let live = args.live || args.live_remote;
    let refusals = [
        (
            args.live_port.is_some() && !args.live_remote,
            "The --live-port argument requires --live-remote",
        ),
        (
            args.follow_fork && live,
            "--follow-fork cannot be used with the live TUI",
        ),
        (
            args.aggregate && live,
            "--aggregate cannot be used with the live TUI",
        ),
        (
            args.buffered_file_io && live,
            "--buffered-file-io cannot be used with --live/--live-remote",
        ),
    ];
    match refusals.iter().find(|(refused, _)| *refused) {
        // memray checks these with its top-level parser.
        Some((_, message)) => Err(CliError {
            message: format!("memray: error: {message}"),
            exit_code: 2,
        }),
        None => Ok(()),
    }
}

/// argparse's mutually exclusive `--live`, `--live-remote`, `-o/--output`:
/// the later one on the command line is named first.
fn exclusive_conflict(args: &Args) -> Option<String> {
    let own: Vec<OsString> = std::env::args_os().skip(2).collect();
    let options = &own[..own.len().saturating_sub(args.program.len())];
    let position = |matches: &dyn Fn(&str) -> bool| {
        options
            .iter()
            .position(|word| word.to_str().is_some_and(matches))
    };
    let mut given: Vec<(usize, &str)> = [
        (args.live, position(&|w| w == "--live"), "--live"),
        (
            args.live_remote,
            position(&|w| w == "--live-remote"),
            "--live-remote",
        ),
        (
            args.output.is_some(),
            position(&|w| w == "--output" || w.starts_with("--output=") || w.starts_with("-o")),
            "-o/--output",
        ),
    ]
    .into_iter()
    .filter(|(set, _, _)| *set)
    .map(|(_, at, name)| (at.unwrap_or(usize::MAX), name))
    .collect();
    given.sort();
    match given.as_slice() {
        [(_, first), (_, second), ..] => Some(format!(
            "argument {second}: not allowed with argument {first}"
        )),
        _ => None,
    }
}
