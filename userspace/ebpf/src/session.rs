//! The probes loaded once, attached to any number of processes; the
//! Python stack walk of each registered process runs in them.

use std::collections::HashMap as StdHashMap;
use std::num::NonZeroU32;
use std::path::Path;

use aya::maps::{HashMap, MapData, PerCpuArray, PerCpuHashMap, RingBuf};
use aya::programs::uprobe::{UProbeAttachPoint, UProbeLink, UProbeLinkId, UProbeScope};
use aya::programs::{TracePoint, UProbe};
use aya::{Ebpf, Pod};
use memray_ebpf_common::python_stack::{ALLOCATION_DONE_SLOT, ALLOCATION_STACK_DONE_PROGRAM};
use memray_ebpf_common::{
    Counter, Function, PendingCall, TrackedProcess, ALLOCATOR_ENTRY_PROGRAM,
    ALLOCATOR_RETURN_PROGRAM, CHILD_EXIT_HOLD_PROGRAM, COUNTERS_MAP, DROPS_MAP,
    EVENTS_DEFAULT_BYTES, EVENTS_MAP, EXIT_PID_OFFSET, EXIT_TRACEPOINT, FORK_CHILD_PID_OFFSET,
    FORK_TRACEPOINT, INTERPRETER_HOLD_PROGRAM, PENDING_MAP, PROCESSES_MAP, PROCESS_EXIT_PROGRAM,
    PROCESS_FORK_PROGRAM,
};

use crate::after_exit::drop_after_exit;
use crate::events::EventStream;
use crate::interpreter_files::interpreter_files;
use crate::libc_image::LibcImage;
use crate::object::PROBES;
use crate::placement::entry_placement;
use crate::probe_log::{self, ProbeLog};
use crate::python::{self, StackTable, WalkPrograms};
use crate::{privileges, tracefs, AllocationCounters, Error};
use python_frames::PythonProcess;

/// How the probes are loaded.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Size of the ring buffer in bytes: a power of two, at least a page.
    pub ring_buffer_bytes: u32,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            ring_buffer_bytes: EVENTS_DEFAULT_BYTES,
        }
    }
}

/// A pid set entry as aya reads and writes it.
#[derive(Clone, Copy)]
#[repr(transparent)]
struct ProcessEntry(TrackedProcess);
// SAFETY: repr(C) made of u64s: no padding, any bit pattern is valid.
unsafe impl Pod for ProcessEntry {}

/// A pending-call entry as aya reads it.
#[derive(Clone, Copy)]
#[repr(transparent)]
struct PendingEntry(PendingCall);
// SAFETY: repr(C), two u32s then u64s: no padding, any bit pattern is valid.
unsafe impl Pod for PendingEntry {}

/// The loaded probes. Dropping it detaches everything; the processes go on.
pub struct Session {
    ebpf: Ebpf,
    log: ProbeLog,
    /// Keeps the walk's program array filled.
    _walk: WalkPrograms,
    attached: StdHashMap<u32, Attachment>,
    /// The probes of detached processes, inert (nothing of theirs is in the
    /// pid set any more), removed when the session ends or before the next
    /// attach: each removal waits about 0.1 s ([`Session::close_after_exit`]).
    retired: Vec<UProbeLink>,
}

