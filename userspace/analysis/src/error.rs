//! Why a query failed.

use memray_format::FormatError;

/// A query that needs every allocation record, which an aggregated capture
/// does not keep (the CLI words the refusal as memray does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeedsEveryRecord {
    TemporaryAllocations,
    Statistics,
    /// The temporal reports: allocations over time.
    AllocationHistory,
}

#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// The query needs per-record data that the capture does not have.
    #[error("{0:?} cannot be computed from an aggregated capture")]
    Unsupported(NeedsEveryRecord),
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
