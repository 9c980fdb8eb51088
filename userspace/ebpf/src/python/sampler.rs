//! Python stacks sampled at a function of a process: a uprobe that walks
//! the calling thread's stack each time the function is called. It shows
//! where Python code calls a C function from, and it tests the walk.

use aya::maps::{MapData, RingBuf};
use aya::Ebpf;
use memray_ebpf_common::python_stack::{
    StackSample, CODE_FREED_PROGRAM, SAMPLE_DONE_SLOT, STACK_SAMPLES_MAP,
    STACK_SAMPLE_DONE_PROGRAM, STACK_SAMPLE_PROGRAM, STACK_WALK_PROGRAM,
};
use python_frames::PythonProcess;

use super::{
    code_snapshots, load_walk_programs, register, stack_table, walk_counters, CodeDeaths,
    CodeSnapshots, Error, StackTable, WalkCounters, WalkPrograms,
};
use crate::object::PROBES;
use crate::probe_log::{self, ProbeLog};
use crate::ring_record::read;
use crate::uprobe_multi::{Sites, UprobeLink, UprobePrograms};
use crate::LibcImage;
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
    snapshots: CodeSnapshots,
    _link: UprobeLink,
    /// On the interpreter's code object deallocation, if placed.
    code_deaths: Option<UprobeLink>,
    _programs: UprobePrograms,
}

impl StackSampler {
    /// Walks the Python stack of every thread of `process` that calls
    /// `function` of `library` (a path, or the name of a file the process
    /// has mapped, with or without its version: `libc`).
    pub fn attach(
        process: &PythonProcess,
        library: &str,
        function: &str,
    ) -> Result<StackSampler, Error> {
        let object = PROBES.ok_or(crate::Error::NotBuilt)?;
        let pid = u32::try_from(process.pid())
            .ok()
            .filter(|&pid| pid > 0)
            .ok_or(crate::Error::InvalidPid(process.pid()))?;
        let mut ebpf = probe_log::load(object, &Options::default())?;
        let programs = UprobePrograms::load(
            object,
            &ebpf,
            &[
                STACK_SAMPLE_PROGRAM,
                STACK_WALK_PROGRAM,
                STACK_SAMPLE_DONE_PROGRAM,
                CODE_FREED_PROGRAM,
            ],
        )?;
        let log = ProbeLog::new(&mut ebpf);
        let code_deaths = match CodeDeaths::default().site(process)? {
            Some(site) => Some(programs.attach(
                CODE_FREED_PROGRAM,
                &Sites::entries(&site.image.path, &[site.file_offset], pid),
            )?),
            None => None,
        };
        register(&mut ebpf, process, u64::from(code_deaths.is_some()))?;
        let walk = load_walk_programs(
            &mut ebpf,
            &programs,
            &[(SAMPLE_DONE_SLOT, STACK_SAMPLE_DONE_PROGRAM)],
        )?;
        let stacks = stack_table(&mut ebpf)?;
        let snapshots = code_snapshots(&mut ebpf)?;
        let samples = RingBuf::try_from(
            ebpf.take_map(STACK_SAMPLES_MAP)
                .ok_or(crate::Error::Missing(STACK_SAMPLES_MAP))?,
        )
        .map_err(crate::Error::from)?;
        let image =
            LibcImage::mapped(pid, |path| names_library(path, library))?.ok_or_else(|| {
                crate::Error::Process {
                    pid,
                    what: format!("{library} is not mapped"),
                }
            })?;
        let offset = image.function(function)?.file_offset;
        let link = programs.attach(
            STACK_SAMPLE_PROGRAM,
            &Sites::entries(&image.path, &[offset], pid),
        )?;
        Ok(StackSampler {
            ebpf,
            log,
            _walk: walk,
            samples,
            stacks,
            snapshots,
            _link: link,
            code_deaths,
            _programs: programs,
        })
    }

    /// The samples taken since the last call, with the stacks they name
    /// taken into the table.
    pub fn samples(&mut self) -> Vec<Sample> {
        let mut out = Vec::new();
        while let Some(record) = self.samples.next() {
            if let Some(sample) = read::<StackSample>(&record) {
                out.push(Sample {
                    tid: sample.tid,
                    status: sample.stack.status,
                    stack_id: sample.stack.id,
                });
            }
        }
        // After the samples: every stack they name is in the ring by now.
        self.stacks.drain();
        self.snapshots.drain();
        self.log.flush();
        out
    }

    pub fn stacks(&self) -> &StackTable {
        &self.stacks
    }

    /// The code objects freed while sampling, as they were.
    pub fn code_snapshots(&mut self) -> &mut CodeSnapshots {
        &mut self.snapshots
    }

    /// Whether the walk remembers stacks by their code addresses (the
    /// interpreter's code object deallocation is probed).
    pub fn remembers_stacks(&self) -> bool {
        self.code_deaths.is_some()
    }

    pub fn counters(&self) -> Result<WalkCounters, crate::Error> {
        walk_counters(&self.ebpf)
    }
}

/// Whether the mapped file at `path` is `library`: that path, or a file
/// named after it (`libc` names `libc.so.6` and `libc-2.31.so`).
fn names_library(path: &str, library: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    path == library
        || name
            .strip_prefix(library)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '-']))
}
