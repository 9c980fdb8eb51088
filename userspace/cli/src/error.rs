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

/// `text` as Python words an OS error: Rust's ` (os error N)` suffix dropped,
/// wherever it appears (an error's text may quote a lower layer's).
pub fn without_os_error_codes(text: &str) -> String {
    const MARK: &str = " (os error ";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(MARK) {
        let after = &rest[start + MARK.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let is_code = digits > 0 && after[digits..].starts_with(')');
        let end = if is_code {
            start + MARK.len() + digits + 1
        } else {
            start + MARK.len()
        };
        out.push_str(&rest[..if is_code { start } else { end }]);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::without_os_error_codes;

    #[test]
    fn os_error_codes_are_dropped_as_python_words_them() {
        let error = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(
            without_os_error_codes(&format!("Could not create output file x: {error}")),
            "Could not create output file x: No such file or directory"
        );
        assert_eq!(
            without_os_error_codes("a: b (os error 28)\nReason: c (os error 13)."),
            "a: b\nReason: c."
        );
        assert_eq!(
            without_os_error_codes("kept (os error x) and (os error 5"),
            "kept (os error x) and (os error 5"
        );
    }
}
