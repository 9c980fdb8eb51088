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
    /// Debug a results file by parsing and printing each record in it
    Parse(commands::parse::Args),
    /// Print the Python stack of every thread of a running process
    DumpStacks(commands::dump_stacks::Args),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Parse(args) => commands::parse::run(args),
        Command::DumpStacks(args) => commands::dump_stacks::run(args),
    };
    if let Err(CliError { message, exit_code }) = result {
        eprintln!("{message}");
        std::process::exit(exit_code);
    }
}
