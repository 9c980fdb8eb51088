//! The records of the processes a recording follows, from the ring buffer
//! into their captures: the batches, the captures of forked children
//! ([`Children`]) and of the programs they exec ([`ExecFollowing`]), and
//! what each memory tick does for them. Shared by [`crate::Recording`] (one
//! process and its family) and [`crate::SystemRecording`] (`attach --all`).

use std::collections::HashSet;
use std::io;
use std::rc::Rc;

use memray_recorder::CaptureSettings;
use python_frames::PythonProcess;

use crate::consumer::{Consumer, Finished};
use crate::exec_following::ExecFollowing;
use crate::native::NativeCopies;
use crate::python::{CodeSnapshots, StackTable};
use crate::recording::{is_stopped, resume_if_held};
use crate::{Error, Event, EventStream, Exec, ExecKind, ExecStream, Follow, Session};

/// Records taken from the ring buffer at a time.
const BATCH: usize = 64 * 1024;

/// The settings of the capture of a process the recording follows into,
/// by pid.
pub(crate) type Naming = Rc<dyn Fn(u32) -> CaptureSettings>;

pub(crate) struct Intake {
    pub events: EventStream,
    pub stacks: StackTable,
    pub snapshots: CodeSnapshots,
    pub native_copies: NativeCopies,
    pub batch: Vec<Event>,
    pub consumer: Consumer,
    children: Children,
    pub following: ExecFollowing,
    /// The exec notices (a recorded process that execs without execs
    /// being followed is announced there too).
    pub execs: ExecStream,
    /// The followed children stop at `_exit` until their records are in
    /// ([`Session::hold_children_at_exit`]).
    pub children_held_at_exit: bool,
}

impl Intake {
    /// Takes the session's rings; `parent` is the process recorded (whose
    /// capture is not a child's), if any.
    pub fn new(
        session: &mut Session,
        naming: Naming,
        parent: Option<u32>,
        follow: Follow,
    ) -> Result<Intake, Error> {
        Ok(Intake {
            events: session.events(BATCH)?,
            stacks: session.stacks()?,
            snapshots: session.code_snapshots()?,
            native_copies: session.native_copies()?,
            batch: Vec::new(),
            consumer: Consumer::new(),
            children: Children::new(parent, Rc::clone(&naming), follow.forks),
            following: ExecFollowing::new(naming),
            execs: session.execs()?,
            children_held_at_exit: false,
        })
    }

    /// Records the batch drained (emptied after), first opening the
    /// captures of the children it is the first to name.
    pub fn take_batch(&mut self) -> Result<(), Error> {
        self.children
            .start(&mut self.consumer, &self.batch, &self.following)
            .map_err(Error::Capture)?;
        // After the batch: every stack it names is in the ring by now.
        self.stacks.drain();
        self.snapshots.drain();
        self.native_copies.drain();
        self.consumer
            .record(
                &self.batch,
                &self.stacks,
                &mut self.snapshots,
                &mut self.native_copies,
            )
            .map_err(Error::Capture)?;
        if let Some(newest) = self.batch.iter().map(|event| event.timestamp_ns).max() {
            self.snapshots.forget_before(newest);
        }
        self.batch.clear();
        Ok(())
    }

    /// Records every record in the ring now.
    pub fn drain_all(&mut self) -> Result<(), Error> {
        while self.events.drain(&mut self.batch) > 0 {
            self.take_batch()?;
        }
        Ok(())
    }

    /// Waits for records or exec notices: the records are taken in, the
    /// notices returned (once the records before them are taken).
    pub async fn next(&mut self) -> Result<Vec<Exec>, Error> {
        tokio::select! {
            drained = self.events.next_batch(&mut self.batch) => {
                drained.map_err(Error::Io)?;
                self.take_batch()?;
                Ok(Vec::new())
            }
            notices = self.execs.next() => self.after_records(notices.map_err(Error::Io)?),
        }
    }

    /// The exec notices waiting (a process stopped at its exec is not at a
    /// hold: its notice, sent before it stopped, is taken first).
    pub fn waiting_execs(&mut self) -> Result<Vec<Exec>, Error> {
        let notices = self.execs.drain();
        self.after_records(notices)
    }

    /// `notices`, once the records of the programs they replaced are taken.
    fn after_records(&mut self, notices: Vec<Exec>) -> Result<Vec<Exec>, Error> {
        if !notices.is_empty() {
            self.drain_all()?;
        }
        Ok(notices)
    }

    /// A followed process ran exec ([`ExecFollowing::exec`]), or forked
    /// one, which goes on once its probes are placed.
    pub fn exec(&mut self, session: &mut Session, exec: Exec) -> bool {
        if exec.kind == ExecKind::Left {
            self.following.left(session, &mut self.consumer, exec.pid);
            return false;
        }
        if exec.kind == ExecKind::Forked {
            let placed = session.release_forked(exec.pid);
            let alive = std::path::Path::new(&format!("/proc/{}", exec.pid)).exists();
            if let (Err(error), true) = (placed, alive) {
                eprintln!(
                    "memray: warning: forked process {} is not recorded: {error}",
                    exec.pid
                );
            }
            return false;
        }
        self.following.exec(session, &mut self.consumer, exec)
    }