/// The probes placed for one attached process.
struct Attachment {
    /// The allocator probes, on its libc.
    links: Vec<(&'static str, UProbeLinkId)>,
    /// The interpreter holds ([`Session::hold_interpreter`]).
    holds: Vec<(&'static str, UProbeLinkId)>,
    /// Its libc file ([`LibcImage::file_id`]).
    libc: (u64, u64),
    /// Placed for every process mapping that libc (following forks).
    every_process: bool,
}

impl Session {
    /// Loads the probes and the tracepoints that keep the pid set.
    pub fn load(options: Options) -> Result<Session, Error> {
        let object = PROBES.ok_or(Error::NotBuilt)?;
        privileges::require()?;
        tracefs::check_field(FORK_TRACEPOINT, "child_pid", FORK_CHILD_PID_OFFSET)?;
        tracefs::check_field(EXIT_TRACEPOINT, "pid", EXIT_PID_OFFSET)?;
        let mut ebpf = probe_log::load(object, options.ring_buffer_bytes)?;
        let log = ProbeLog::new(&mut ebpf);
        let walk = python::load_walk_programs(
            &mut ebpf,
            &[(ALLOCATION_DONE_SLOT, ALLOCATION_STACK_DONE_PROGRAM)],
        )?;
        for name in [
            ALLOCATOR_ENTRY_PROGRAM,
            ALLOCATOR_RETURN_PROGRAM,
            INTERPRETER_HOLD_PROGRAM,
            CHILD_EXIT_HOLD_PROGRAM,
        ] {
            uprobe(&mut ebpf, name)?
                .load()
                .map_err(program_error(name))?;
        }
        for (name, (category, event)) in [
            (PROCESS_FORK_PROGRAM, FORK_TRACEPOINT),
            (PROCESS_EXIT_PROGRAM, EXIT_TRACEPOINT),
        ] {
            let program: &mut TracePoint = ebpf
                .program_mut(name)
                .ok_or(Error::Missing(name))?
                .try_into()
                .map_err(program_error(name))?;
            program.load().map_err(program_error(name))?;
            program
                .attach(category, event)
                .map_err(program_error(name))?;
        }
        Ok(Session {
            ebpf,
            log,
            _walk: walk,
            attached: StdHashMap::new(),
            retired: Vec::new(),
        })
    }

    /// Starts recording the allocations of process `pid` (and, with
    /// `follow_fork`, of the children it forks from now on).
    ///
    /// Without `follow_fork` the probes are scoped to the process: no other
    /// process traps on them. With it they are placed for every process that
    /// maps the same libc (a forked child inherits them) and the pid set
    /// filters in BPF.
    pub fn attach(&mut self, pid: u32, follow_fork: bool) -> Result<(), Error> {
        if self.attached.contains_key(&pid) {
            return Err(Error::AlreadyAttached(pid));
        }
        // Else a process attached again would be seen by its old probes too.
        self.retired.clear();
        let scope = match (follow_fork, NonZeroU32::new(pid)) {
            (_, None) => return Err(Error::InvalidPid(0)),
            (true, Some(_)) => UProbeScope::AllProcesses,
            (false, Some(pid)) => UProbeScope::OneProcess(pid),
        };
        let libc = LibcImage::of_process(pid)?;
        // Probes placed for every process on a libc fire for the processes
        // with their own probes there too: each call would be seen twice.
        let overlaps = self
            .attached
            .values()
            .any(|a| a.libc == libc.file_id && (a.every_process || follow_fork));
        if overlaps {
            return Err(Error::SharedLibc(pid));
        }
        let mut links = Vec::new();
        let result = self.attach_functions(&libc, scope, &mut links);
        if let Err(error) = result {
            self.retire_links(links);
            return Err(error);
        }
        let attachment = Attachment {
            links,
            holds: Vec::new(),
            libc: libc.file_id,
            every_process: follow_fork,
        };
        self.attached.insert(pid, attachment);
        self.forget_pending(&[pid])?;
        let entry = TrackedProcess {
            flags: if follow_fork {
                TrackedProcess::FOLLOW_FORK
            } else {
                0
            },
            libc_text_start: libc.text_range.0,
            libc_text_end: libc.text_range.1,
            origin: u64::from(pid),
        };
        self.processes()?.insert(pid, ProcessEntry(entry), 0)?;
        Ok(())
    }

    fn attach_functions(
        &mut self,
        libc: &LibcImage,
        scope: UProbeScope,
        links: &mut Vec<(&'static str, UProbeLinkId)>,
    ) -> Result<(), Error> {
        let mut probed = Vec::new();
        for function in Function::ALL {
            let code = match libc.function(function.symbol()) {
                Ok(code) => code,
                // An older libc without reallocarray: nothing calls it there.
                Err(_) if function == Function::Reallocarray => continue,
                Err(error) => return Err(error),
            };
            // Aliases (glibc's memalign and aligned_alloc) are one function.
            if probed.contains(&code.file_offset) {
                continue;
            }
            probed.push(code.file_offset);
            let entry_offset = if function.has_return_probe() || function.is_syscall_wrapper() {
                0
            } else {
                entry_placement(code.bytes, 1).offset
            };
            let entry = UProbeAttachPoint {
                location: (code.file_offset + entry_offset).into(),
                cookie: Some(function.cookie()),
            };
            links.push(self.attach_one(ALLOCATOR_ENTRY_PROGRAM, entry, libc, scope)?);
            if function.has_return_probe() {
                let exit = UProbeAttachPoint {
                    location: code.file_offset.into(),
                    cookie: None,
                };
                links.push(self.attach_one(ALLOCATOR_RETURN_PROGRAM, exit, libc, scope)?);
            }
        }
        Ok(())
    }

    /// Has the children attached process `pid` is followed into stopped
    /// (SIGSTOP; the caller continues them) at libc's `_exit`, so that their
    /// records can be taken in while their memory is there. Nothing without
    /// `follow_fork`. Call it once the process runs its final libc (after
    /// [`Session::follow_exec`]).
    pub fn hold_children_at_exit(&mut self, pid: u32) -> Result<(), Error> {
        let attachment = self.attached.get(&pid).ok_or(Error::NotAttached(pid))?;
        if !attachment.every_process {
            return Ok(());
        }
        let libc = LibcImage::of_process(pid)?;
        let exit = UProbeAttachPoint {
            location: libc.function("_exit")?.file_offset.into(),
            cookie: None,
        };
        let link = self.attach_one(
            CHILD_EXIT_HOLD_PROGRAM,
            exit,
            &libc,
            UProbeScope::AllProcesses,
        )?;
        self.attached
            .get_mut(&pid)
            .ok_or(Error::NotAttached(pid))?
            .holds
            .push(link);
        Ok(())
    }

    fn attach_one(
        &mut self,
        name: &'static str,
        point: UProbeAttachPoint<'static>,
        libc: &LibcImage,
        scope: UProbeScope,
    ) -> Result<(&'static str, UProbeLinkId), Error> {
        let link = uprobe(&mut self.ebpf, name)?
            .attach(point, &libc.path, scope)
            .map_err(program_error(name))?;
        Ok((name, link))
    }

    /// Stops recording process `pid` and the children it was followed into;
    /// its probes go with the session or the next attach (inert meanwhile).
    /// The processes go on.
    pub fn detach(&mut self, pid: u32) -> Result<(), Error> {
        let attachment = self.attached.remove(&pid).ok_or(Error::NotAttached(pid))?;
        let mut processes = self.processes()?;
        // The process itself even if it has exited (and left the set).
        let family: Vec<u32> = processes
            .iter()
            .filter_map(Result::ok)
            .filter(|(tgid, entry)| entry.0.origin == u64::from(pid) && *tgid != pid)
            .map(|(tgid, _)| tgid)
            .chain([pid])
            .collect();
        for tgid in &family {
            // Gone already if it exited meanwhile.
            let _ = processes.remove(tgid);
        }
        self.retire_links(attachment.links);
        self.retire_links(attachment.holds);
        for &tgid in &family {
            python::unregister(&mut self.ebpf, tgid)?;
        }
        self.forget_pending(&family)
    }

    /// Has attached process `pid` stopped (SIGSTOP; the caller continues it)
    /// when its interpreter `executable` starts running the program and
    /// when it starts to finalize. False if `executable` has neither
    /// function (in it or in the libpython it links: not CPython).
    pub fn hold_interpreter(&mut self, pid: u32, executable: &Path) -> Result<bool, Error> {
        let scope = NonZeroU32::new(pid)
            .map(UProbeScope::OneProcess)
            .ok_or(Error::InvalidPid(0))?;
        let mut links = Vec::new();
        // 3.13+ finalizes through _Py_Finalize, older ones in Py_FinalizeEx.
        for symbols in [&["Py_RunMain"][..], &["_Py_Finalize", "Py_FinalizeEx"]] {
            let program = uprobe(&mut self.ebpf, INTERPRETER_HOLD_PROGRAM)?;
            let placed = interpreter_files(executable).iter().find_map(|file| {
                symbols
                    .iter()
                    .find_map(|&symbol| program.attach(symbol, file, scope).ok())
            });
            if let Some(link) = placed {
                links.push((INTERPRETER_HOLD_PROGRAM, link));
            }
        }
        let held = !links.is_empty();
        self.attached
            .get_mut(&pid)
            .ok_or(Error::NotAttached(pid))?
            .holds
            .extend(links);
        Ok(held)
    }

    /// After `exec`, process `pid` maps its own libc (where the dynamic
    /// loader found it, maybe another file than ours): the probes move to
    /// it, and the text range that tells libc's own calls apart is where it
    /// is mapped now.
    pub fn follow_exec(&mut self, pid: u32) -> Result<(), Error> {
        let libc = LibcImage::of_process(pid)?;
        let attachment = self.attached.get_mut(&pid).ok_or(Error::NotAttached(pid))?;
        if attachment.libc != libc.file_id {
            let scope = if attachment.every_process {
                UProbeScope::AllProcesses
            } else {
                UProbeScope::OneProcess(NonZeroU32::new(pid).ok_or(Error::InvalidPid(0))?)
            };
            attachment.libc = libc.file_id;
            let old = std::mem::take(&mut attachment.links);
            self.retire_links(old);
            let mut links = Vec::new();
            let result = self.attach_functions(&libc, scope, &mut links);
            if let Some(attachment) = self.attached.get_mut(&pid) {
                attachment.links = links;
            }
            result?;
        }
        let mut processes = self.processes()?;
        let mut entry = processes.get(&pid, 0)?;
        entry.0.libc_text_start = libc.text_range.0;
        entry.0.libc_text_end = libc.text_range.1;
        processes.insert(pid, entry, 0)?;
        Ok(())
    }

    /// Makes the probes walk the Python stacks of `process` (attached, or a
    /// followed child), from its next allocation on.
    pub fn register_python(&mut self, process: &PythonProcess) -> Result<(), python::Error> {
        python::register(&mut self.ebpf, process)
    }

    /// The probes stop walking the stacks of process `tgid` (it exited).
    pub fn unregister_python(&mut self, tgid: u32) -> Result<(), Error> {
        python::unregister(&mut self.ebpf, tgid)
    }

    /// The Python stacks the probes send. Taken once.
    pub fn stacks(&mut self) -> Result<StackTable, Error> {
        python::stack_table(&mut self.ebpf)
    }

    /// Why stack walks gave up, so far.
    pub fn walk_counters(&self) -> Result<python::WalkCounters, Error> {
        python::walk_counters(&self.ebpf)
    }

    /// Writes the probes' log lines (when `MEMRAY_EBPF_LOG` asks for them).
    pub fn flush_log(&mut self) {
        self.log.flush();
    }

    /// Removes the calls left in flight by threads of `tgids` when their
    /// return probes went away (or by an earlier session): a stale entry would
    /// make the thread's next calls look nested inside it, never recorded.
    fn forget_pending(&mut self, tgids: &[u32]) -> Result<(), Error> {
        let map = self
            .ebpf
            .map_mut(PENDING_MAP)
            .ok_or(Error::Missing(PENDING_MAP))?;
        let mut pending = HashMap::<_, u64, PendingEntry>::try_from(map)?;
        let stale: Vec<u64> = pending
            .keys()
            .filter_map(Result::ok)
            .filter(|thread| tgids.contains(&((thread >> 32) as u32)))
            .collect();
        for thread in stale {
            // Its return probe may have consumed it meanwhile.
            let _ = pending.remove(&thread);
        }
        Ok(())
    }

    fn retire_links(&mut self, links: Vec<(&'static str, UProbeLinkId)>) {
        for (name, link) in links {
            // A link the kernel already dropped has nothing left to undo.
            if let Ok(link) = uprobe(&mut self.ebpf, name)
                .and_then(|program| program.take_link(link).map_err(program_error(name)))
            {
                self.retired.push(link);
            }
        }
    }

    /// Ends the session without waiting for the kernel to remove its
    /// probes: that happens once this process has exited (2.4 s saved at the
    /// end of every recording). Call it last: the probes stay placed, inert
    /// for detached processes, until then.
    pub fn close_after_exit(self) {
        drop_after_exit(self);
    }

    /// The processes being recorded now (attached ones and followed children).
    pub fn tracked(&self) -> Result<Vec<u32>, Error> {
        let map = self
            .ebpf
            .map(PROCESSES_MAP)
            .ok_or(Error::Missing(PROCESSES_MAP))?;
        let processes = HashMap::<_, u32, ProcessEntry>::try_from(map)?;
        Ok(processes.keys().filter_map(Result::ok).collect())
    }

    /// Records of process `pid` lost because the ring buffer was full.
    pub fn drops(&self, pid: u32) -> Result<u64, Error> {
        let map = self.ebpf.map(DROPS_MAP).ok_or(Error::Missing(DROPS_MAP))?;
        let drops = PerCpuHashMap::<_, u32, u64>::try_from(map)?;
        match drops.get(&pid, 0) {
            Ok(per_cpu) => Ok(per_cpu.iter().sum()),
            Err(aya::maps::MapError::KeyNotFound) => Ok(0),
            Err(error) => Err(error.into()),
        }
    }

    /// The records, drained from tokio. Taken once.
    pub fn events(&mut self, batch: usize) -> Result<EventStream, Error> {
        let map = self
            .ebpf
            .take_map(EVENTS_MAP)
            .ok_or(Error::Missing(EVENTS_MAP))?;
        let ring = RingBuf::try_from(map)?;
        EventStream::new(ring, batch).map_err(Error::Io)
    }

    /// The malloc/free counters summed over all CPUs.
    pub fn counters(&self) -> Result<AllocationCounters, Error> {
        let map = self
            .ebpf
            .map(COUNTERS_MAP)
            .ok_or(Error::Missing(COUNTERS_MAP))?;
        let array = PerCpuArray::<_, u64>::try_from(map)?;
        let total = |counter: Counter| -> Result<u64, Error> {
            Ok(array.get(&counter.slot(), 0)?.iter().sum())
        };
        Ok(AllocationCounters {
            malloc_calls: total(Counter::MallocCalls)?,
            malloc_bytes: total(Counter::MallocBytes)?,
            free_calls: total(Counter::FreeCalls)?,
        })
    }

    fn processes(&mut self) -> Result<HashMap<&mut MapData, u32, ProcessEntry>, Error> {
        let map = self
            .ebpf
            .map_mut(PROCESSES_MAP)
            .ok_or(Error::Missing(PROCESSES_MAP))?;
        Ok(HashMap::try_from(map)?)
    }
}

fn uprobe<'a>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut UProbe, Error> {
    ebpf.program_mut(name)
        .ok_or(Error::Missing(name))?
        .try_into()
        .map_err(program_error(name))
}

fn program_error(name: &'static str) -> impl Fn(aya::programs::ProgramError) -> Error {
    move |source| Error::Program { name, source }
}
