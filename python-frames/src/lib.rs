//! CPython introspection: find the interpreter, walk thread stacks, read code
//! objects and decode their line tables, for CPython 3.8 to 3.14 on x86-64.
//!
//! * In process (the LD_PRELOAD tracker): [`InProcess::new`] once, then
//!   [`InProcess::walk_current_thread`] at each allocation.
//! * Another process (tools, tests, the eBPF mode's userspace side):
//!   [`PythonProcess::attach`] then [`PythonProcess::snapshot`].
//! * Either way, name frames with [`CodeCache`] / [`read_code`] and
//!   [`linetable::line_number`].
//! * [`maps::file_mappings`] reads `/proc/PID/maps` text, for this crate and the ones above it.
//!
//! `layout`, `linetable`, `walk` and the `Memory` trait come from the no_std
//! core crate (`python-frames-core`), which the eBPF probes use too: one set
//! of offsets and one frame walk for every walker.
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod allocators;
pub mod code;
pub mod discover;
pub mod dump;
pub mod error;
pub mod file;
pub mod inprocess;
pub mod maps;
pub mod memory;
#[cfg(target_os = "linux")]
pub mod mounts;
pub mod objects;
mod platform;
pub mod process;
pub mod thread_names;
pub mod threads;

pub use python_frames_core::{fingerprint, layout, linetable, walk};

pub use allocators::{AllocatorTable, AllocatorTables};
pub use code::{read_code, CodeCache, CodeInfo};
pub use dump::dump_stacks;
pub use error::Error;
pub use file::{map_file, Mmap};
pub use inprocess::InProcess;
pub use layout::{FrameKind, Layout};
pub use memory::{LocalMemory, Memory, PageCache, RemoteMemory, SnapshotMemory};
#[cfg(target_os = "linux")]
pub use platform::{lasting_file, process_file, reported_file};
pub use process::{PythonProcess, ThreadStack};
pub use thread_names::ThreadNameReader;
pub use threads::{thread_states, ThreadState};
pub use walk::{walk_stack, FrameReader, FrameStep, RawFrame, StackWalk, Target};
