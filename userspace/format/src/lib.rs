//! memray's capture files (docs/memray-format.md): a streaming reader for format
//! versions 11, 12 and 13 (plain or LZ4, ALL_ALLOCATIONS or AGGREGATED),
//! a replay layer that rebuilds stacks, and v13 writers that produce the
//! bytes memray 1.20 writes.
//!
//! Reading:
//! * [`CaptureReader::open`] then [`CaptureReader::next_record`] yields
//!   [`Record`]s (strings borrow the reader's buffer); [`CaptureReader::is_truncated`]
//!   tells a cut-off capture from a complete one,
//!   [`CaptureReader::cut_off_token`] which record the data stopped inside,
//!   and [`CaptureReader::damage`] where a damaged capture stopped making sense.
//!   [`CaptureReader::follow`] reads a live session's socket as records
//!   arrive, telling "no data yet" ([`CaptureReader::is_waiting`]) from the end.
//! * [`Replay`] wraps a reader and yields [`Event`]s (allocations with their
//!   thread, Python trie node, native frame id and segment generation), one
//!   at a time ([`Replay::next_event`]) or in batches ([`Replay::next_events`]);
//!   [`Replay::python_stack`] renders a node leaf first,
//!   [`Replay::python_frames_with_entries`] with the entry bits memray's hybrid
//!   stacks need; [`Replay::native_stack`] and [`Replay::generations`] give the
//!   raw return addresses and the loaded objects to symbolize. The records replay
//!   applies most (ALLOCATION, FRAME_PUSH/POP, NATIVE_TRACE_INDEX,
//!   CONTEXT_SWITCH) go from the bytes to its state without a [`Record`].
//!   The analyses consume these events as they are.
//! * [`is_frame_interesting`] and [`is_frame_from_import_system`]: memray's
//!   rules for the frames its reports hide or flag.
//!
//! Writing: the recorder (`memray-recorder`) holds a `Box<dyn CaptureWriter>`, either
//!
//! ```text
//! trait CaptureWriter: Send {
//!     fn write_memory_record(&mut self, time_ms, rss);
//!     fn write_code_object(&mut self, id, function, filename, firstlineno, linetable);
//!     fn write_frame_push(&mut self, tid, code_object_id, instruction_offset, is_entry);
//!     fn write_frame_pop(&mut self, tid, count);
//!     fn write_native_trace_index(&mut self, ip, parent);
//!     fn write_allocation(&mut self, tid, address, size, allocator, native_frame_id);
//!     fn write_thread_name(&mut self, tid, name);
//!     fn write_mappings(&mut self, images);
//!     fn write_object_record(&mut self, tid, address, created, native_frame_id);
//!     fn finish(&mut self, end_time_ms);   // trailer + header rewrite
//!     fn flush(&mut self);                  // to a live session's reader
//! }
//! ```
//!
//! implemented by [`StreamingWriter`] (ALL_ALLOCATIONS, written as it goes)
//! and [`AggregatingWriter`] (AGGREGATED_ALLOCATIONS, written at `finish`).
//! Both take a [`Sink`] ([`MmapFileSink`], [`BufferedFileSink`],
//! [`MemorySink`], [`SocketSink`] for live sessions) and a caller-filled [`Header`]. After `finish` and
//! dropping the writer, [`compress_file`] applies memray's compress-on-exit.

mod aggregate;
mod code;
mod decode;
pub mod dump;
pub mod encoding;
mod error;
mod file_hints;
mod frame;
mod frame_tree;
mod header;
mod hidden;
mod lost_records;
mod read_ahead;
mod reader;
mod record;
pub mod replay;
mod rewrite;
pub mod sink;
mod socket;
mod token;
mod writer;

pub use aggregate::AggregatingWriter;
pub use error::FormatError;
pub use frame::Frame;
pub use frame_tree::{FrameTree, Registry};
pub use header::{
    FileFormat, Header, PythonAllocator, TrackerStats, CURRENT_VERSION, MAGIC, READABLE_VERSIONS,
};
pub use hidden::{is_cpython_internal, is_frame_from_import_system, is_frame_interesting};
pub use memray_heap::{Allocator, AllocatorKind};
pub use reader::{CaptureReader, Damage, LZ4_MAGIC};
pub use record::{AggregatedAllocation, AllocationRecord, LegacyFrame, Record};
pub use replay::{AggregatedLocation, AllocationEvent, Event, MemorySnapshot, Replay};
pub use rewrite::rewrite;
pub use sink::{compress_file, BufferedFileSink, MemorySink, MmapFileSink, Sink};
pub use socket::SocketSink;
pub use token::{AggregatedToken, LegacyToken, StreamToken};
pub use writer::{CaptureWriter, Image, Segment, StreamingWriter};
