//! Loading the allocation probes and attaching them to one process.

use std::num::NonZeroU32;

use aya::maps::PerCpuArray;
use aya::programs::uprobe::UProbeScope;
use aya::programs::{ProgramError, UProbe};
use aya::Ebpf;
use memray_ebpf_common::{
    Counter, COUNTERS_MAP, FREE_ENTRY_PROGRAM, MALLOC_ENTRY_PROGRAM, MALLOC_RETURN_PROGRAM,
};

use crate::object::PROBES;

/// The C library whose allocator is probed, resolved through the target's
/// `/proc/<pid>/maps`.
const LIBC: &str = "libc";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("this memray was built without eBPF support (MEMRAY_SKIP_EBPF was set)")]
    NotBuilt,
    #[error("pid must be positive, got {0}")]
    InvalidPid(i32),
    #[error("cannot load the eBPF object: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("eBPF program {name}: {source}")]
    Program {
        name: &'static str,
        source: ProgramError,
    },
    #[error("the eBPF object has no {0}")]
    Missing(&'static str),
    #[error("cannot read the eBPF counters: {0}")]
    Map(#[from] aya::maps::MapError),
}

/// Totals counted since the probes were attached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllocationCounters {
    /// Successful `malloc` calls.
    pub malloc_calls: u64,
    /// Bytes those calls requested.
    pub malloc_bytes: u64,
    /// `free` calls with a non-NULL pointer.
    pub free_calls: u64,
}

/// `malloc` entry and return probes plus a `free` entry probe on one process's
/// libc. Dropping it detaches them.
pub struct MallocProbes {
    ebpf: Ebpf,
}

impl MallocProbes {
    /// Loads the probes and attaches them to the libc mapped by process `pid`;
    /// they fire for that process only.
    pub fn attach(pid: i32) -> Result<MallocProbes, Error> {
        let object = PROBES.ok_or(Error::NotBuilt)?;
        let scope = u32::try_from(pid)
            .ok()
            .and_then(NonZeroU32::new)
            .map(UProbeScope::OneProcess)
            .ok_or(Error::InvalidPid(pid))?;
        let mut ebpf = Ebpf::load(object)?;
        for (program, function) in [
            (MALLOC_ENTRY_PROGRAM, "malloc"),
            (MALLOC_RETURN_PROGRAM, "malloc"),
            (FREE_ENTRY_PROGRAM, "free"),
        ] {
            attach_one(&mut ebpf, program, function, scope)?;
        }
        Ok(MallocProbes { ebpf })
    }

    /// The counters summed over all CPUs.
    pub fn counters(&self) -> Result<AllocationCounters, Error> {
        let map = self
            .ebpf
            .map(COUNTERS_MAP)
            .ok_or(Error::Missing(COUNTERS_MAP))?;
        let array = PerCpuArray::<_, u64>::try_from(map)?;
        let total = |counter: Counter| -> Result<u64, Error> {
            let per_cpu = array.get(&counter.slot(), 0)?;
            Ok(per_cpu.iter().sum())
        };
        Ok(AllocationCounters {
            malloc_calls: total(Counter::MallocCalls)?,
            malloc_bytes: total(Counter::MallocBytes)?,
            free_calls: total(Counter::FreeCalls)?,
        })
    }
}

fn attach_one(
    ebpf: &mut Ebpf,
    name: &'static str,
    function: &str,
    scope: UProbeScope,
) -> Result<(), Error> {
    let with_name = |source| Error::Program { name, source };
    let program: &mut UProbe = ebpf
        .program_mut(name)
        .ok_or(Error::Missing(name))?
        .try_into()
        .map_err(with_name)?;
    program.load().map_err(with_name)?;
    program.attach(function, LIBC, scope).map_err(with_name)?;
    Ok(())
}
