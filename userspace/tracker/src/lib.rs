//! The in-process tracker: an LD_PRELOAD library that records every allocation
//! of a Python program, with the Python stack read directly from the calling
//! thread's frames, into a memray capture file.
//!
//! The library is inert until `memray run`'s bootstrap activates it
//! ([`ffi`]); from then on the [`hooks`] record through the [`recorder`].

mod arena;
mod code_watch;
mod codes;
pub mod ffi;
mod flags;
mod fork;
mod guard;
pub mod hooks;
mod loader;
mod process_exit;
mod pymalloc;
mod python;
mod real;
mod recorder;
mod rss;
mod session;
mod stack;
mod thread;
