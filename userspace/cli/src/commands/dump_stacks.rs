//! `memray dump-stacks PID`: print every thread's Python stack of a live
//! CPython process, to check a process by hand (like `py-spy dump`).

use crate::error::{CliError, CliResult};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Process id of a running CPython 3.8-3.14 program
    pub pid: i32,

    /// Most frames shown per thread (the innermost ones are kept)
    #[arg(long, default_value_t = 256)]
    pub max_depth: usize,
}

pub fn run(args: Args) -> CliResult {
    let text = python_frames::dump_stacks(args.pid, args.max_depth.max(1))
        .map_err(|e| CliError::new(format!("dump-stacks: {e}")))?;
    print!("{text}");
    Ok(())
}
