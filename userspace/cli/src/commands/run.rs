//! `memray run`: run a Python program with the tracker library preloaded.
//!
//! The command replaces itself (`exec`) with the interpreter, so the program's
//! pid, standard streams, exit status and death by signal are its own. The
//! interpreter runs the bootstrap module (`memray/_bootstrap.py`), which
//! prepares `sys.argv`, `sys.path[0]` and `__main__` exactly as `python
//! file.py`, `python -m module` or `python -c code` would, activates the
//! tracker through the preloaded library and runs the program.
//!
//! The bootstrap is handed over as a memory file (`python /dev/fd/N …`), its
//! settings and our own command line as separate arguments: the program's
//! arguments are never joined into one string (the kernel limits each to
//! 128 KiB), `ps` shows a short command line, nothing is left in the
//! environment, and the bootstrap runs as a plain script (one frame).
//!
//! `--ebpf` records from outside instead (`run/ebpf.rs`, Linux only); `--live`
//! and `--live-remote` stream the capture to a live reader (`run/live.rs`).
//!
//! On macOS the library is inserted with `DYLD_INSERT_LIBRARIES` and the
//! bootstrap is an unlinked temporary file (no memory files there).

use std::ffi::{OsStr, OsString};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use memray_activation::flags;

use crate::error::{CliError, CliResult};

mod bootstrap;
#[cfg(target_os = "linux")]
mod ebpf;
mod live;

const TRACKER_LIBRARY: &str = if cfg!(target_os = "macos") {
    "libmemray_tracker.dylib"
} else {
    "libmemray_tracker.so"
};
/// The loader's variable that inserts libraries ahead of the program's own.
const PRELOAD_VARIABLE: &str = if cfg!(target_os = "macos") {
    "DYLD_INSERT_LIBRARIES"
} else {
    "LD_PRELOAD"
};

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
    #[arg(long, short = 'p', allow_negative_numbers = true)]
    live_port: Option<i64>,
    /// Write aggregated stats to the output file instead of all allocations
    #[arg(long)]
    aggregate: bool,
    /// Track native (C/C++) stack frames as well
    #[arg(long)]
    native: bool,
    /// Track allocations with eBPF uprobes instead of the preloaded library (as root: sudo)
    #[arg(long)]
    ebpf: bool,
    /// Record allocations in child processes forked from the tracked script
    #[arg(long)]
    follow_fork: bool,
    /// With --ebpf: record the Python programs started through exec by the script or its children, each into <output>.<pid>
    #[arg(long)]
    follow_exec: bool,
    /// With --ebpf: also probe a third-party allocator, LIB:SYMBOL=KIND (repeatable), or all of jemalloc's or mimalloc's with `jemalloc` / `mimalloc`
    #[arg(long, value_name = "SPEC")]
    allocator: Vec<String>,
    /// Record allocations made by the pymalloc allocator
    #[arg(long)]
    trace_python_allocators: bool,
    /// Don't show any tracking-specific output while running
    #[arg(short, long)]
    quiet: bool,
    /// With --ebpf: at the end, say why stack walks gave up (one line per reason)
    #[arg(short, long)]
    verbose: bool,
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
    /// The Python interpreter to run (default: the `python3` beside `memray`, else on PATH)
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

pub fn run(args: Args) -> CliResult {
    if args.ebpf {
        return run_ebpf(args);
    }
    reject_unsupported(&args)?;
    if args.live || args.live_remote {
        return live::run(args);
    }
    let (mode, target) = program(&args)?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| default_output(mode, target, std::process::id()));
    let tracked = TrackedProgram::new(&args)?;
    let error = tracked.command(&args, output.as_os_str(), 0)?.exec();
    Err(tracked.cannot_run(error))
}

/// The interpreter, the tracker library and the bootstrap of a tracked run.
struct TrackedProgram {
    python: PathBuf,
    library: PathBuf,
    memray: PathBuf,
}

impl TrackedProgram {
    fn new(args: &Args) -> Result<TrackedProgram, CliError> {
        let memray = std::env::current_exe()
            .map_err(|e| CliError::new(format!("memray run: cannot locate myself: {e}")))?;
        Ok(TrackedProgram {
            library: tracker_library(&memray)?,
            python: args
                .python
                .clone()
                .unwrap_or_else(|| default_python(&memray)),
            memray,
        })
    }

