//! Native frames at report time, and how memray shows them.
//!
//! * [`NativeSymbolizer`]: raw return addresses of a capture, resolved with blazesym against
//!   the segment generation current when each allocation was recorded (function, file,
//!   line; inlined frames expanded innermost first).
//! * [`hybrid_stack`]: memray's merge of a native stack and a Python stack.
//! * [`is_cpython_internal`], [`is_frame_interesting`], [`is_frame_from_import_system`]:
//!   memray's rules for the frames its reports hide.

mod hidden;
mod hybrid;
mod symbolizer;

pub use hidden::{is_cpython_internal, is_frame_from_import_system, is_frame_interesting};
pub use hybrid::{hybrid_stack, is_eval_frame_symbol, HybridFrame};
pub use symbolizer::{NativeFrame, NativeSymbolizer};
