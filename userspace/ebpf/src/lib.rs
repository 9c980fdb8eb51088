//! The eBPF side of memray: the probes object built from `ebpf/` and embedded
//! at compile time, and the API that loads it, attaches it to processes and
//! reads what it records.
//!
//! * [`Session::load`] once, [`Session::attach`] / [`Session::detach`] per
//!   process, [`Session::events`] to drain the records from tokio.
//! * [`Recording::run`] records one attached process into a memray capture
//!   ([`Consumer`]: the records of many processes, one capture per tgid).
//! * [`SystemRecording::run`] records every CPython process of the machine
//!   (`attach --all`), each into its own capture.
//! * [`HeldProgram::start`] for `sudo memray run --ebpf`: the program is held
//!   before `exec` until the probes are attached, then runs as [`RunAs`].
//! * [`PthreadKeyLayout`] locates pthread-specific values in the target's
//!   threads (the stack walk reads CPython's thread state through them).
//!
//! Built without the object (`MEMRAY_SKIP_EBPF=1`), loading returns
//! [`Error::NotBuilt`].

mod after_exit;
mod allocator_sites;
mod consumer;
mod custom_allocators;
mod discovery;
mod error;
mod events;
mod exec_following;
mod execs;
mod executable_mappings;
mod inlined_copies;
mod intake;
mod interpreter_files;
mod launcher;
mod libc_image;
mod native;
mod object;
mod placed;
pub mod placement;
mod privileges;
mod probe_log;
mod probes;
mod pthread_keys;
pub mod python;
mod python_allocators;
mod recording;
mod ring_record;
mod session;
mod system;
mod thread_names;
mod tracefs;
mod uprobe_multi;

pub use allocator_sites::AllocatorSites;
pub use consumer::{Consumer, Finished};
pub use custom_allocators::CustomAllocator;
pub use discovery::capture_name;
pub use error::Error;
pub use events::{Event, EventStream, DRAIN_PERIOD};
pub use execs::{Exec, ExecKind, ExecStream};
pub use launcher::{
    pidfd_open, resolve_interpreter, HeldProgram, ProgramExit, ProgramOutput, RunAs,
};
pub use libc_image::{LibcFunction, LibcImage};
pub use memray_ebpf_common::Function;
pub use memray_format::Allocator;
pub use native::NativeCopies;
pub use privileges::require as require_privileges;
pub use probes::{AllocationCounters, MallocProbes};
pub use pthread_keys::PthreadKeyLayout;
pub use recording::{start_capture, OnSignal, Outcome, Recording, Stop};
pub use session::{Follow, Options, PidSet, Session};
pub use system::{ProcessCapture, SystemOutcome, SystemRecording};

/// Whether this binary carries the eBPF object.
pub fn is_built() -> bool {
    object::PROBES.is_some()
}
