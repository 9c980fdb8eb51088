//! A frame as reports show it, from the replay up to every reporter.

use std::sync::Arc;

/// One Python frame, as memray's `stack_trace()` returns it: function, file
/// and line (memray's `int`; 0 when unknown). Native frames (`--native`)
/// are to be added here, as another kind of frame, so that every report
/// gets them through the same type.
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
