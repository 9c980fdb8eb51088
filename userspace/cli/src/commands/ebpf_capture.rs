//! What `run --ebpf` and `attach --ebpf` share: the capture's settings, the
//! recording itself, its file handed to the invoking user, and the messages.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use memray_ebpf::{python, CustomAllocator, Finished, Outcome, Recording, RunAs, Session};
use memray_recorder::{describe_os_error, CaptureOptions, CaptureSettings, Header};

use crate::error::CliError;

/// The settings of a capture written to `output`; `command_line` is
/// memray's own (the header's `command_line`).
pub fn settings(
    output: PathBuf,
    options: CaptureOptions,
    command_line: &[OsString],
) -> CaptureSettings {
    let command_line = command_line
        .iter()
        .map(|arg| arg.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    CaptureSettings {
        output,
        live: None,
        options,
        header: Header {
            command_line,
            ..Header::default()
        },
    }
}

/// memray's refusal to replace a file without `-f`, said before anything
/// runs (the capture is created once the interpreter is found), in the
/// words the capture's sink uses.
pub fn check_output(output: &Path, force: bool) -> Result<(), CliError> {
    if output.exists() && !force {
        return Err(CliError::new(format!(
            "Output file {} already exists. Memray can overwrite it with the --force CLI argument.",
            output.display()
        )));
    }
    Ok(())
}

/// Overrides the ring buffer's size in bytes (tests make it tiny to lose
/// records on purpose; docs/development.md).
const RING_BYTES_VARIABLE: &str = "MEMRAY_EBPF_RING_BYTES";

/// The probes loaded (with room for native stack copies if `native`),
/// refusing in one line without the privileges.
pub fn load_session(command: &str, native: bool) -> Result<Session, CliError> {
    memray_ebpf::require_privileges().map_err(|e| ebpf_error(command, e))?;
    let mut options = memray_ebpf::Options {
        native_stacks: native,
        ..memray_ebpf::Options::default()
    };
    if let Some(value) = std::env::var_os(RING_BYTES_VARIABLE) {
        options.ring_buffer_bytes = value
            .to_str()
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|bytes| bytes.is_power_of_two() && *bytes >= 4096)
            .ok_or_else(|| {
                ebpf_error(
                    command,
                    format!(
                        "{RING_BYTES_VARIABLE}={}: not a power of two of at least 4096",
                        value.to_string_lossy()
                    ),
                )
            })?;
    }
    Session::load(options).map_err(|e| ebpf_error(command, e))
}

/// The third-party allocators of the `--allocator` options.
pub fn custom_allocators(
    command: &str,
    specs: &[String],
) -> Result<Vec<CustomAllocator>, CliError> {
    let mut allocators = Vec::new();
    for spec in specs {
        let parsed = CustomAllocator::parse(spec)
            .map_err(|e| CliError::usage(command, format!("--allocator {e}")))?;
        allocators.extend(parsed);
    }
    Ok(allocators)
}

pub fn ebpf_error(command: &str, error: impl std::fmt::Display) -> CliError {
    CliError::new(format!("memray {command}: {error}"))
}

/// How a recording went.
pub enum Recorded {
    Finished(Box<Outcome>),
    /// Its capture could not be written (a full disk, a live reader gone):
    /// said as memray says it, the probes off, the program going on.
    Deactivated,
}

/// Records, then reports how it went: the file (given to `owner`), lost
/// records, or why no capture was written; with `verbose`, why stack walks
/// gave up.
pub fn record(
    command: &str,
    recording: Recording<'_>,
    mut session: Session,
    owner: Option<&RunAs>,
    verbose: bool,
) -> Result<Recorded, CliError> {
    let pid = recording.pid;
    let outcome = recording.run(&mut session);
    let refused = session.python_allocators_refused().map(str::to_string);
    session.close_after_exit();
    if let Some(why) = refused {
        return Err(CliError::new(format!(
            "memray {command}: --trace-python-allocators: {why}"
        )));
    }
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(python::Error::Ebpf(memray_ebpf::Error::Capture(error))) => {
            eprintln!("memray {command}: {}", describe_os_error(&error));
            eprintln!("Failed to write output, deactivating tracking");
            return Ok(Recorded::Deactivated);
        }
        Err(error) => return Err(ebpf_error(command, error)),
    };
    if verbose {
        for (reason, count) in memray_ebpf::python::give_ups(&outcome.walks) {
            eprintln!("memray {command}: {count} stack walks gave up: {reason}");
        }
    }
    let Some(finished) = &outcome.capture else {
        let why = outcome
            .unregistered
            .as_ref()
            .map_or("it ended first".to_string(), ToString::to_string);
        return Err(CliError::new(format!(
            "memray {command}: no capture: the Python interpreter of process {pid} was not found ({why})"
        )));
    };
    // `attach` says it of its one process (Stop::Exec).
    if outcome.left_at_exec > 0 && command == "run" {
        eprintln!(
            "memray run: {} recorded process(es) ran exec, where their recording ends; \
             --follow-exec records the Python programs started through exec",
            outcome.left_at_exec
        );
    }
    for finished in [finished].into_iter().chain(&outcome.children) {
        let output = &finished.output;
        if let Err(error) = &finished.result {
            return Err(CliError::new(format!("memray {command}: {error}")));
        }
        if finished.lost_records > 0 {
            eprintln!(
                "memray {command}: warning: {} allocation records were lost (the ring buffer was full); {} misses them",
                finished.lost_records,
                output.display()
            );
        }
        warn_of_gaps(command, finished);
        if let Some(user) = owner {
            give_to(output, user).map_err(|e| {
                CliError::new(format!(
                    "memray {command}: cannot give {} to {}: {e}",
                    output.display(),
                    user.name
                ))
            })?;
        }
    }
    Ok(Recorded::Finished(Box::new(outcome)))
}

/// Says what a capture holds less of than its records: native stacks whose
/// copy was lost, frames whose code object could not be named.
pub fn warn_of_gaps(command: &str, finished: &Finished) {
    if finished.native_stacks_missing > 0 {
        eprintln!(
            "memray {command}: warning: {} allocations of process {} have no native stack (its copy found the ring buffer full)",
            finished.native_stacks_missing, finished.pid
        );
    }
    if finished.unnamed_code_objects > 0 {
        eprintln!(
            "memray {command}: warning: {} code objects of process {} were freed before their records were read; their frames show as <unknown>",
            finished.unnamed_code_objects, finished.pid
        );
    }
}

/// The file belongs to the user who ran sudo, not to root.
fn give_to(path: &Path, user: &RunAs) -> std::io::Result<()> {
    std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
}

/// memray's closing message (`memray`: our own path).
pub fn announce_success(memray: &Path, output: &Path) {
    println!(
        "[memray] Successfully generated profile results.\n\n\
         You can now generate reports from the stored allocation records.\n\
         Some example commands to generate reports:\n\n\
         {} flamegraph {}",
        memray.display(),
        output.display()
    );
}
