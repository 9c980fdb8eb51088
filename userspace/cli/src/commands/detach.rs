//! `memray detach PID`: ends the tracking that `memray attach PID` (without
//! `--ebpf`) started inside a CPython 3.14+ process; the waiting attach
//! command then finishes.

use crate::error::CliResult;

#[derive(clap::Args, Debug)]
#[command(about = "End the tracking started by a previous `memray attach` call")]
pub struct Args {
    /// Process id to affect
    pid: u32,
}

#[cfg(target_os = "linux")]
pub fn run(args: Args) -> CliResult {
    use crate::commands::remote_exec::Target;
    Target::find("detach", args.pid)?.stop_tracker("detach")?;
    println!("Deactivated tracking in process {}.", args.pid);
    Ok(())
}

#[cfg(not(target_os = "linux"))]
pub fn run(_: Args) -> CliResult {
    Err(super::remote_tracking_is_linux_only("detach"))
}
