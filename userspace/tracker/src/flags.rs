//! The activation flags `memray run` passes to `memray_tracker_activate`.
//! `memray run` compiles this very file into the CLI (it cannot link the
//! tracker, whose hooks would then replace the CLI's own `malloc`), so both
//! sides of the call share one definition.

pub const AGGREGATE: u32 = 1;
pub const FOLLOW_FORK: u32 = 2;
pub const TRACE_PYTHON_ALLOCATORS: u32 = 4;
pub const COMPRESS: u32 = 8;
pub const BUFFERED: u32 = 16;
pub const FORCE: u32 = 32;
