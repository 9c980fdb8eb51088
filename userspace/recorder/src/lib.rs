//! The recorder: given what happened in a Python process ("thread T
//! allocated N bytes at A with this Python stack", "thread T freed A",
//! "range R was unmapped", "code object C died", "thread T is named X",
//! resident-set-size samples), it writes a memray capture through a
//! `memray-format` writer: the CODE_OBJECT registry, the FRAME_PUSH /
//! FRAME_POP differences of each thread's stack, thread names, and the
//! session around them (header, trailer, compression at the end).
//!
//! It is a plain library with no global state: the preload tracker keeps
//! one behind a lock, the eBPF consumer one per traced process. Stacks come
//! in as `python-frames` [`RawFrame`]s (code-object address and instruction
//! offset); a [`CodeNamer`] names a code object the first time it is seen.
//! With native traces on, each allocation also brings its native stack (raw
//! return addresses, innermost first, however they were unwound), stored in
//! memray's native trie, and the loaded objects ([`Image`]s) are written at
//! the start and whenever the caller says they changed.

// Plain code; the one exception is macOS's RSS reading (no /proc there), in `rss`.
#![deny(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod codes;
mod error;
mod native;
mod recorder;
pub mod rss;
mod session;
mod stack;

pub use codes::TRUNCATION_MARKER;
pub use error::{describe_os_error, without_os_error_codes, FinishError};
pub use memray_format::{Allocator, CaptureWriter, Header, Image, PythonAllocator, Segment};
pub use python_frames::{CodeInfo, RawFrame};
pub use recorder::{CodeNamer, Recorder, Stacks, Writer};
pub use rss::Process;
pub use session::{CaptureOptions, CaptureSettings, LiveListener};
pub use stack::RecordedThread;
