//! The userspace side of the probes' Python stack walk: registering a
//! process (its interpreter's `Target` and where its threads keep their
//! thread states), loading the walk programs, receiving the stacks, and
//! naming their code objects.

mod code_deaths;
mod codes;
mod kernel_btf;
mod sampler;
mod snapshots;
mod stacks;
mod thread_key;

use aya::maps::{HashMap, Map, MapData, PerCpuArray, RingBuf};
use aya::{Ebpf, Pod};
use memray_ebpf_common::code_snapshot::CODE_SNAPSHOTS_MAP;
use memray_ebpf_common::python_stack::{
    ProcessWalk, WalkCounter, PROCESS_WALKS_MAP, PYTHON_STACKS_MAP, PYTHON_STACK_COUNTERS_MAP,
    PYTHON_TARGETS_MAP, STACK_WALK_PROGRAM, STACK_WALK_PROGRAMS_MAP, WALK_SLOT,
};
use python_frames::{PythonProcess, Target};

use crate::uprobe_multi::UprobePrograms;
use crate::{LibcImage, PthreadKeyLayout};

pub(crate) use code_deaths::CodeDeaths;
pub use codes::RemoteCodes;
pub use sampler::{Sample, StackSampler};
pub use snapshots::{CodeSnapshot, CodeSnapshots};
pub use stacks::{Stack, StackTable};
pub use thread_key::thread_state_slot;

