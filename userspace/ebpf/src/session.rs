//! The probes loaded once, attached to any number of processes; the
//! Python stack walk of each registered process runs in them.

use std::collections::HashMap as StdHashMap;
use std::path::Path;

use aya::maps::{Array, HashMap, MapData, PerCpuArray, PerCpuHashMap, RingBuf};
use aya::programs::TracePoint;
use aya::{Ebpf, Pod};
use memray_ebpf_common::execs::{EXECS_MAP, EXEC_TRACEPOINT, EXEC_WATCH_MAP, PROCESS_EXEC_PROGRAM};
use memray_ebpf_common::native_stack::{
    NATIVE_STACKS_MAP, NATIVE_UNMAP_PROGRAM, NATIVE_UNMAP_TRACEPOINT,
};
use memray_ebpf_common::python_stack::{
    ALLOCATION_DONE_SLOT, ALLOCATION_STACK_DONE_PROGRAM, CODE_FREED_PROGRAM, STACK_WALK_PROGRAM,
};
use memray_ebpf_common::{
    Counter, Function, PendingCall, TrackedProcess, ALLOCATOR_ENTRY_PROGRAM,
    ALLOCATOR_RETURN_PROGRAM, CHILD_EXIT_HOLD_PROGRAM, CLONE_EXIT_TRACEPOINTS, COUNTERS_MAP,
    DROPS_MAP, EVENTS_DEFAULT_BYTES, EVENTS_MAP, EXIT_PID_OFFSET, EXIT_TRACEPOINT,
    FORK_CHILD_PID_OFFSET, FORK_TRACEPOINT, INTERPRETER_HOLD_PROGRAM, PENDING_MAP, PROCESSES_MAP,
    PROCESS_CLONED_PROGRAM, PROCESS_EXIT_PROGRAM, PROCESS_FORK_PROGRAM, SYSCALL_EXIT_RET_OFFSET,
};

use crate::after_exit::drop_after_exit;
use crate::allocator_sites::AllocatorSites;
use crate::custom_allocators::CustomAllocator;
use crate::events::EventStream;
use crate::execs::ExecStream;
use crate::interpreter_files::interpreter_files;
use crate::libc_image::{function_offset, LibcImage};
use crate::native::NativeCopies;
use crate::object::PROBES;
use crate::placed::Placed;
use crate::probe_log::{self, ProbeLog};
use crate::python::{self, CodeDeaths, CodeSnapshots, StackTable, WalkPrograms};
use crate::python_allocators::PythonAllocators;
use crate::recording::{resume, stat_after_command};
use crate::uprobe_multi::{LinkCloser, Sites, UprobeLink, UprobePrograms};
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
    holds: StdHashMap<u32, Vec<UprobeLink>>,
    /// The probes of each process recorded without an attachment of its
    /// own: tracked ([`Session::track`]), forked from a process whose forks
    /// are followed ([`Session::follow_fork`]), or followed into another
    /// program. Every probe is placed for one process: no other traps on it.
    own: StdHashMap<u32, LibcProbes>,
    /// The third-party allocators to probe ([`Session::probe_allocators`]).
    custom: Vec<CustomAllocator>,
    /// Their probes, by the process they are for; the Python allocators'
    /// and the code object deallocation's go with them.
    custom_links: StdHashMap<u32, Vec<UprobeLink>>,
    /// Where those are placed: the libraries of the third-party allocators
    /// (at offset 0) and the interpreter's functions, by process.
    placed: Placed,
    /// `--trace-python-allocators` ([`Session::probe_python_allocators`]).
    python_allocators: PythonAllocators,
    /// Where the registered processes free their code objects.
    code_deaths: CodeDeaths,
    /// Registrations of processes whose code object deallocation is probed
    /// ([`Session::register_python`]).
    remembering: u64,
    /// The probes of detached processes, inert (nothing of theirs is in the
    /// pid set any more), removed when the session ends or before the next
    /// attach: each removal waits about 0.1 s ([`Session::close_after_exit`]).
    retired: Vec<UprobeLink>,
    /// Whether the clone tracepoints are attached ([`Session::watch_clones`]).
    clones_watched: bool,
    /// Removes the links of the processes that exited.
    closer: LinkCloser,
    /// The uprobe programs (last: the links above go first).
    uprobes: UprobePrograms,
}

