//! Native stacks of the calling thread, unwound from inside a malloc hook.
//!
//! * [`refresh_modules`] (at start-up and after every `dlopen`/`dlclose`, outside any unwind:
//!   it allocates) reads the loaded objects (`dl_iterate_phdr` and their ELF files on Linux,
//!   dyld's images and their compact unwind info on macOS) and publishes a new module set; the old one is freed once no thread unwinds with it. A fork
//!   child calls [`forget_other_threads_after_fork`] first.
//! * [`ThreadUnwinder`] (one per thread; creating it allocates) walks the
//!   calling thread's stack with DWARF CFI (framehop, frame pointers where a module has no
//!   unwind information) and writes raw return addresses, innermost first, into a caller's
//!   buffer without allocating, reading only inside the thread's stack.
//! * [`loaded_objects`] lists the objects and their `PT_LOAD` segments (Mach-O segments) as memray's
//!   MEMORY_MAP_START / SEGMENT_HEADER / SEGMENT records describe them; [`load_segments`]
//!   reads the same from a file, to tell at report time whether it changed since.
//! * [`CopiedStackUnwinder`] (Linux) unwinds another process's stack from a copy of its top
//!   (the eBPF probes'), over that process's objects ([`process_images`], from `/proc/PID/maps`,
//!   read with `python_frames::maps`).

#[cfg(target_os = "linux")]
mod copied;
mod module_set;
mod platform;
mod published;
mod registers;
mod thread;
mod trail;

#[cfg(target_os = "linux")]
pub use copied::{CopiedStack, CopiedStackUnwinder};
pub use module_set::{forget_other_threads_after_fork, refresh_modules};
#[cfg(target_os = "linux")]
pub use platform::{image_at, process_images};
pub use platform::{load_segments, loaded_objects};
pub use registers::UnwindStart;
pub use thread::ThreadUnwinder;
