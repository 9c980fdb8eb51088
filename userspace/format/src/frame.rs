//! A frame as reports show it, from the replay up to every reporter.

use std::sync::Arc;

/// One frame as memray's reports show it: function, file and line (memray's
/// `int`; 0 when unknown). A Python frame from `stack_trace()`, or a native
/// one of a `hybrid_stack_trace()` (symbolized: its file as the line table
/// names it); memray's reports tell them apart by name and file only
/// (`is_cpython_internal`, the flame graph's colour by file extension), and
/// so do ours.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Frame {
    pub function: Arc<str>,
    pub filename: Arc<str>,
    pub lineno: i32,
}

impl Frame {
    pub fn new(function: &str, filename: &str, lineno: i32) -> Frame {
        Frame {
            function: function.into(),
            filename: filename.into(),
            lineno,
        }
    }
}
