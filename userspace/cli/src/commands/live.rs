//! `memray live PORT`: the live view of a `memray run --live-remote` session
//! on this machine.

use memray_recorder::describe_os_error;

use crate::error::{CliError, CliResult};

#[derive(clap::Args)]
pub struct Args {
    /// Remote port to connect to
    #[arg(allow_negative_numbers = true)]
    port: i64,
}

pub fn run(args: Args) -> CliResult {
    let port = valid_port(args.port)?;
    let stream = memray_live::connect(port).map_err(CliError::new)?;
    let feed = memray_live::Feed::start(stream)
        .map_err(|e| CliError::new(format!("memray live: {}", describe_os_error(&e))))?;
    memray_live::show(&feed)
        .map_err(|e| CliError::new(format!("memray live: {}", describe_os_error(&e))))
}

/// memray's port check, after argparse's: 1 to 65535.
pub fn valid_port(port: i64) -> Result<u16, CliError> {
    u16::try_from(port)
        .ok()
        .filter(|&port| port > 0)
        .ok_or_else(|| CliError::new(format!("Invalid port: {port}")))
}
