//! The programs that followed processes run through `exec` (`run --ebpf
//! --follow-exec`, `attach --ebpf --all`). A CPython program is recorded
//! into a capture of its own from the moment it starts running its program,
//! as `run --ebpf` records its own: the probes stop the process at its exec,
//! the interpreter holds are placed on its new executable, and at
//! `Py_RunMain` its interpreter is registered. Any other program (a shell,
//! a compiler) gets no capture — memray's captures are of Python programs —
//! but stays followed, since it may in turn start a Python.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use crate::consumer::{Consumer, Finished};
use crate::intake::Naming;
use crate::recording::{is_stopped, resume, resume_if_held, start_capture};
use crate::{Exec, ExecKind, ExecStream, Session};

pub(crate) struct ExecFollowing {
    /// The settings of each new program's capture.
    naming: Naming,
    /// New CPython programs waiting for their interpreter to come up; true
    /// for those not stopped at their exec (looked for at each poll, as
    /// the holds may have been placed too late).
    starting: HashMap<u32, bool>,
    /// Recorded programs with holds (stopped again at finalization).
    held: HashSet<u32>,
    /// Processes that ran exec since the recording started.
    execed: HashSet<u32>,
    /// The outputs of the captures ended so far (a process that runs two
    /// Python programs in turn gets two files).
    used: HashSet<PathBuf>,
    /// The captures of the programs that were replaced by an exec.
    pub finished: Vec<Finished>,
    /// Processes that left at an exec ([`ExecFollowing::left`]).
    left: HashSet<u32>,
}

impl ExecFollowing {
    pub fn new(naming: Naming) -> ExecFollowing {
        ExecFollowing {
            naming,
            starting: HashMap::new(),
            held: HashSet::new(),
            execed: HashSet::new(),
            used: HashSet::new(),
            finished: Vec::new(),
            left: HashSet::new(),
        }
    }

    /// Process `exec.pid` runs a new program: the capture of its previous
    /// one ends (drain the ring before: its last records), and if the new
    /// one is a CPython its interpreter is awaited (true). A tracked
    /// process waits stopped for this, and goes on after it.
    pub fn exec(&mut self, session: &mut Session, consumer: &mut Consumer, exec: Exec) -> bool {
        let pid = exec.pid;
        self.execed.insert(pid);
        consumer.note_lost_records(pid, session.drops(pid).unwrap_or(0));
        if let Some(previous) = consumer.finish_one(pid) {
            self.used.insert(previous.output.clone());
            self.finished.push(previous);
        }
        session.release_holds(pid);
        self.held.remove(&pid);
        self.starting.remove(&pid);
        let held =
            program(pid).is_some_and(|path| session.hold_interpreter(pid, &path).unwrap_or(false));
        if held {
            self.starting.insert(pid, exec.kind != ExecKind::Tracked);
        }
        if exec.kind == ExecKind::Tracked {
            // Maybe not stopped yet: the notice comes first.
            resume(pid);
        }
        held
    }

    /// Process `pid`, which did not follow execs, ran one: it has left the
    /// pid set, and its capture ends (drain the ring before: its last
    /// records).
    pub fn left(&mut self, session: &Session, consumer: &mut Consumer, pid: u32) {
        self.execed.insert(pid);
        self.left.insert(pid);
        consumer.note_lost_records(pid, session.drops(pid).unwrap_or(0));
        self.finished.extend(consumer.finish_one(pid));
    }

    /// How many processes left the recording at an exec.
    pub fn left_at_exec(&self) -> usize {
        self.left.len()
    }

    /// Whether process `pid` left the recording at an exec.
    pub fn has_left(&self, pid: u32) -> bool {
        self.left.contains(&pid)
    }

    /// Whether process `pid` has run exec since the recording started.
    pub fn has_execed(&self, pid: u32) -> bool {
        self.execed.contains(&pid)
    }

    /// Whether process `pid` is (or will be) stopped at one of this
    /// following's holds.
    pub fn awaits(&self, pid: u32) -> bool {
        self.starting.contains_key(&pid) || self.held.contains(&pid)
    }

    /// The followed programs stopped at a hold now: drain the ring, then
    /// [`ExecFollowing::resume`] them.
    pub fn stopped(&self) -> Vec<u32> {
        self.starting
            .keys()
            .chain(&self.held)
            .copied()
            .filter(|&pid| is_stopped(pid))
            .collect()
    }

    /// Lets the stopped programs `pids` go on, first starting the captures
    /// of those that were starting, and looks again for the interpreters of
    /// those not stopped at their exec.
    pub fn resume(&mut self, session: &mut Session, consumer: &mut Consumer, pids: &[u32]) {
        let polled: Vec<u32> = self
            .starting
            .iter()
            .filter(|&(pid, &poll)| poll && !pids.contains(pid))
            .map(|(&pid, _)| pid)
            .collect();
        for &pid in pids {
            if self.starting.remove(&pid).is_some() {
                self.start(session, consumer, pid);
            }
            resume_if_held(pid);
        }
        for pid in polled {
            if self.start(session, consumer, pid) {
                self.starting.remove(&pid);
            }
        }
    }

    /// Forgets process `pid` (it exited).
    pub fn exited(&mut self, pid: u32) {
        self.starting.remove(&pid);
        self.held.remove(&pid);
    }

    /// The recording ends, its processes out of the pid set: every process
    /// the probes still hold goes on (those stopped at an exec whose
    /// notice is still in `execs` too), and those that left at an exec
    /// meanwhile are counted.
    pub fn end(&mut self, session: &mut Session, consumer: &mut Consumer, execs: &mut ExecStream) {
        let pids: Vec<u32> = self.starting.keys().chain(&self.held).copied().collect();
        for pid in pids {
            session.retire_holds(pid);
            resume_if_held(pid);
        }
        for exec in execs.drain() {
            match exec.kind {
                // Stopped at the exec, or where it was forked.
                ExecKind::Tracked | ExecKind::Forked => resume(exec.pid),
                ExecKind::Left => self.left(session, consumer, exec.pid),
                ExecKind::Watched => {}
            }
        }
    }

    fn start(&mut self, session: &mut Session, consumer: &mut Consumer, pid: u32) -> bool {
        let mut settings = (self.naming)(pid);
        settings.output = self.unused(settings.output);
        // Not a CPython after all, or gone: no capture.
        let started = session.follow_into_program(pid).is_ok()
            && start_capture(session, consumer, pid, &settings).is_ok();
        if started {
            self.held.insert(pid);
        }
        started
    }

    /// `output`, or `output.2`, `output.3`… if a capture of this recording
    /// had it.
    fn unused(&self, output: PathBuf) -> PathBuf {
        let mut candidate = output.clone();
        let mut n = 2;
        while self.used.contains(&candidate) {
            let mut name = output.clone().into_os_string();
            name.push(format!(".{n}"));
            candidate = PathBuf::from(name);
            n += 1;
        }
        candidate
    }
}

/// The program process `pid` runs, as a path from here (through its root:
/// it may be in a container).
fn program(pid: u32) -> Option<PathBuf> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    Some(python_frames::reported_file(pid, &exe))
}
