//! Native frames at report time, and how memray shows them.
//!
//! * [`NativeSymbolizer`]: raw return addresses of a capture, resolved with blazesym against
//!   the segment generation current when each allocation was recorded (function, file,
//!   line; inlined frames expanded innermost first).
//! * [`hybrid_stack`]: memray's merge of a native stack and a Python stack.
//!
//! memray's rules for the frames its reports hide or flag live in `memray-format`
//! (`memray_format::is_frame_interesting` and its siblings), where the reporters read them
//! without pulling in the symbolizer.

mod comp_dirs;
mod hybrid;
mod symbolizer;

pub use hybrid::{hybrid_stack, is_eval_frame_symbol, HybridFrame};
pub use symbolizer::{NativeFrame, NativeSymbolizer};
