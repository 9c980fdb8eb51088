//! `memray run`: run a Python program with the tracker library preloaded.
//!
//! The command replaces itself (`exec`) with the interpreter, so the program's
//! pid, standard streams, exit status and death by signal are its own. The
//! interpreter starts a small bootstrap (`run_bootstrap.py`) that prepares
//! `sys.argv`, `sys.path[0]` and `__main__` exactly as `python file.py`,
//! `python -m module` or `python -c code` would, activates the tracker through
//! the preloaded library and runs the program.

use std::ffi::{OsStr, OsString};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{CliError, CliResult};

const BOOTSTRAP: &str = include_str!("run_bootstrap.py");
const TRACKER_LIBRARY: &str = "libmemray_tracker.so";

#[derive(clap::Args, Debug)]
#[command(
    override_usage = "memray run [-m module | -c cmd | file] [args]",
    about = "Run the specified application and track memory usage"
)]
pub struct Args {
    /// Output file name (default: <process_name>.<pid>.bin)
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Start a live tracking session and immediately connect a live server
    #[arg(long)]
    live: bool,
    /// Start a live tracking session and wait until a client connects
    #[arg(long)]
    live_remote: bool,
    /// Port to use when starting live tracking (default: random free port)
    #[arg(long, short = 'p')]
    live_port: Option<u16>,
    /// Write aggregated stats to the output file instead of all allocations
    #[arg(long)]
    aggregate: bool,
    /// Track native (C/C++) stack frames as well
    #[arg(long)]
    native: bool,
    /// Track allocations with eBPF uprobes instead of the preloaded library
    #[arg(long)]
    ebpf: bool,
    /// Record allocations in child processes forked from the tracked script
    #[arg(long)]
    follow_fork: bool,
    /// Record allocations made by the pymalloc allocator
    #[arg(long)]
    trace_python_allocators: bool,
    /// Don't show any tracking-specific output while running
    #[arg(short, long)]
    quiet: bool,
    /// If the output file already exists, overwrite it
    #[arg(short, long)]
    force: bool,
    /// Buffer captured records in memory instead of using memory mapped IO
    #[arg(long)]
    buffered_file_io: bool,
    /// Compress the resulting file using lz4 after tracking completes
    #[arg(long, conflicts_with = "no_compress")]
    compress_on_exit: bool,
    /// Do not compress the resulting file using lz4
    #[arg(long)]
    no_compress: bool,
    /// Program passed in as string
    #[arg(short = 'c', conflicts_with = "run_as_module")]
    run_as_cmd: bool,
    /// Run library module as a script (terminates option list)
    #[arg(short = 'm')]
    run_as_module: bool,
    /// The Python interpreter to run (default: `python3` on PATH)
    #[arg(long, value_name = "PATH")]
    python: Option<PathBuf>,
    /// The file, module or code to run, then its arguments
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "file"
    )]
    program: Vec<OsString>,
}

/// What the interpreter is asked to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    File,
    Module,
    Code,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::File => "file",
            Mode::Module => "module",
            Mode::Code => "code",
        }
    }
}

/// Tracker flags, as the library's activation function reads them.
#[path = "../../../tracker/src/flags.rs"]
mod flags;

pub fn run(args: Args) -> CliResult {
    reject_unsupported(&args)?;
    let mode = if args.run_as_module {
        Mode::Module
    } else if args.run_as_cmd {
        Mode::Code
    } else {
        Mode::File
    };
    let (target, program_args) = args
        .program
        .split_first()
        .ok_or_else(|| CliError::new("memray run: the following arguments are required: file"))?;
    if mode == Mode::Code && Path::new(target).exists() {
        return Err(CliError::new(
            "memray run: error: remove the option -c to run a file",
        ));
    }
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| default_output(mode, target));
    let memray = std::env::current_exe()
        .map_err(|e| CliError::new(format!("memray run: cannot locate myself: {e}")))?;
    let library = tracker_library(&memray)?;
    let python = args
        .python
        .clone()
        .unwrap_or_else(|| PathBuf::from("python3"));

    let mut command = Command::new(&python);
    command
        .arg("-c")
        .arg(BOOTSTRAP)
        .arg(&library)
        .arg(&output)
        .arg(tracker_flags(&args).to_string())
        .arg(mode.name())
        .arg(if args.quiet { "1" } else { "0" })
        .arg(&memray)
        .arg(command_line(memray.as_os_str()))
        .arg(target)
        .args(program_args)
        .env("LD_PRELOAD", preload_value(&library));
    let error = command.exec();
    Err(CliError::new(format!(
        "memray run: cannot run {}: {error}",
        python.display()
    )))
}

/// memray's header `command_line`: this command's own, as `" ".join(sys.argv)` gives it.
fn command_line(memray: &OsStr) -> OsString {
    let mut line = memray.to_os_string();
    for arg in std::env::args_os().skip(1) {
        line.push(" ");
        line.push(arg);
    }
    line
}

fn reject_unsupported(args: &Args) -> CliResult {
    let unsupported = [
        (args.live, "--live"),
        (args.live_remote, "--live-remote"),
        (args.native, "--native"),
        (args.ebpf, "--ebpf"),
    ];
    if let Some((_, flag)) = unsupported.iter().find(|(set, _)| *set) {
        return Err(CliError::new(format!(
            "memray run: {flag} is not supported yet"
        )));
    }
    if args.live_port.is_some() {
        return Err(CliError::new(
            "memray run: error: The --live-port argument requires --live-remote",
        ));
    }
    Ok(())
}

fn tracker_flags(args: &Args) -> u32 {
    [
        (args.aggregate, flags::AGGREGATE),
        (args.follow_fork, flags::FOLLOW_FORK),
        (args.trace_python_allocators, flags::TRACE_PYTHON_ALLOCATORS),
        (!args.no_compress, flags::COMPRESS),
        (args.buffered_file_io, flags::BUFFERED),
        (args.force, flags::FORCE),
    ]
    .iter()
    .filter(|(set, _)| *set)
    .fold(0, |all, (_, flag)| all | flag)
}

/// memray's default: `memray-<script>.<pid>.bin` next to the script
/// (`string` for `-c`, the module name for `-m`). The pid is ours: `exec` keeps it.
fn default_output(mode: Mode, target: &OsStr) -> PathBuf {
    let target = Path::new(target);
    let (directory, name) = match mode {
        Mode::Code => (Path::new(""), OsStr::new("string")),
        _ => (
            target.parent().unwrap_or(Path::new("")),
            target.file_name().unwrap_or(target.as_os_str()),
        ),
    };
    let mut file = OsString::from("memray-");
    file.push(name);
    file.push(format!(".{}.bin", std::process::id()));
    directory.join(file)
}

/// The tracker library is built next to the `memray` executable.
fn tracker_library(memray: &Path) -> Result<PathBuf, CliError> {
    let library = memray.with_file_name(TRACKER_LIBRARY);
    if library.exists() {
        Ok(library)
    } else {
        Err(CliError::new(format!(
            "memray run: the tracker library {} is missing",
            library.display()
        )))
    }
}

/// Our library first, then whatever the user preloads already.
fn preload_value(library: &Path) -> OsString {
    let mut value = library.as_os_str().to_os_string();
    if let Some(existing) = std::env::var_os("LD_PRELOAD").filter(|v| !v.is_empty()) {
        value.push(":");
        value.push(existing);
    }
    value
}
