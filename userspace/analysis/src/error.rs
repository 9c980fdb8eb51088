//! Why a query failed.

use memray_format::FormatError;

/// memray's refusal for temporary allocations on aggregated captures.
pub const TEMPORARY_ON_AGGREGATED: &str =
    "Can't find temporary allocations using a pre-aggregated capture file.";
/// memray's refusal for statistics on aggregated captures.
pub const STATISTICS_ON_AGGREGATED: &str =
    "Can't compute statistics using a pre-aggregated capture file.";
/// memray's refusal for temporal reports on aggregated captures.
pub const HISTORY_ON_AGGREGATED: &str =
    "Can't get allocation history using a pre-aggregated capture file.";

#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// The query needs per-record data that the capture does not have.
    #[error("{0}")]
    Unsupported(&'static str),
    /// The capture could not be read.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// More memory snapshots than a report can number.
    #[error("too many memory snapshots ({0})")]
    TooManySnapshots(u64),
}

impl PartialEq for AnalysisError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Unsupported(a), Self::Unsupported(b)) => a == b,
            // I/O errors have no equality of their own: the same message is
            // the same error.
            (Self::Format(a), Self::Format(b)) => a.to_string() == b.to_string(),
            (Self::TooManySnapshots(a), Self::TooManySnapshots(b)) => a == b,
            _ => false,
        }
    }
}