    /// The interpreter running `args`' program through the bootstrap, which
    /// activates the tracker with `output` and `args`' flags plus `extra_flags`.
    fn command(&self, args: &Args, output: &OsStr, extra_flags: u32) -> Result<Command, CliError> {
        let (mode, _) = program(args)?;
        let memray_argv = own_command_line(&self.memray);
        // The program and its arguments end our command line.
        let target_index = memray_argv.len() - args.program.len();
        let bootstrap = bootstrap::file()
            .map_err(|e| CliError::new(format!("memray run: cannot prepare the bootstrap: {e}")))?;
        let mut command = Command::new(&self.python);
        command
            .arg(bootstrap)
            .arg(&self.library)
            .arg(output)
            .arg((tracker_flags(args) | extra_flags).to_string())
            .arg(mode.name())
            .arg(if args.quiet { "1" } else { "0" })
            .arg(target_index.to_string())
            .args(memray_argv)
            .env(PRELOAD_VARIABLE, preload_value(&self.library));
        Ok(command)
    }

    fn cannot_run(&self, error: std::io::Error) -> CliError {
        CliError::new(format!(
            "memray run: cannot run {}: {error}",
            self.python.display()
        ))
    }
}

/// What the interpreter is asked to run, and the file, module or code.
fn program(args: &Args) -> Result<(Mode, &OsString), CliError> {
    let mode = if args.run_as_module {
        Mode::Module
    } else if args.run_as_cmd {
        Mode::Code
    } else {
        Mode::File
    };
    let target = args
        .program
        .first()
        .ok_or_else(|| CliError::new("memray run: the following arguments are required: file"))?;
    if mode == Mode::Code && Path::new(target).exists() {
        return Err(CliError::new(
            "memray run: error: remove the option -c to run a file",
        ));
    }
    Ok((mode, target))
}

/// This command's own arguments, with our resolved path first: the
/// bootstrap joins them into memray's header `command_line`.
fn own_command_line(memray: &Path) -> Vec<OsString> {
    std::iter::once(memray.as_os_str().to_os_string())
        .chain(std::env::args_os().skip(1))
        .collect()
}

#[cfg(target_os = "linux")]
fn run_ebpf(args: Args) -> CliResult {
    ebpf::run(args)
}

#[cfg(not(target_os = "linux"))]
fn run_ebpf(_: Args) -> CliResult {
    Err(super::ebpf_is_linux_only("run"))
}

fn reject_unsupported(args: &Args) -> CliResult {
    live::reject_unsupported(args)?;
    if args.verbose {
        return Err(CliError::new("memray run: --verbose goes with --ebpf"));
    }
    if args.follow_exec {
        return Err(CliError::new("memray run: --follow-exec goes with --ebpf"));
    }
    if !args.allocator.is_empty() {
        return Err(CliError::new("memray run: --allocator goes with --ebpf"));
    }
    Ok(())
}

fn tracker_flags(args: &Args) -> u32 {
    [
        (args.aggregate, flags::AGGREGATE),
        (args.native, flags::NATIVE),
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
/// (`string` for `-c`, the module name for `-m`), with the program's pid
/// (ours with the tracker: `exec` keeps it).
fn default_output(mode: Mode, target: &OsStr, pid: u32) -> PathBuf {
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
    file.push(format!(".{pid}.bin"));
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

/// The `python3` beside us when pip installed us (a virtualenv's `bin/`, as
/// memray's console script runs its own interpreter), else the one on PATH.
fn default_python(memray: &Path) -> PathBuf {
    let beside = memray.with_file_name("python3");
    if beside.exists() {
        beside
    } else {
        PathBuf::from("python3")
    }
}

/// Our library first, then whatever the user preloads already.
fn preload_value(library: &Path) -> OsString {
    let mut value = library.as_os_str().to_os_string();
    if let Some(existing) = std::env::var_os(PRELOAD_VARIABLE).filter(|v| !v.is_empty()) {
        value.push(":");
        value.push(existing);
    }
    value
}
