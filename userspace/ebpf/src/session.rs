//! The probes loaded once, attached to any number of processes; the
//! Python stack walk of each registered process runs in them.

use std::collections::{HashMap as StdHashMap, HashSet};
use std::num::NonZeroU32;
use std::path::Path;

use aya::maps::{Array, HashMap, MapData, PerCpuArray, PerCpuHashMap, RingBuf};
use aya::programs::uprobe::{UProbeAttachPoint, UProbeLink, UProbeLinkId, UProbeScope};
use aya::programs::{TracePoint, UProbe};
use aya::{Ebpf, Pod};
use memray_ebpf_common::execs::{EXECS_MAP, EXEC_TRACEPOINT, EXEC_WATCH_MAP, PROCESS_EXEC_PROGRAM};
use memray_ebpf_common::native_stack::{
    NATIVE_STACKS_MAP, NATIVE_UNMAP_PROGRAM, NATIVE_UNMAP_TRACEPOINT,
};
use memray_ebpf_common::python_stack::{ALLOCATION_DONE_SLOT, ALLOCATION_STACK_DONE_PROGRAM};
use memray_ebpf_common::{
    Counter, Function, PendingCall, TrackedProcess, ALLOCATOR_ENTRY_PROGRAM,
    ALLOCATOR_RETURN_PROGRAM, CHILD_EXIT_HOLD_PROGRAM, COUNTERS_MAP, DROPS_MAP,
    EVENTS_DEFAULT_BYTES, EVENTS_MAP, EXIT_PID_OFFSET, EXIT_TRACEPOINT, FORK_CHILD_PID_OFFSET,
    FORK_TRACEPOINT, INTERPRETER_HOLD_PROGRAM, PENDING_MAP, PROCESSES_MAP, PROCESS_EXIT_PROGRAM,
    PROCESS_FORK_PROGRAM,
};

use crate::after_exit::drop_after_exit;
use crate::custom_allocators::CustomAllocator;
use crate::events::EventStream;
use crate::execs::ExecStream;
use crate::interpreter_files::interpreter_files;
use crate::libc_image::LibcImage;
use crate::native::NativeCopies;
use crate::object::PROBES;
use crate::placement::entry_placement;
use crate::probe_log::{self, ProbeLog};
use crate::python::{self, StackTable, WalkPrograms};
use crate::python_allocators::PythonAllocators;
use crate::{privileges, tracefs, AllocationCounters, Error};
use python_frames::PythonProcess;

/// What is followed from a recorded process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Follow {
    /// The processes it forks (each into a capture of its own).
    pub forks: bool,
    /// The programs it and its children exec (CPython ones into captures).
    pub execs: bool,
}

impl Follow {
    fn flags(self) -> u64 {
        let mut flags = 0;
        if self.forks {
            flags |= TrackedProcess::FOLLOW_FORK;
        }
        if self.execs {
            flags |= TrackedProcess::FOLLOW_EXEC;
        }
        flags
    }
}

/// How the probes are loaded.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Size of the ring buffer in bytes: a power of two, at least a page.
    pub ring_buffer_bytes: u32,
    /// Room for native stack copies (`--native`;
    /// [`Session::record_native_stacks`]).
    pub native_stacks: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            ring_buffer_bytes: EVENTS_DEFAULT_BYTES,
            native_stacks: false,
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
// SAFETY: repr(C), two u32s, u64s, then two u32s: no padding, any bit pattern is valid.
unsafe impl Pod for PendingEntry {}