/// The allocator probes on one libc file.
#[derive(Default)]
struct LibcProbes {
    /// The file ([`LibcImage::file_id`]).
    libc: (u64, u64),
    links: Vec<UprobeLink>,
}

/// The probes placed for one attached process.
struct Attachment {
    /// The allocator probes, on its libc.
    probes: LibcProbes,
    /// Its forks are followed.
    follows_forks: bool,
    /// The holds of its followed children at `_exit`
    /// ([`Session::hold_children_at_exit`]).
    exit_holds: Vec<UprobeLink>,
}

/// The processes of the pid set.
#[derive(Debug, Default)]
pub struct PidSet {
    /// Every one (attached ones and followed children).
    pub tracked: Vec<u32>,
    /// Those whose calls are recorded: not a followed child still stopped
    /// where it was forked, waiting for its probes.
    pub recorded: Vec<u32>,
}

impl Session {
    /// Loads the probes and the tracepoints that keep the pid set.
    pub fn load(options: Options) -> Result<Session, Error> {
        let object = PROBES.ok_or(Error::NotBuilt)?;
        privileges::require()?;
        tracefs::check_field(FORK_TRACEPOINT, "child_pid", FORK_CHILD_PID_OFFSET)?;
        tracefs::check_field(EXIT_TRACEPOINT, "pid", EXIT_PID_OFFSET)?;
        let mut ebpf = probe_log::load(object, &options)?;
        let uprobes = UprobePrograms::load(
            object,
            &ebpf,
            &[
                ALLOCATOR_ENTRY_PROGRAM,
                ALLOCATOR_RETURN_PROGRAM,
                INTERPRETER_HOLD_PROGRAM,
                CHILD_EXIT_HOLD_PROGRAM,
                STACK_WALK_PROGRAM,
                ALLOCATION_STACK_DONE_PROGRAM,
                CODE_FREED_PROGRAM,
            ],
        )?;
        let log = ProbeLog::new(&mut ebpf);
        let walk = python::load_walk_programs(
            &mut ebpf,
            &uprobes,
            &[(ALLOCATION_DONE_SLOT, ALLOCATION_STACK_DONE_PROGRAM)],
        )?;
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
            attach_tracepoint(&mut ebpf, name, &[(category, event)])?;
        }
        Ok(Session {
            ebpf,
            log,
            _walk: walk,
            attached: StdHashMap::new(),
            holds: StdHashMap::new(),
            own: StdHashMap::new(),
            custom: Vec::new(),
            custom_links: StdHashMap::new(),
            placed: Placed::default(),
            python_allocators: PythonAllocators::default(),
            code_deaths: CodeDeaths::default(),
            remembering: 0,
            retired: Vec::new(),
            clones_watched: false,
            closer: LinkCloser::new(),
            uprobes,
        })
    }

    /// Starts recording the allocations of process `pid` (and, with
    /// `follow_fork`, of the children it forks from now on).
    ///
    /// The probes are placed for the process alone: no other process traps
    /// on them. With `follow_fork`, each child it forks is stopped until its
    /// own are placed ([`Session::follow_fork`]).
    pub fn attach(&mut self, pid: u32, follow_fork: bool) -> Result<(), Error> {
        if self.attached.contains_key(&pid) {
            return Err(Error::AlreadyAttached(pid));
        }
        // Else a process attached again would be seen by its old probes too.
        self.retired.clear();
        if pid == 0 {
            return Err(Error::InvalidPid(0));
        }
        if follow_fork {
            self.watch_clones()?;
        }
        let libc = LibcImage::of_process(pid)?;
        let mut links = Vec::new();
        let result = self.attach_functions(&libc, pid, &mut links);
        if let Err(error) = result {
            self.retire_links(links);
            return Err(error);
        }
        let attachment = Attachment {
            probes: LibcProbes {
                libc: libc.file_id,
                links,
            },
            follows_forks: follow_fork,
            exit_holds: Vec::new(),
        };
        self.attached.insert(pid, attachment);
        // Every probe before it enters the pid set, recorded.
        self.place_custom(pid)?;
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

    /// Attaches `process_cloned` (once): each new process of one whose forks
    /// are followed is stopped until its probes are placed. Only then, as
    /// a syscall tracepoint sends every system call of the machine through
    /// the kernel's slower path (a few ns each).
    fn watch_clones(&mut self) -> Result<(), Error> {
        if self.clones_watched {
            return Ok(());
        }
        for tracepoint in CLONE_EXIT_TRACEPOINTS {
            tracefs::check_field(tracepoint, "ret", SYSCALL_EXIT_RET_OFFSET)?;
        }
        attach_tracepoint(
            &mut self.ebpf,
            PROCESS_CLONED_PROGRAM,
            &CLONE_EXIT_TRACEPOINTS,
        )?;
        self.clones_watched = true;
        Ok(())
    }

    /// Probes libc's allocator functions for process `pid`.
    fn attach_functions(
        &mut self,
        libc: &LibcImage,
        pid: u32,
        links: &mut Vec<UprobeLink>,
    ) -> Result<(), Error> {
        let sites = AllocatorSites::libc(libc)?;
        self.place_calls(&libc.path, &sites, pid, links)
    }

    /// Places the allocator entry probe at `sites.entries` (with their
    /// cookies) and its return probe at `sites.returns` of the file at
    /// `path`: the return probes first, so that a call in flight meanwhile
    /// is not left without its return (a return without its entry is
    /// ignored).
    fn place_calls(
        &self,
        path: &Path,
        sites: &AllocatorSites,
        pid: u32,
        links: &mut Vec<UprobeLink>,
    ) -> Result<(), Error> {
        for (program, offsets, cookies, at_return) in [
            (ALLOCATOR_RETURN_PROGRAM, &sites.returns, &[][..], true),
            (
                ALLOCATOR_ENTRY_PROGRAM,
                &sites.entries,
                &sites.cookies[..],
                false,
            ),
        ] {
            if offsets.is_empty() {
                continue;
            }
            let sites = Sites {
                path,
                offsets,
                cookies,
                at_return,
                pid,
            };
            links.push(self.uprobes.attach(program, &sites)?);
        }
        Ok(())
    }

    /// Process `pid`, attached, has yet to exec its program (`run`'s held
    /// program): it stays in the pid set through that exec, where any later
    /// exec takes it out unless execs are followed.
    pub fn expect_exec(&mut self, pid: u32) -> Result<(), Error> {
        self.update_process(pid, |entry| entry.flags |= TrackedProcess::BEFORE_EXEC)
    }

    /// Has the children attached process `pid` is followed into stopped
    /// (SIGSTOP; the caller continues them) at libc's `_exit`, so that their
    /// records can be taken in while their memory is there. Nothing without
    /// `follow_fork`. Call it once the process runs its final libc (after
    /// [`Session::follow_exec`]). True if they are held.
    pub fn hold_children_at_exit(&mut self, pid: u32) -> Result<bool, Error> {
        let attachment = self.attached.get(&pid).ok_or(Error::NotAttached(pid))?;
        if !attachment.follows_forks {
            return Ok(false);
        }
        let libc = LibcImage::of_process(pid)?;
        let exit = [libc.function("_exit")?.file_offset];
        // The children get it with the rest of its probes.
        let sites = Sites::entries(&libc.path, &exit, pid);
        let link = self.uprobes.attach(CHILD_EXIT_HOLD_PROGRAM, &sites)?;
        self.attached
            .get_mut(&pid)
            .ok_or(Error::NotAttached(pid))?
            .exit_holds
            .push(link);
        Ok(true)
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
        for &tgid in &family {
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
        if pid == 0 {
            return Err(Error::InvalidPid(0));
        }
        // Each mapped once for every symbol looked up.
        let files: Vec<_> = interpreter_files(pid, executable)
            .into_iter()
            .filter_map(|file| Some((python_frames::map_file(&file).ok()?, file)))
            .collect();
        let mut links = Vec::new();
        // 3.13+ finalizes through _Py_Finalize, older ones in Py_FinalizeEx.
        for symbols in [&["Py_RunMain"][..], &["_Py_Finalize", "Py_FinalizeEx"]] {
            let found = files.iter().find_map(|(data, file)| {
                symbols
                    .iter()
                    .find_map(|&symbol| Some((file, function_offset(data, symbol)?)))
            });
            let Some((file, offset)) = found else {
                continue;
            };
            let offsets = [offset];
            let sites = Sites::entries(file, &offsets, pid);
            links.push(self.uprobes.attach(INTERPRETER_HOLD_PROGRAM, &sites)?);
        }
        let held = !links.is_empty();
        self.holds.entry(pid).or_default().extend(links);
        Ok(held)
    }

    /// Removes the interpreter holds placed for process `pid` now: it ran
    /// another program, which they would hold too.
    pub(crate) fn release_holds(&mut self, pid: u32) {
        // Dropped: the links go now.
        self.holds.remove(&pid);
    }

    /// Sets aside the interpreter holds of process `pid`, which is out of
    /// the pid set (they are inert: the hold looks the process up there),
    /// to be removed with the session and not waited for here.
    pub(crate) fn retire_holds(&mut self, pid: u32) {
        let links = self.holds.remove(&pid).unwrap_or_default();
        self.retire_links(links);
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
        let old = std::mem::take(&mut attachment.probes);
        let probes = self.move_probes(pid, old, &libc);
        if let Some(attachment) = self.attached.get_mut(&pid) {
            attachment.probes = probes?;
        }
        self.place_custom(pid)?;
        self.record_calls(pid, &libc)
    }

    /// The probes `old` of process `pid`, moved to
    /// `libc`: kept if they are on that file already (they follow the
    /// process through exec), else set aside and placed anew, while the
    /// process is not recorded (it may be running). On failure, what was
    /// placed is set aside.
    fn move_probes(
        &mut self,
        pid: u32,
        old: LibcProbes,
        libc: &LibcImage,
    ) -> Result<LibcProbes, Error> {
        if !old.links.is_empty() && old.libc == libc.file_id {
            return Ok(old);
        }
        self.retire_links(old.links);
        // None of its calls counts while probes are placed
        // (TrackedProcess::RECORDED).
        self.update_process(pid, |entry| entry.flags &= !TrackedProcess::RECORDED)?;
        let mut links = Vec::new();
        let result = self.attach_functions(libc, pid, &mut links);
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
    /// `pid` maps, unless they are there already.
    fn place_custom(&mut self, pid: u32) -> Result<(), Error> {
        if pid == 0 {
            return Err(Error::InvalidPid(0));
        }
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
            if !self.placed.insert(pid, image.file_id, WHOLE_LIBRARY) {
                continue;
            }
            let functions: Vec<(Function, &str, bool)> = wanted
                .iter()
                .map(|c| (c.function, c.symbol.as_str(), c.required))
                .collect();
            let mut links = Vec::new();
            let result = AllocatorSites::of(&image, &functions)
                .and_then(|sites| self.place_calls(&image.path, &sites, pid, &mut links));
            self.custom_links.entry(pid).or_default().extend(links);
            result?;
        }
        Ok(())
    }

    /// A followed process `pid` (a child of an attached one, or tracked)
    /// runs a new program, which may map another libc (a container's, or
    /// another interpreter's), and is recorded from now on, its probes
    /// placed on that libc for it alone.
    pub fn follow_into_program(&mut self, pid: u32) -> Result<(), Error> {
        let libc = LibcImage::of_process(pid)?;
        let old = self.own.remove(&pid).unwrap_or_default();
        let probes = self.move_probes(pid, old, &libc)?;
        self.own.insert(pid, probes);
        self.place_custom(pid)?;
        self.record_calls(pid, &libc)
    }

    /// A child announced as forked ([`crate::Exec::forked`]) gets its
    /// probes ([`Session::follow_fork`]), then goes on, even if they could
    /// not be placed.
    pub fn release_forked(&mut self, pid: u32) -> Result<(), Error> {
        let placed = self.follow_fork(pid);
        resume(pid);
        placed
    }

    /// Process `pid`, just forked by a process whose forks are followed and
    /// stopped before its first instruction (the caller continues it), gets
    /// the probes of its parent (the same files at the same places) and is
    /// recorded from now on.
    pub fn follow_fork(&mut self, pid: u32) -> Result<(), Error> {
        let entry = self.processes()?.get(&pid, 0)?.0;
        // Its parent's probes; the origin's if the parent is gone.
        let parent = parent_of(pid)
            .filter(|parent| self.links_of(*parent).next().is_some())
            .unwrap_or(entry.origin as u32);
        let mut probes = LibcProbes {
            libc: self
                .attached
                .get(&parent)
                .map(|a| a.probes.libc)
                .or_else(|| self.own.get(&parent).map(|own| own.libc))
                .unwrap_or_default(),
            links: Vec::new(),
        };
        let mut custom = Vec::new();
        let placed: Result<(), Error> = (|| {
            for link in self.links_of(parent) {
                probes.links.push(self.uprobes.attach_again(link, pid)?);
            }
            for link in self.custom_links.get(&parent).into_iter().flatten() {
                custom.push(self.uprobes.attach_again(link, pid)?);
            }
            Ok(())
        })();
        self.own.insert(pid, probes);
        self.custom_links.insert(pid, custom);
        placed?;
        self.placed.copy(parent, pid);
        self.update_process(pid, |entry| entry.flags |= TrackedProcess::RECORDED)
    }

    /// The probes placed for process `pid`'s libc (and its children's exit
    /// hold), whether attached or followed.
    fn links_of(&self, pid: u32) -> impl Iterator<Item = &UprobeLink> {
        let attached = self
            .attached
            .get(&pid)
            .into_iter()
            .flat_map(|a| a.probes.links.iter().chain(&a.exit_holds));
        let own = self.own.get(&pid).into_iter().flat_map(|own| &own.links);
        attached.chain(own)
    }

    /// Puts process `pid` in the pid set with `follow` (`attach --all`),
    /// without probes yet and not recorded: [`Session::follow_into_program`]
    /// places its own once its libc is mapped (a process that has just run
    /// exec has none yet), then records it. Out of the set with
    /// [`Session::untrack`] or the session.
    pub fn track(&mut self, pid: u32, follow: Follow) -> Result<(), Error> {
        if pid == 0 {
            return Err(Error::InvalidPid(0));
        }
        if follow.forks {
            self.watch_clones()?;
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
        self.retire_own(pid);
        self.forget_pending(&[pid])
    }

    /// Removes the probes of followed process `pid`, which exited (in the
    /// background: the recording does not wait for the kernel).
    pub fn forget_exited(&mut self, pid: u32) {
        let links = self.take_own(pid);
        self.closer.close(links);
    }

    /// Sets aside the probes placed for process `pid` alone, which is out of
    /// the pid set (they are inert there).
    fn retire_own(&mut self, pid: u32) {
        let links = self.take_own(pid);
        self.retire_links(links);
    }

    /// The probes placed for process `pid` alone (libc's when it is
    /// followed, the allocators', its interpreter holds), out of the books.
    fn take_own(&mut self, pid: u32) -> Vec<UprobeLink> {
        let mut links = self
            .own
            .remove(&pid)
            .map(|own| own.links)
            .unwrap_or_default();
        links.extend(self.custom_links.remove(&pid).unwrap_or_default());
        links.extend(self.holds.remove(&pid).unwrap_or_default());
        self.placed.forget(pid);
        links
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
        let remembered = self.probe_code_deaths(process)?;
        python::register(&mut self.ebpf, process, remembered)
    }

    /// Places the probe on `process`'s code object deallocation for it
    /// alone, unless it is there already. Returns the number its stacks are
    /// remembered under from now on, or 0 if it cannot be probed.
    fn probe_code_deaths(&mut self, process: &PythonProcess) -> Result<u64, python::Error> {
        let pid = u32::try_from(process.pid()).map_err(|_| Error::InvalidPid(process.pid()))?;
        let Some(site) = self.code_deaths.site(process)? else {
            return Ok(0);
        };
        let file = site.image.file_id;
        if !self.placed.contains(pid, file, site.file_offset) {
            let offsets = [site.file_offset];
            let sites = Sites::entries(&site.image.path, &offsets, pid);
            let link = self.uprobes.attach(CODE_FREED_PROGRAM, &sites)?;
            self.custom_links.entry(pid).or_default().push(link);
            self.placed.insert(pid, file, site.file_offset);
        }
        self.remembering += 1;
        Ok(self.remembering)
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

    /// Places the probes of `process`'s Python allocators for it alone,
    /// unless they are there already.
    fn place_python_allocators(&mut self, process: &PythonProcess) -> Result<(), python::Error> {
        let pid = u32::try_from(process.pid()).map_err(|_| Error::InvalidPid(process.pid()))?;
        if pid == 0 {
            return Err(Error::InvalidPid(0).into());
        }
        for (image, probes) in self
            .python_allocators
            .unplaced(process, pid, &self.placed)?
        {
            let offsets: Vec<u64> = probes.iter().map(|p| p.file_offset + p.offset).collect();
            // Return probes at the same places as the entries.
            let sites = AllocatorSites {
                entries: offsets.clone(),
                cookies: probes.iter().map(|p| p.function.cookie()).collect(),
                returns: offsets,
            };
            let mut links = Vec::new();
            let result = self.place_calls(&image.path, &sites, pid, &mut links);
            self.custom_links.entry(pid).or_default().extend(links);
            result?;
            for probe in probes {
                self.placed.insert(pid, image.file_id, probe.file_offset);
            }
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

    /// The code objects the probes copy as they are freed. Taken once.
    pub fn code_snapshots(&mut self) -> Result<CodeSnapshots, Error> {
        python::code_snapshots(&mut self.ebpf)
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

    /// Sets `links` aside, removed with the session (inert meanwhile).
    fn retire_links(&mut self, links: Vec<UprobeLink>) {
        self.retired.extend(links);
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
        Ok(self.pid_set()?.tracked)
    }

    /// The pid set as it stands, read once.
    pub fn pid_set(&self) -> Result<PidSet, Error> {
        let map = self
            .ebpf
            .map(PROCESSES_MAP)
            .ok_or(Error::Missing(PROCESSES_MAP))?;
        let processes = HashMap::<_, u32, ProcessEntry>::try_from(map)?;
        let mut set = PidSet::default();
        for (pid, entry) in processes.iter().filter_map(Result::ok) {
            set.tracked.push(pid);
            if entry.0.flags & TrackedProcess::RECORDED != 0 {
                set.recorded.push(pid);
            }
        }
        Ok(set)
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

/// The offset [`Placed`] records a third-party allocator's library under.
const WHOLE_LIBRARY: u64 = 0;

/// Loads tracepoint program `name` and attaches it to each of `events`.
fn attach_tracepoint(
    ebpf: &mut Ebpf,
    name: &'static str,
    events: &[(&str, &str)],
) -> Result<(), Error> {
    let program: &mut TracePoint = ebpf
        .program_mut(name)
        .ok_or(Error::Missing(name))?
        .try_into()
        .map_err(program_error(name))?;
    program.load().map_err(program_error(name))?;
    for &(category, event) in events {
        program
            .attach(category, event)
            .map_err(program_error(name))?;
    }
    Ok(())
}

fn program_error(name: &'static str) -> impl Fn(aya::programs::ProgramError) -> Error {
    move |source| Error::Program { name, source }
}

/// The parent of process `pid` (the field after its state).
fn parent_of(pid: u32) -> Option<u32> {
    stat_after_command(pid)?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
