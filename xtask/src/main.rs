//! `cargo xtask <task>`: the project's setup, build, test, benchmark and lint
//! entry points (see docs/development.md).

mod bench;
mod process;
mod quickstart;
mod setup;
mod test_summary;
mod wheel;
mod workspace;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what the build and the tests need (idempotent).
    Setup,
    /// Setup, build every target of the workspace, type-check macOS, then `cargo test --workspace`.
    Test,
    /// Setup, build, then show the tool at work on a capture recorded by memray 1.20.
    Quickstart,
    /// Run benchmarks side by side with memray 1.20 (all when none is named).
    Bench(bench::BenchArgs),
    /// Build the pip-installable wheel into target/wheels/ and print its path.
    Wheel,
    /// `cargo fmt --check` and `cargo clippy -D warnings` over both workspaces (and for macOS).
    Lint,
}

fn main() {
    let cli = Cli::parse();
    let outcome = match cli.task {
        Task::Setup => setup::run(),
        Task::Test => setup::run().and_then(|()| workspace::test()),
        Task::Quickstart => quickstart::run(),
        Task::Bench(args) => bench::run(&args),
        Task::Wheel => wheel::run(),
        Task::Lint => workspace::lint(),
    };
    if let Err(error) = outcome {
        eprintln!("xtask: {error:#}");
        std::process::exit(1);
    }
}
