//! The one way a command fails: a message for the user and an exit code.

use std::fmt;

/// A failure the user sees as one line on stderr (never a panic or a backtrace).
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub exit_code: i32,
}

impl CliError {
    /// A failure with memray's usual exit code, 1.
    pub fn new(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            exit_code: 1,
        }
    }

    /// A command-line mistake, worded and numbered as argparse does (exit code 2).
    pub fn usage(command: &str, message: impl fmt::Display) -> Self {
        CliError {
            message: format!("memray {command}: error: {message}"),
            exit_code: 2,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

pub type CliResult = Result<(), CliError>;
