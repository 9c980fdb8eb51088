//! `memray`: a memory profiler for Python, compatible with Bloomberg's memray.

mod commands;
mod error;

use clap::{Parser, Subcommand};
use error::CliError;

#[derive(Parser)]
#[command(
    name = "memray",
    version,
    about = "Memory profiler for Python applications",
    long_about = "Memory profiler for Python applications.\n\n\
        Run `memray run` to generate a memory profile report, then use a reporter command\n\
        such as `memray flamegraph` or `memray table` to convert the results into HTML."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the specified application and track memory usage
    Run(commands::run::Args),
    /// Generate an HTML flame graph for peak memory usage
    Flamegraph(commands::flamegraph::Args),
    /// Generate an HTML table with all records in the peak memory usage
    Table(commands::table::Args),
    /// Generate a terminal-based tree view of the allocations at the high water mark
    Tree(commands::tree::Args),
    /// Generate a terminal-based summary report of the functions that allocate most memory
    Summary(commands::summary::Args),
    /// Generate high level stats of the memory usage in the terminal
    Stats(commands::stats::Args),
    /// Generate reports files in different formats
    Transform(commands::transform::Args),
    /// Compare two captures: what grew and what shrank, by location
    Diff(commands::diff::Args),
    /// Debug a results file by parsing and printing each record in it
    Parse(commands::parse::Args),
    /// Print the Python stack of every thread of a running process
    DumpStacks(commands::dump_stacks::Args),
    /// Remotely monitor allocations in a text-based interface
    Live(commands::live::Args),
    /// Begin tracking allocations in an already-started process
    Attach(commands::attach::Args),
    /// End the tracking started by a previous `memray attach` call
    Detach(commands::detach::Args),
}

fn main() {
    restore_default_sigpipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => commands::run::run(args),
        Command::Flamegraph(args) => commands::flamegraph::run(args),
        Command::Table(args) => commands::table::run(args),
        Command::Tree(args) => commands::tree::run(args),
        Command::Summary(args) => commands::summary::run(args),
        Command::Stats(args) => commands::stats::run(args),
        Command::Transform(args) => commands::transform::run(args),
        Command::Diff(args) => commands::diff::run(args),
        Command::Parse(args) => commands::parse::run(args),
        Command::DumpStacks(args) => commands::dump_stacks::run(args),
        Command::Live(args) => commands::live::run(args),
        Command::Attach(args) => commands::attach::run(args),
        Command::Detach(args) => commands::detach::run(args),
    };
    if let Err(CliError { message, exit_code }) = result {
        if !message.is_empty() {
            eprintln!("{}", memray_recorder::without_os_error_codes(&message));
        }
        std::process::exit(exit_code);
    }
}

/// Rust ignores SIGPIPE, which turns `memray stats x.bin | head` into a write
/// error; like any Unix filter, die quietly when the reader goes away.
fn restore_default_sigpipe() {
    // SAFETY: resetting a signal disposition to its default has no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