/// The loaded probes. Dropping it detaches everything; the processes go on.
pub struct Session {
    ebpf: Ebpf,
    log: ProbeLog,
    /// Keeps the walk's program array filled.
    _walk: WalkPrograms,
    attached: StdHashMap<u32, Attachment>,
    /// The interpreter holds ([`Session::hold_interpreter`]), by process.
    holds: StdHashMap<u32, Vec<(&'static str, UProbeLinkId)>>,
    /// Probes placed for every process mapping a libc, by its file id, for
    /// the processes tracked without an attachment of their own
    /// ([`Session::track`]) or followed into a program on another libc,
    /// whose forks are followed.
    shared: StdHashMap<(u64, u64), Vec<(&'static str, UProbeLinkId)>>,
    /// The probes of each followed program whose forks are not
    /// (`--follow-exec` alone): its own, so that no other process traps on
    /// them.
    own: StdHashMap<u32, LibcProbes>,
    /// The third-party allocators to probe ([`Session::probe_allocators`]).
    custom: Vec<CustomAllocator>,
    /// Their probes, by the attached process they are for (0: every process)…
    custom_links: StdHashMap<u32, Vec<(&'static str, UProbeLinkId)>>,
    /// …and the libraries (file ids) they are placed on.
    custom_placed: HashSet<(u32, (u64, u64))>,
    /// `--trace-python-allocators` ([`Session::probe_python_allocators`]);
    /// the probes go with the third-party allocators' in `custom_links`.
    python_allocators: PythonAllocators,
    /// The probes of detached processes, inert (nothing of theirs is in the
    /// pid set any more), removed when the session ends or before the next
    /// attach: each removal waits about 0.1 s ([`Session::close_after_exit`]).
    retired: Vec<UProbeLink>,
}

/// The allocator probes on one libc file.
#[derive(Default)]
struct LibcProbes {
    /// The file ([`LibcImage::file_id`]).
    libc: (u64, u64),
    links: Vec<(&'static str, UProbeLinkId)>,
}

/// The probes placed for one attached process.
struct Attachment {
    /// The allocator probes, on its libc.
    probes: LibcProbes,
    /// Placed for every process mapping that libc (following forks).
    every_process: bool,
    /// The holds of its followed children at `_exit`
    /// ([`Session::hold_children_at_exit`]).
    exit_holds: Vec<(&'static str, UProbeLinkId)>,
}

impl Session {
    /// Loads the probes and the tracepoints that keep the pid set.
    pub fn load(options: Options) -> Result<Session, Error> {
        let object = PROBES.ok_or(Error::NotBuilt)?;
        privileges::require()?;
        tracefs::check_field(FORK_TRACEPOINT, "child_pid", FORK_CHILD_PID_OFFSET)?;
        tracefs::check_field(EXIT_TRACEPOINT, "pid", EXIT_PID_OFFSET)?;
        let mut ebpf = probe_log::load(object, &options)?;
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
            (PROCESS_EXEC_PROGRAM, EXEC_TRACEPOINT),
            (NATIVE_UNMAP_PROGRAM, NATIVE_UNMAP_TRACEPOINT),
        ] {
            // A syscall tracepoint puts every thread of the machine on the slow syscall path.
            if name == NATIVE_UNMAP_PROGRAM && !options.native_stacks {
                continue;
            }
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
            holds: StdHashMap::new(),
            shared: StdHashMap::new(),
            own: StdHashMap::new(),
            custom: Vec::new(),
            custom_links: StdHashMap::new(),
            custom_placed: HashSet::new(),
            python_allocators: PythonAllocators::default(),
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
            .any(|a| a.probes.libc == libc.file_id && (a.every_process || follow_fork))
            || self.shared.contains_key(&libc.file_id);
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
            probes: LibcProbes {
                libc: libc.file_id,
                links,
            },
            every_process: follow_fork,
            exit_holds: Vec::new(),
        };
        self.attached.insert(pid, attachment);
        // Every probe before it enters the pid set, recorded.
        self.place_custom(pid, follow_fork)?;
        self.forget_pending(&[pid])?;
        let mut flags = TrackedProcess::RECORDED;
        if follow_fork {
            flags |= TrackedProcess::FOLLOW_FORK;
        }
        let entry = TrackedProcess {
            flags,
            libc_text_start: libc.text_range.0,
            libc_text_end: libc.text_range.1,
            origin: u64::from(pid),
        };
        self.processes()?.insert(pid, ProcessEntry(entry), 0)?;
        Ok(())
    }

    /// Probes libc's allocator functions.
    fn attach_functions(
        &mut self,
        libc: &LibcImage,
        scope: UProbeScope,
        links: &mut Vec<(&'static str, UProbeLinkId)>,
    ) -> Result<(), Error> {
        // An older libc without reallocarray: nothing calls it there.
        let functions = Function::ALL.map(|f| (f, f.symbol(), f != Function::Reallocarray));
        self.attach_symbols(libc, &functions, scope, links)
    }

    /// Probes each `(function, symbol, required)` of `library` as that
    /// allocator function; a symbol not required is skipped where missing.
    fn attach_symbols(
        &mut self,
        library: &LibcImage,
        functions: &[(Function, &str, bool)],
        scope: UProbeScope,
        links: &mut Vec<(&'static str, UProbeLinkId)>,
    ) -> Result<(), Error> {
        let mut probed = Vec::new();
        for &(function, symbol, required) in functions {
            let code = match library.function(symbol) {
                Ok(code) => code,
                Err(_) if !required => continue,
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
            links.push(self.attach_one(ALLOCATOR_ENTRY_PROGRAM, entry, library, scope)?);
            if function.has_return_probe() {
                let exit = UProbeAttachPoint {
                    location: code.file_offset.into(),
                    cookie: None,
                };
                links.push(self.attach_one(ALLOCATOR_RETURN_PROGRAM, exit, library, scope)?);
            }
        }
        Ok(())
    }

    /// Has the children attached process `pid` is followed into stopped
    /// (SIGSTOP; the caller continues them) at libc's `_exit`, so that their
    /// records can be taken in while their memory is there. Nothing without
    /// `follow_fork`. Call it once the process runs its final libc (after
    /// [`Session::follow_exec`]). True if they are held.
    pub fn hold_children_at_exit(&mut self, pid: u32) -> Result<bool, Error> {
        let attachment = self.attached.get(&pid).ok_or(Error::NotAttached(pid))?;
        if !attachment.every_process {
            return Ok(false);
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
            .exit_holds
            .push(link);
        Ok(true)
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
        self.retire_links(attachment.probes.links);
        self.retire_links(attachment.exit_holds);
        self.python_allocators.forget(pid);
        for &tgid in &family {
            self.release_holds(tgid);
            self.retire_own(tgid);
            python::unregister(&mut self.ebpf, tgid)?;
        }
        self.forget_pending(&family)
    }

    /// Has tracked process `pid` stopped (SIGSTOP; the caller continues it)
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
        self.holds.entry(pid).or_default().extend(links);
        Ok(held)
    }

    /// Removes the interpreter holds placed for process `pid` (it ran
    /// another program, or exited).
    pub fn release_holds(&mut self, pid: u32) {
        if let Some(links) = self.holds.remove(&pid) {
            self.detach_links(links);
        }
    }

    /// After `exec`, process `pid` maps its own libc (where the dynamic
    /// loader found it, maybe another file than ours): the probes move to
    /// it, and the text range that tells libc's own calls apart is where it
    /// is mapped now.
    pub fn follow_exec(&mut self, pid: u32) -> Result<(), Error> {
        let libc = LibcImage::of_process(pid)?;
        if !self.custom.is_empty() {
            // Their probes may be placed while it runs (TrackedProcess::RECORDED).
            self.update_process(pid, |entry| entry.flags &= !TrackedProcess::RECORDED)?;
        }
        let attachment = self.attached.get_mut(&pid).ok_or(Error::NotAttached(pid))?;
        let every_process = attachment.every_process;
        let old = std::mem::take(&mut attachment.probes);
        let scope = match every_process {
            true => UProbeScope::AllProcesses,
            false => UProbeScope::OneProcess(NonZeroU32::new(pid).ok_or(Error::InvalidPid(0))?),
        };
        let probes = self.move_probes(pid, old, &libc, scope);
        if let Some(attachment) = self.attached.get_mut(&pid) {
            attachment.probes = probes?;
        }
        self.place_custom(pid, every_process)?;
        self.record_calls(pid, &libc)
    }

    /// The probes `old` of process `pid` (placed for `scope`), moved to
    /// `libc`: kept if they are on that file already (they follow the
    /// process through exec), else set aside and placed anew, while the
    /// process is not recorded (it may be running). On failure, what was
    /// placed is set aside.
    fn move_probes(
        &mut self,
        pid: u32,
        old: LibcProbes,
        libc: &LibcImage,
        scope: UProbeScope,
    ) -> Result<LibcProbes, Error> {
        if !old.links.is_empty() && old.libc == libc.file_id {
            return Ok(old);
        }
        self.retire_links(old.links);
        // None of its calls counts while probes are placed
        // (TrackedProcess::RECORDED).
        self.update_process(pid, |entry| entry.flags &= !TrackedProcess::RECORDED)?;
        let mut links = Vec::new();
        let result = self.attach_functions(libc, scope, &mut links);
        let probes = LibcProbes {
            libc: libc.file_id,
            links,
        };
        match result {
            Ok(()) => Ok(probes),
            Err(error) => {
                self.retire_links(probes.links);
                Err(error)
            }
        }
    }

    /// Also probe these third-party allocators (`--allocator`) in every
    /// process attached or followed from now on that maps their library.
    pub fn probe_allocators(&mut self, allocators: Vec<CustomAllocator>) {
        self.custom = allocators;
    }

    /// Places the third-party allocators' probes on the libraries process
    /// `pid` maps (for every process, or for it alone), unless they are
    /// there already.
    fn place_custom(&mut self, pid: u32, every_process: bool) -> Result<(), Error> {
        let scope = match (every_process, NonZeroU32::new(pid)) {
            (true, _) => UProbeScope::AllProcesses,
            (false, Some(pid)) => UProbeScope::OneProcess(pid),
            (false, None) => return Err(Error::InvalidPid(0)),
        };
        let owner = if every_process { 0 } else { pid };
        let mut libraries: Vec<String> = self.custom.iter().map(|c| c.library.clone()).collect();
        libraries.sort();
        libraries.dedup();
        for library in libraries {
            let wanted: Vec<CustomAllocator> = self
                .custom
                .iter()
                .filter(|c| c.library == library)
                .cloned()
                .collect();
            let Some(image) = LibcImage::mapped(pid, |path| wanted[0].is_library(path))? else {
                continue;
            };
            if !self.custom_placed.insert((owner, image.file_id)) {
                continue;
            }
            let functions: Vec<(Function, &str, bool)> = wanted
                .iter()
                .map(|c| (c.function, c.symbol.as_str(), c.required))
                .collect();
            let mut links = Vec::new();
            let result = self.attach_symbols(&image, &functions, scope, &mut links);
            self.custom_links.entry(owner).or_default().extend(links);
            result?;
        }
        Ok(())
    }

    /// A followed process `pid` (a child of an attached one, or tracked)
    /// runs a new program, which may map another libc (a container's, or
    /// another interpreter's), and is recorded from now on. If its forks are
    /// followed, the probes are placed on that libc for every process (a
    /// forked child inherits them), unless they are there already; else
    /// for it alone.
    pub fn follow_into_program(&mut self, pid: u32) -> Result<(), Error> {
        let libc = LibcImage::of_process(pid)?;
        let flags = self.processes()?.get(&pid, 0)?.0.flags;
        let every_process = flags & TrackedProcess::FOLLOW_FORK != 0;
        if every_process {
            self.cover(&libc)?;
        } else {
            let scope = UProbeScope::OneProcess(NonZeroU32::new(pid).ok_or(Error::InvalidPid(0))?);
            let old = self.own.remove(&pid).unwrap_or_default();
            let probes = self.move_probes(pid, old, &libc, scope)?;
            self.own.insert(pid, probes);
        }
        self.place_custom(pid, every_process)?;
        self.record_calls(pid, &libc)
    }

    /// Puts process `pid` in the pid set with `follow`, without probes of
    /// its own (`attach --all`: many processes, one set of probes per
    /// libc), not recorded yet: [`Session::follow_into_program`] places them
    /// once its libc is mapped (a process that has just run exec has none
    /// yet), then records it. Out of the set with [`Session::untrack`] or
    /// the session.
    pub fn track(&mut self, pid: u32, follow: Follow) -> Result<(), Error> {
        if NonZeroU32::new(pid).is_none() {
            return Err(Error::InvalidPid(0));
        }
        self.forget_pending(&[pid])?;
        let entry = TrackedProcess {
            flags: follow.flags(),
            origin: u64::from(pid),
            ..TrackedProcess::default()
        };
        self.processes()?.insert(pid, ProcessEntry(entry), 0)?;
        Ok(())
    }

    /// Takes process `pid` (tracked, or followed from one) out of the pid
    /// set and the stack walk, and removes its holds.
    pub fn untrack(&mut self, pid: u32) -> Result<(), Error> {
        // Gone already if it exited meanwhile.
        let _ = self.processes()?.remove(&pid);
        python::unregister(&mut self.ebpf, pid)?;
        self.release_holds(pid);
        self.retire_own(pid);
        self.forget_pending(&[pid])
    }

    /// Sets aside the probes placed for followed process `pid` alone.
    fn retire_own(&mut self, pid: u32) {
        if let Some(probes) = self.own.remove(&pid) {
            self.retire_links(probes.links);
        }
        if let Some(links) = self.custom_links.remove(&pid) {
            self.retire_links(links);
            self.custom_placed.retain(|&(owner, _)| owner != pid);
        }
    }

    /// From now on, the programs that process `pid` (attached following
    /// forks) and its children exec are followed: each stops at its exec
    /// until userspace has looked at it ([`Session::execs`]).
    pub fn follow_execs(&mut self, pid: u32) -> Result<(), Error> {
        self.update_process(pid, |entry| entry.flags |= TrackedProcess::FOLLOW_EXEC)
    }

    /// Each allocation of process `pid` (in the pid set) and of the
    /// children it forks from now on copies its native stack
    /// ([`Session::native_copies`]).
    pub fn record_native_stacks(&mut self, pid: u32) -> Result<(), Error> {
        self.update_process(pid, |entry| entry.flags |= TrackedProcess::NATIVE_STACKS)
    }

    /// The native stack copies the probes send. Taken once.
    pub fn native_copies(&mut self) -> Result<NativeCopies, Error> {
        let map = self
            .ebpf
            .take_map(NATIVE_STACKS_MAP)
            .ok_or(Error::Missing(NATIVE_STACKS_MAP))?;
        Ok(NativeCopies::new(RingBuf::try_from(map)?))
    }

    /// Whether to hear of every exec on the machine ([`Session::execs`]),
    /// not only those of the tracked processes.
    pub fn watch_execs(&mut self, watch: bool) -> Result<(), Error> {
        let map = self
            .ebpf
            .map_mut(EXEC_WATCH_MAP)
            .ok_or(Error::Missing(EXEC_WATCH_MAP))?;
        Array::<_, u32>::try_from(map)?.set(0, u32::from(watch), 0)?;
        Ok(())
    }

    /// The execs of followed (or, with [`Session::watch_execs`], all)
    /// processes. Taken once.
    pub fn execs(&mut self) -> Result<ExecStream, Error> {
        let map = self
            .ebpf
            .take_map(EXECS_MAP)
            .ok_or(Error::Missing(EXECS_MAP))?;
        ExecStream::new(RingBuf::try_from(map)?).map_err(Error::Io)
    }

    /// Probes for every process on `libc`, unless an attachment following
    /// forks or an earlier call placed them.
    fn cover(&mut self, libc: &LibcImage) -> Result<(), Error> {
        let covered = self.shared.contains_key(&libc.file_id)
            || self
                .attached
                .values()
                .any(|a| a.every_process && a.probes.libc == libc.file_id);
        if covered {
            return Ok(());
        }
        let mut links = Vec::new();
        let result = self.attach_functions(libc, UProbeScope::AllProcesses, &mut links);
        if let Err(error) = result {
            self.detach_links(links);
            return Err(error);
        }
        self.shared.insert(libc.file_id, links);
        Ok(())
    }

    /// Records the calls of process `pid` from now on: call it once every
    /// probe its program needs is placed. `libc` is where its code is mapped
    /// (its own calls to the system-call wrappers are told apart by it).
    fn record_calls(&mut self, pid: u32, libc: &LibcImage) -> Result<(), Error> {
        self.update_process(pid, |entry| {
            entry.libc_text_start = libc.text_range.0;
            entry.libc_text_end = libc.text_range.1;
            entry.flags |= TrackedProcess::RECORDED;
        })
    }

    /// Changes the pid set entry of process `pid`.
    fn update_process(
        &mut self,
        pid: u32,
        change: impl FnOnce(&mut TrackedProcess),
    ) -> Result<(), Error> {
        let mut processes = self.processes()?;
        let mut entry = processes.get(&pid, 0)?;
        change(&mut entry.0);
        processes.insert(pid, entry, 0)?;
        Ok(())
    }

    /// Makes the probes walk the Python stacks of `process` (attached, or a
    /// followed child), from its next allocation on (and probe its Python
    /// allocators, if asked).
    pub fn register_python(&mut self, process: &PythonProcess) -> Result<(), python::Error> {
        self.place_python_allocators(process)?;
        python::register(&mut self.ebpf, process)
    }

    /// Why the Python allocators of a process could not be probed, if so:
    /// that process was not recorded.
    pub fn python_allocators_refused(&self) -> Option<&str> {
        self.python_allocators.refused()
    }

    /// Also probe the functions of the allocator tables of every process
    /// registered from now on ([`Session::register_python`]), recorded as
    /// PYMALLOC_* (`--trace-python-allocators`).
    pub fn probe_python_allocators(&mut self) {
        self.python_allocators.enable();
    }

    /// Places the probes of `process`'s Python allocators (for it alone if
    /// it is attached without following forks, else for every process),
    /// unless they are there already.
    fn place_python_allocators(&mut self, process: &PythonProcess) -> Result<(), python::Error> {
        let pid = u32::try_from(process.pid()).map_err(|_| Error::InvalidPid(process.pid()))?;
        let every_process = self.attached.get(&pid).is_none_or(|a| a.every_process);
        let (scope, owner) = match NonZeroU32::new(pid) {
            Some(pid) if !every_process => (UProbeScope::OneProcess(pid), pid.get()),
            _ => (UProbeScope::AllProcesses, 0),
        };
        for (image, probes) in self.python_allocators.unplaced(process, owner)? {
            let mut links = Vec::new();
            let mut result = Ok(());
            for probe in probes {
                let location = probe.file_offset + probe.offset;
                let entry = UProbeAttachPoint {
                    location: location.into(),
                    cookie: Some(probe.function.cookie()),
                };
                let exit = UProbeAttachPoint {
                    location: location.into(),
                    cookie: None,
                };
                // The return probe first: the process may be recorded
                // already, and a call whose entry probe fired before its
                // return probe was placed would stay in flight for good
                // (every later call of its thread counted as nested). A
                // return without its entry is ignored.
                result = self
                    .attach_one(ALLOCATOR_RETURN_PROGRAM, exit, &image, scope)
                    .map(|link| links.push(link))
                    .and_then(|()| self.attach_one(ALLOCATOR_ENTRY_PROGRAM, entry, &image, scope))
                    .map(|link| links.push(link));
                if result.is_err() {
                    break;
                }
                self.python_allocators
                    .placed(owner, image.file_id, probe.file_offset);
            }
            self.custom_links.entry(owner).or_default().extend(links);
            result?;
        }
        Ok(())
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

    /// Removes `links` now (a hold that must not fire again).
    fn detach_links(&mut self, links: Vec<(&'static str, UProbeLinkId)>) {
        for (name, link) in links {
            if let Ok(program) = uprobe(&mut self.ebpf, name) {
                // A link the kernel already dropped has nothing left to undo.
                let _ = program.detach(link);
            }
        }
    }

    /// Sets `links` aside, removed with the session (inert meanwhile).
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
