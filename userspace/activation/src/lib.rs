//! The activation contract between whoever starts tracking (`memray run`'s
//! bootstrap today, the Python package later) and the preload tracker
//! library: one `#[repr(C)]` options struct, passed by pointer to
//! `memray_tracker_activate`, and the bits of its `flags` word.
//!
//! `no_std` and dependency-free, so that both sides (the `memray` binary,
//! which must not link the tracker, and the tracker itself) depend on this
//! one definition. The bootstrap mirrors the struct with `ctypes`
//! (`userspace/python/memray/_bootstrap.py`); a test compares both layouts.

#![no_std]
#![forbid(unsafe_code)]

use core::ffi::c_char;

/// The layout this crate defines; bumped whenever a field changes.
pub const VERSION: u32 = 2;

/// Bits of [`ActivationOptions::flags`].
pub mod flags {
    /// Write an AGGREGATED_ALLOCATIONS capture (`--aggregate`).
    pub const AGGREGATE: u32 = 1;
    /// Forked children write their own capture (`--follow-fork`).
    pub const FOLLOW_FORK: u32 = 2;
    /// Record pymalloc too (`--trace-python-allocators`).
    pub const TRACE_PYTHON_ALLOCATORS: u32 = 4;
    /// LZ4-compress the capture when tracking ends (memray's default).
    pub const COMPRESS: u32 = 8;
    /// Write through a buffer instead of a memory map (`--buffered-file-io`).
    pub const BUFFERED: u32 = 16;
    /// Overwrite an existing output file (`--force`).
    pub const FORCE: u32 = 32;
    /// Record each allocation's native stack and the loaded objects (`--native`).
    pub const NATIVE: u32 = 64;
    /// Stream the capture to a live reader through `live_socket` (`--live`, `--live-remote`).
    pub const LIVE: u32 = 128;
}

/// What `memray_tracker_activate` needs to open a capture. Strings are
/// NUL-terminated (null reads as empty); lists are NUL-separated strings
/// closed by an empty one.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ActivationOptions {
    /// `size_of::<ActivationOptions>()` as the caller laid it out.
    pub size: u32,
    /// [`VERSION`] as the caller knows it.
    pub version: u32,
    /// [`flags`] bits.
    pub flags: u32,
    /// The interpreter's `sys.hexversion`.
    pub python_hexversion: u32,
    /// Frames of the caller's own on the main thread, hidden by the reports.
    pub skipped_frames_on_main_tid: u64,
    /// The capture file.
    pub output: *const c_char,
    /// `_PyMem_GetCurrentAllocatorName()`, e.g. `pymalloc`.
    pub python_allocator: *const c_char,
    /// The header's command line.
    pub command_line: *const c_char,
    /// The interpreter's standard library directory.
    pub libdest: *const c_char,
    /// `site.getsitepackages()`, as a list.
    pub site_packages: *const c_char,
    /// `sys.path`, as a list.
    pub sys_path: *const c_char,
    /// With [`flags::LIVE`]: the inherited descriptor of a listening TCP
    /// socket; the tracker waits there for the reader. Otherwise -1.
    pub live_socket: i32,
    /// Milliseconds between resident set size samples (memray's default: 10).
    pub memory_interval_ms: u32,
}

impl ActivationOptions {
    /// Whether a caller's struct has this crate's layout.
    pub fn is_current(&self) -> bool {
        self.version == VERSION && self.size as usize == core::mem::size_of::<Self>()
    }

    /// Whether `flag` (one of [`flags`]) is set.
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }
}
