//! memray's commands that memray-rs does not have yet (`live`): they exist so that their help and their use say so in one line.

use std::ffi::OsString;

use crate::error::{CliError, CliResult};

/// Whatever memray's command takes: accepted, and not used.
#[derive(clap::Args)]
pub struct Args {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    args: Vec<OsString>,
}

pub fn run(command: &str) -> CliResult {
    Err(CliError::new(format!(
        "memray {command}: not available yet in memray-rs"
    )))
}
