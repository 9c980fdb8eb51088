//! Why a query failed.

use std::fmt;

/// memray's refusal for temporary allocations on aggregated captures.
pub const TEMPORARY_ON_AGGREGATED: &str =
    "Can't find temporary allocations using a pre-aggregated capture file.";
/// memray's refusal for statistics on aggregated captures.
pub const STATISTICS_ON_AGGREGATED: &str =
    "Can't compute statistics using a pre-aggregated capture file.";
/// memray's refusal for temporal reports on aggregated captures.
pub const HISTORY_ON_AGGREGATED: &str =
    "Can't get allocation history using a pre-aggregated capture file.";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnalysisError {
    /// The query needs per-record data that the capture does not have.
    Unsupported(&'static str),
    /// The capture could not be read.
    Capture(String),
}

impl fmt::Display for AnalysisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnalysisError::Unsupported(message) => f.write_str(message),
            AnalysisError::Capture(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for AnalysisError {}
