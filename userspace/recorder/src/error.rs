//! Why finishing a capture went wrong, in words a user can act on.

use std::io;
use std::path::PathBuf;

/// What went wrong while finishing a capture.
#[derive(Debug, thiserror::Error)]
pub enum FinishError {
    /// The last records, the trailer or the final header could not be written.
    #[error("{}", describe_os_error(.0))]
    Write(#[source] io::Error),
    /// Writing failed during the run (reported then): the capture holds
    /// what was written before and reads as cut off.
    #[error("{} is incomplete: it ends where writing failed", .path.display())]
    CutOff { path: PathBuf },
    /// Compression failed; the uncompressed capture is still there.
    #[error(
        "Failed to compress {}: {}; the uncompressed capture is kept",
        .path.display(),
        describe_os_error(.source)
    )]
    Compress {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// An I/O error as memray words it: the C library's text, without Rust's
/// ` (os error N)` suffix (which also ends messages wrapping such an error).
pub fn describe_os_error(error: &io::Error) -> String {
    without_os_error_codes(&error.to_string())
}

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
    use super::*;

    #[test]
    fn os_errors_lose_rusts_suffix_wherever_they_are_wrapped() {
        let plain = io::Error::from_raw_os_error(28); // ENOSPC
        assert_eq!(describe_os_error(&plain), "No space left on device");
        let wrapped = io::Error::other(format!("Failed to grow output file x by 4 bytes: {plain}"));
        assert_eq!(
            describe_os_error(&wrapped),
            "Failed to grow output file x by 4 bytes: No space left on device"
        );
        let other = io::Error::other("nothing to strip (os error here)");
        assert_eq!(
            describe_os_error(&other),
            "nothing to strip (os error here)"
        );
    }

    #[test]
    fn os_error_codes_are_dropped_as_python_words_them() {
        let error = io::Error::from_raw_os_error(2); // ENOENT
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