    /// What each memory tick does for the followed processes: those
    /// stopped at a hold go on (their last records taken first, or their
    /// capture started), and the captures of the children that exited end.
    pub fn follow_up(&mut self, session: &mut Session) -> Result<(), Error> {
        let stopped = self.following.stopped();
        if !stopped.is_empty() {
            self.drain_all()?;
        }
        self.following.resume(session, &mut self.consumer, &stopped);
        let pid_set = session.pid_set()?;
        let held = self.held_at_exit(&pid_set.recorded);
        if !held.is_empty() {
            // Stopped at `_exit`: their records are taken in while their
            // code objects can still be read.
            self.drain_all()?;
            held.into_iter().for_each(resume_if_held);
        }
        let exited = self.children.exited(&self.consumer, &pid_set.tracked);
        if !exited.is_empty() {
            // Their last records first.
            self.drain_all()?;
            self.children.finish(session, &mut self.consumer, &exited)?;
            for &child in &exited {
                self.following.exited(child);
                session.forget_exited(child);
            }
        }
        Ok(())
    }

    /// The followed children (not the recorded process, nor programs
    /// waiting at an interpreter hold) stopped at `_exit` by the probes,
    /// among the `recorded` processes (a child stopped where it was forked
    /// is not recorded yet: it goes on once its probes are placed).
    fn held_at_exit(&self, recorded: &[u32]) -> Vec<u32> {
        if !self.children_held_at_exit {
            return Vec::new();
        }
        recorded
            .iter()
            .copied()
            .filter(|&pid| Some(pid) != self.children.parent && !self.following.awaits(pid))
            .filter(|&pid| is_stopped(pid))
            .collect()
    }

    /// The recording ends (its processes out of the pid set): the processes
    /// still held go on, the records still in the ring are taken, and every
    /// capture ends.
    pub fn end(mut self, session: &mut Session) -> Result<Ended, Error> {
        let held = self.held_at_exit(&session.pid_set()?.recorded);
        self.drain_all()?;
        self.following
            .end(session, &mut self.consumer, &mut self.execs);
        // Children still held at their exit go on (and end) without us.
        held.into_iter().for_each(resume_if_held);
        session.flush_log();
        for recorded in self.consumer.pids().collect::<Vec<_>>() {
            self.consumer
                .note_lost_records(recorded, session.drops(recorded)?);
        }
        let left_at_exec = self.following.left_at_exec();
        let finished = self
            .following
            .finished
            .into_iter()
            .chain(self.children.finished)
            .chain(self.consumer.finish())
            .collect();
        Ok(Ended {
            finished,
            left_at_exec,
        })
    }
}

/// How a recording's intake ended.
pub struct Ended {
    /// Every capture.
    pub finished: Vec<Finished>,
    /// Processes that left the recording at an exec
    /// ([`ExecFollowing::left_at_exec`]).
    pub left_at_exec: usize,
}

/// The children a recorded process forks (`--follow-fork`: the probes add
/// them to the pid set, and their interpreter to the stack walk's maps, at
/// fork). Each gets a capture from its first record, ended when it exits.
/// With `--follow-exec` alone they are in the pid set too, and recorded
/// only once they exec a Python ([`ExecFollowing`]).
struct Children {
    /// The process recorded (its capture is not a child's), if any.
    parent: Option<u32>,
    naming: Naming,
    /// Forked children get captures of their own (`--follow-fork`).
    record_forks: bool,
    /// Children whose interpreter could not be read (gone already).
    unreadable: HashSet<u32>,
    finished: Vec<Finished>,
}

impl Children {
    fn new(parent: Option<u32>, naming: Naming, record_forks: bool) -> Children {
        Children {
            parent,
            naming,
            record_forks,
            unreadable: HashSet::new(),
            finished: Vec::new(),
        }
    }

    /// Opens a capture, named by `naming`, for each child `batch` is the
    /// first to name.
    fn start(
        &mut self,
        consumer: &mut Consumer,
        batch: &[Event],
        following: &ExecFollowing,
    ) -> io::Result<()> {
        if !self.record_forks {
            return Ok(());
        }
        for event in batch {
            let child = event.tgid;
            let known = Some(child) == self.parent
                || consumer.records(child)
                || self.unreadable.contains(&child)
                || following.has_execed(child);
            if known {
                continue;
            }
            let Ok(process) = PythonProcess::attach(child as i32) else {
                self.unreadable.insert(child);
                continue;
            };
            consumer.add(&process, &(self.naming)(child))?;
        }
        Ok(())
    }

    /// The children being recorded that have left the pid set (`tracked`).
    fn exited(&self, consumer: &Consumer, tracked: &[u32]) -> Vec<u32> {
        consumer
            .pids()
            .filter(|&pid| Some(pid) != self.parent && !tracked.contains(&pid))
            .collect()
    }

    fn finish(
        &mut self,
        session: &Session,
        consumer: &mut Consumer,
        exited: &[u32],
    ) -> Result<(), Error> {
        for &pid in exited {
            consumer.note_lost_records(pid, session.drops(pid)?);
            self.finished.extend(consumer.finish_one(pid));
        }
        Ok(())
    }
}
