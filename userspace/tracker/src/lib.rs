//! The in-process tracker: an LD_PRELOAD (macOS: DYLD_INSERT_LIBRARIES) library that records every allocation
//! of a Python program, with the Python stack read directly from the calling
//! thread's frames, into a memray capture file.
//!
//! The library is inert until `memray run`'s bootstrap or `memray.Tracker`
//! activates it ([`ffi`]); loaded late (the Tracker, no `LD_PRELOAD`), it
//! points the loaded objects' relocation slots at its hooks while active
//! (`patcher`). From then on the [`hooks`] hand each event to the process's
//! `memray_recorder::Recorder` ([`tracking`]). Only what must live inside the
//! profiled process is here: the interposed symbols, real-symbol resolution,
//! the bootstrap arena, the recursion guard, the loader trampoline, fork and
//! exit handling, the in-process frame walk and, with `--native`, the native
//! unwind ([`native`]).

#![warn(clippy::undocumented_unsafe_blocks)]

mod arena;
mod code_watch;
pub mod ffi;
mod fork;
mod guard;
pub mod hooks;
mod loader;
mod native;
#[cfg(target_os = "linux")]
mod patcher;
mod platform;
mod process_exit;
mod pymalloc;
mod python;
mod real;
mod session;
mod thread;
mod tracking;
