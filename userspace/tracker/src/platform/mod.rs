//! What differs between Linux (`LD_PRELOAD`, symbol preemption) and macOS
//! (`DYLD_INSERT_LIBRARIES`, dyld's `__DATA,__interpose` tuples): per-thread
//! storage that never allocates, and on macOS the interposition table and the
//! check that dyld inserted the library at all.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::*;

#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "macos")]
pub use macos::*;

mod thread_word;
pub(crate) use thread_word::thread_word;
pub use thread_word::ThreadWord;

#[cfg(any(target_os = "macos", test))]
pub mod inserted;
#[cfg(any(target_os = "macos", test))]
pub mod interpose_table;
