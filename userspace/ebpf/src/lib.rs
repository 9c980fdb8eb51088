//! The eBPF side of memray: the probes object built from `ebpf/` and embedded
//! at compile time, and the API that loads it, attaches it to a process and
//! reads what it counted.
//!
//! Built without the object (`MEMRAY_SKIP_EBPF=1`), every entry point returns
//! [`Error::NotBuilt`].

mod object;
mod probes;
pub mod python;

pub use probes::{AllocationCounters, Error, MallocProbes};

/// Whether this binary carries the eBPF object.
pub fn is_built() -> bool {
    object::PROBES.is_some()
}