/// Python-specific failures; loading and map errors are the crate's own.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Ebpf(#[from] crate::Error),
    #[error(transparent)]
    Python(#[from] python_frames::Error),
    #[error("CPython {major}.{minor}: no known place for its thread-state key")]
    Unsupported { major: u32, minor: u32 },
    #[error("cannot find the threads' Python thread states: {0}")]
    NoThreadKey(&'static str),
    #[error("kernel BTF: {0}")]
    KernelBtf(String),
}

/// Why walks gave up, summed over CPUs (indexed like `WalkCounter::ALL`).
pub type WalkCounters = [u64; WalkCounter::ALL.len()];

/// Makes the probes walk the Python stacks of `process` (its libc tells
/// where threads keep their pthread-specific values). `remembered`: 0, or
/// a number unique in the session once its code object deallocation is
/// probed ([`ProcessWalk`]).
pub fn register(ebpf: &mut Ebpf, process: &PythonProcess, remembered: u64) -> Result<(), Error> {
    let pid = u32::try_from(process.pid()).map_err(|_| crate::Error::InvalidPid(process.pid()))?;
    let libc = LibcImage::of_process(pid)?;
    let keys = PthreadKeyLayout::from_getspecific(libc.function("pthread_getspecific")?.bytes)
        .ok_or(Error::NoThreadKey(
            "pthread_getspecific could not be decoded",
        ))?;
    let walk = ProcessWalk {
        task_fsbase: kernel_btf::task_fsbase_offset().map_err(Error::KernelBtf)?,
        tstate_slot: thread_state_slot(process, &keys)?,
        remembered,
        code_freed_at: 0,
    };
    Ok(fill_process_maps(ebpf, process, walk)?)
}

/// The probes stop walking the stacks of process `tgid` (gone or detached).
pub fn unregister(ebpf: &mut Ebpf, tgid: u32) -> Result<(), crate::Error> {
    let mut targets: HashMap<_, u32, TargetValue> =
        HashMap::try_from(map(ebpf, PYTHON_TARGETS_MAP)?)?;
    // Absent if it was never registered.
    let _ = targets.remove(&tgid);
    let mut walks: HashMap<_, u32, WalkValue> = HashMap::try_from(map(ebpf, PROCESS_WALKS_MAP)?)?;
    let _ = walks.remove(&tgid);
    Ok(())
}

fn fill_process_maps(
    ebpf: &mut Ebpf,
    process: &PythonProcess,
    walk: ProcessWalk,
) -> Result<(), crate::Error> {
    let tgid = process.pid() as u32;
    let mut targets: HashMap<_, u32, TargetValue> =
        HashMap::try_from(map(ebpf, PYTHON_TARGETS_MAP)?)?;
    targets.insert(tgid, TargetValue(*process.target()), 0)?;
    let mut walks: HashMap<_, u32, WalkValue> = HashMap::try_from(map(ebpf, PROCESS_WALKS_MAP)?)?;
    walks.insert(tgid, WalkValue(walk), 0)?;
    Ok(())
}

/// The map values, as aya wants them (`Pod` is aya's trait, the types are not ours).
#[repr(transparent)]
#[derive(Clone, Copy)]
struct TargetValue(Target);
// SAFETY: `Target` is `#[repr(C)]` plain integers without padding.
unsafe impl Pod for TargetValue {}

#[repr(transparent)]
#[derive(Clone, Copy)]
struct WalkValue(ProcessWalk);
// SAFETY: `ProcessWalk` is `#[repr(C)]`, four `u64`s.
unsafe impl Pod for WalkValue {}

/// The filled program array of the walk. The kernel empties a program array
/// when userspace closes it, so keep this as long as the probes run.
pub struct WalkPrograms {
    _slots: MapData,
}

/// Puts the walk program into its slot and each `(slot, program)` that
/// ends a walk into its own (all of them loaded in `programs`).
pub(crate) fn load_walk_programs(
    ebpf: &mut Ebpf,
    programs: &UprobePrograms,
    done: &[(u32, &'static str)],
) -> Result<WalkPrograms, crate::Error> {
    let missing = || crate::Error::Missing(STACK_WALK_PROGRAMS_MAP);
    let Map::ProgramArray(slots) = ebpf.take_map(STACK_WALK_PROGRAMS_MAP).ok_or_else(missing)?
    else {
        return Err(missing());
    };
    for &(slot, name) in std::iter::once(&(WALK_SLOT, STACK_WALK_PROGRAM)).chain(done) {
        programs.fill_slot(&slots, slot, name)?;
    }
    Ok(WalkPrograms { _slots: slots })
}

/// The table of the stacks the probes send.
pub fn stack_table(ebpf: &mut Ebpf) -> Result<StackTable, crate::Error> {
    Ok(StackTable::new(take_ring(ebpf, PYTHON_STACKS_MAP)?))
}

/// The code objects the probes copy as they are freed.
pub fn code_snapshots(ebpf: &mut Ebpf) -> Result<CodeSnapshots, crate::Error> {
    Ok(CodeSnapshots::new(take_ring(ebpf, CODE_SNAPSHOTS_MAP)?))
}

fn take_ring(ebpf: &mut Ebpf, name: &'static str) -> Result<RingBuf<MapData>, crate::Error> {
    let map = ebpf.take_map(name).ok_or(crate::Error::Missing(name))?;
    Ok(RingBuf::try_from(map)?)
}

/// The reasons walks gave up, in words, with how often (the non-zero ones).
pub fn give_ups(counters: &WalkCounters) -> Vec<(&'static str, u64)> {
    WalkCounter::ALL
        .iter()
        .zip(counters)
        .filter(|&(_, &count)| count > 0)
        .filter_map(|(counter, &count)| {
            let reason = match counter {
                WalkCounter::Walks | WalkCounter::Remembered => return None,
                WalkCounter::NoTarget => "no interpreter registered for the process",
                WalkCounter::NoThreadState => "the thread had no Python thread state",
                WalkCounter::UnreadableFrame => "a frame could not be read",
                WalkCounter::DepthCut => "the stack was cut (deeper than the walk reaches)",
                WalkCounter::StackLost => "the stack's record found its ring buffer full",
            };
            Some((reason, count))
        })
        .collect()
}

/// The walk counters so far.
pub fn walk_counters(ebpf: &Ebpf) -> Result<WalkCounters, crate::Error> {
    let array = PerCpuArray::<_, u64>::try_from(
        ebpf.map(PYTHON_STACK_COUNTERS_MAP)
            .ok_or(crate::Error::Missing(PYTHON_STACK_COUNTERS_MAP))?,
    )?;
    let mut totals = WalkCounters::default();
    for (slot, total) in totals.iter_mut().enumerate() {
        *total = array.get(&(slot as u32), 0)?.iter().sum();
    }
    Ok(totals)
}

fn map<'a>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut aya::maps::Map, crate::Error> {
    ebpf.map_mut(name).ok_or(crate::Error::Missing(name))
}
