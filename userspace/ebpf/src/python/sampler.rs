//! Python stacks sampled at a function of a process: a uprobe that walks
//! the calling thread's stack each time the function is called. It shows
//! where Python code calls a C function from, and it tests the walk.

use std::num::NonZeroU32;

use aya::maps::{MapData, RingBuf};
use aya::programs::uprobe::UProbeScope;
use aya::Ebpf;
use memray_ebpf_common::python_stack::{
    StackSample, SAMPLE_DONE_SLOT, STACK_SAMPLES_MAP, STACK_SAMPLE_DONE_PROGRAM,
    STACK_SAMPLE_PROGRAM,
};
use python_frames::PythonProcess;

use super::{
    load_walk_programs, loaded_uprobe, register, stack_table, walk_counters, Error, StackTable,
    WalkCounters, WalkPrograms,
};
use crate::object::PROBES;
use crate::probe_log::{self, ProbeLog};
use crate::Options;

/// One call of the sampled function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    pub tid: u32,
    /// `STATUS_*` bits of the walk.
    pub status: u16,
    /// 0 if the thread had no Python stack; else a key of the stack table.
    pub stack_id: u64,
}

/// The sampling probe attached to one function of one process.
pub struct StackSampler {
    ebpf: Ebpf,
    log: ProbeLog,
    _walk: WalkPrograms,
    samples: RingBuf<MapData>,
    stacks: StackTable,
}

impl StackSampler {
    /// Walks the Python stack of every thread of `process` that calls
    /// `function` of `library` (a path, or a name the process has mapped).
    pub fn attach(
        process: &PythonProcess,
        library: &str,
        function: &str,
    ) -> Result<StackSampler, Error> {
        let object = PROBES.ok_or(crate::Error::NotBuilt)?;
        let pid = u32::try_from(process.pid())
            .ok()
            .and_then(NonZeroU32::new)
            .ok_or(crate::Error::InvalidPid(process.pid()))?;
        let mut ebpf = probe_log::load(object, &Options::default())?;
        let log = ProbeLog::new(&mut ebpf);
        register(&mut ebpf, process)?;
        let walk = load_walk_programs(&mut ebpf, &[(SAMPLE_DONE_SLOT, STACK_SAMPLE_DONE_PROGRAM)])?;
        let stacks = stack_table(&mut ebpf)?;
        let samples = RingBuf::try_from(
            ebpf.take_map(STACK_SAMPLES_MAP)
                .ok_or(crate::Error::Missing(STACK_SAMPLES_MAP))?,
        )
        .map_err(crate::Error::from)?;
        loaded_uprobe(&mut ebpf, STACK_SAMPLE_PROGRAM)?
            .attach(function, library, UProbeScope::OneProcess(pid))
            .map_err(|source| crate::Error::Program {
                name: STACK_SAMPLE_PROGRAM,
                source,
            })?;
        Ok(StackSampler {
            ebpf,
            log,
            _walk: walk,
            samples,
            stacks,
        })
    }

    /// The samples taken since the last call, with the stacks they name
    /// taken into the table.
    pub fn samples(&mut self) -> Vec<Sample> {
        let mut out = Vec::new();
        while let Some(record) = self.samples.next() {
            if record.len() >= size_of::<StackSample>() {
                // SAFETY: `StackSample` is plain integers; the record holds one.
                let sample: StackSample =
                    unsafe { record.as_ptr().cast::<StackSample>().read_unaligned() };
                out.push(Sample {
                    tid: sample.tid,
                    status: sample.stack.status,
                    stack_id: sample.stack.id,
                });
            }
        }
        // After the samples: every stack they name is in the ring by now.
        self.stacks.drain();
        self.log.flush();
        out
    }

    pub fn stacks(&self) -> &StackTable {
        &self.stacks
    }

    pub fn counters(&self) -> Result<WalkCounters, crate::Error> {
        walk_counters(&self.ebpf)
    }
}
