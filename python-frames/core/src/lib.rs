//! The part of python-frames that needs nothing but `core`: CPython's frame
//! layouts ([`Layout`], built-in for 3.8-3.12 and decoded from
//! `_Py_DebugOffsets` for 3.13+), the frame walk over a [`Memory`]
//! ([`FrameReader::step`], [`walk_stack`]) and the line-table decoders.
//!
//! It allocates nothing, never recurses and has no panicking path, so it
//! builds for `bpfel-unknown-none`: the eBPF probes walk Python stacks with
//! the same code and the same offsets as the in-process and remote walkers
//! of the std crate (`python-frames`), which re-exports all of it.
#![no_std]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod fingerprint;
pub mod layout;
pub mod linetable;
pub mod memory;
pub mod walk;

pub use fingerprint::CodeFingerprint;
pub use layout::{FrameKind, Layout, LayoutError};
pub use linetable::{line_number, LineTableKind};
pub use memory::{Memory, MemoryExt};
pub use walk::{top_frame, walk_stack, FrameReader, FrameStep, RawFrame, StackWalk, Target};
