//! What differs between operating systems: how the loaded objects are listed, where their
//! unwind sections are read from, and where the calling thread's stack lies.

#[cfg(target_os = "linux")]
mod elf_file;
#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
mod process_maps;
#[cfg(target_os = "linux")]
pub use linux::*;
#[cfg(target_os = "linux")]
pub use process_maps::{image_at, in_root, process_images};

#[cfg(target_os = "macos")]
mod macho;
#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "macos")]
pub use macos::*;
