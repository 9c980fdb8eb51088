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
    let text = error.to_string();
    let Some(start) = text.rfind(" (os error ") else {
        return text;
    };
    let suffix = &text[start + " (os error ".len()..];
    match suffix.strip_suffix(')') {
        Some(code) if code.bytes().all(|b| b.is_ascii_digit()) => text[..start].to_string(),
        _ => text,
    }
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
}
