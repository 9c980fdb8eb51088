//! One process recorded into a capture, from tokio: the records drained in
//! batches, resident-set-size samples on memray's interval, the interpreter
//! registered for the stack walk, until the process exits, a signal or the
//! duration ends it; with `--follow-fork`, each child it forks into a capture
//! of its own. The loop for `run --ebpf` and `attach --ebpf`.

use std::collections::HashSet;
use std::io;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use memray_recorder::rss::MEMORY_INTERVAL;
use memray_recorder::CaptureSettings;
use python_frames::PythonProcess;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::signal::unix::{signal, SignalKind};
use tokio::time::{interval, sleep, MissedTickBehavior};

use crate::consumer::{Consumer, Finished};
use crate::python::StackTable;
use crate::{python, Error, Event, Session};

/// Records taken from the ring buffer at a time.
const BATCH: usize = 64 * 1024;

/// How often a starting program is looked at until its interpreter is up,
/// and for how long before the records are drained anyway (the ring holds
/// hundreds of thousands; the search goes on at each memory sample).
const INTERPRETER_POLL: Duration = Duration::from_millis(1);
const INTERPRETER_WAIT: Duration = Duration::from_secs(2);

/// What SIGINT and SIGTERM do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnSignal {
    /// Passed on to the process, whose exit ends the recording (`run`).
    Forward,
    /// End the recording; the process goes on (`attach`).
    Stop,
}

/// Why the recording ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    Exited,
    Signal,
    Duration,
}

/// What a recording left.
pub struct Outcome {
    pub stop: Stop,
    /// The capture, if the interpreter was found (else there is none).
    pub capture: Option<Finished>,
    /// The captures of the children it forked (`--follow-fork`).
    pub children: Vec<Finished>,
    /// Records the probes lost because the ring buffer was full.
    pub drops: u64,
    /// Why stack walks gave up.
    pub walks: python::WalkCounters,
    /// The last reason the interpreter could not be registered, if it never was.
    pub unregistered: Option<python::Error>,
}

/// What to record and until when.
pub struct Recording<'a> {
    pub pid: u32,
    /// Readable once the process has exited.
    pub exited: BorrowedFd<'a>,
    pub settings: CaptureSettings,
    pub duration: Option<Duration>,
    pub on_signal: OnSignal,
    /// The program is just starting (`run`): its interpreter is looked for
    /// until it is up. Else (`attach`) it must be found at once.
    pub starting: bool,
}

impl Recording<'_> {
    /// Records process `pid` (attached to `session` already) into its
    /// capture, then detaches. Runs its own tokio runtime: call it after
    /// any `fork`.
    pub fn run(self, session: &mut Session) -> Result<Outcome, python::Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::Io)?;
        runtime.block_on(self.record(session))
    }

    async fn record(self, session: &mut Session) -> Result<Outcome, python::Error> {
        let pid = self.pid;
        let mut events = session.events(BATCH)?;
        let mut stacks = session.stacks()?;
        let mut consumer = Consumer::new();
        let mut children = Children::new(pid, &self.settings);
        if !self.starting {
            start_capture(session, &mut consumer, pid, &self.settings)?;
        }
        // SAFETY: the borrowed pidfd stays open and the same for as long as
        // the recording runs, which outlives this AsyncFd.
        let exited = unsafe { AsyncFd::register_with_interest(self.exited, Interest::READABLE) }
            .map_err(io::Error::from)
            .map_err(Error::Io)?;
        let mut memory = interval(MEMORY_INTERVAL);
        memory.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut interrupt = signal(SignalKind::interrupt()).map_err(Error::Io)?;
        let mut terminate = signal(SignalKind::terminate()).map_err(Error::Io)?;
        let deadline = sleep(self.duration.unwrap_or(Duration::MAX / 4));
        tokio::pin!(deadline);
        let mut unregistered = None;
        if self.starting {
            // Nothing is drained meanwhile: the records wait in the ring and
            // are taken with the stacks the walk can give once it knows the
            // interpreter (held at `Py_RunMain` if the session could).
            let found = async {
                loop {
                    match start_capture(session, &mut consumer, pid, &self.settings) {
                        Ok(()) => break,
                        Err(error) => unregistered = Some(error),
                    }
                    if is_stopped(pid) {
                        // Held, and still not found: it goes on without stacks.
                        break;
                    }
                    sleep(INTERPRETER_POLL).await;
                }
            };
            tokio::select! {
                _ = found => {}
                _ = exited.readable() => {}
                _ = sleep(INTERPRETER_WAIT) => {}
            }
            // Attached before exec: the probes were placed on our libc.
            session.follow_exec(pid)?;
        }
        session.hold_children_at_exit(pid)?;
        if self.starting {
            resume_if_held(pid);
        }
        let mut batch: Vec<Event> = Vec::new();
        let stop = loop {
            tokio::select! {
                drained = events.next_batch(&mut batch) => {
                    drained.map_err(Error::Io)?;
                    take_in(&mut batch, &mut stacks, &mut consumer, &mut children)?;
                    session.flush_log();
                }
                _ = memory.tick() => {
                    if self.starting && is_stopped(pid) {
                        // Held where the interpreter finalizes: its code
                        // objects are alive until it goes on.
                        while events.drain(&mut batch) > 0 {
                            take_in(&mut batch, &mut stacks, &mut consumer, &mut children)?;
                        }
                        resume_if_held(pid);
                    }
                    let tracked = session.tracked()?;
                    let held = held_children(pid, &tracked);
                    if !held.is_empty() {
                        // Stopped at `_exit`: their records are taken in
                        // while their code objects can still be read.
                        while events.drain(&mut batch) > 0 {
                            take_in(&mut batch, &mut stacks, &mut consumer, &mut children)?;
                        }
                        held.into_iter().for_each(resume_if_held);
                    }
                    let exited = children.exited(&consumer, &tracked);
                    if !exited.is_empty() {
                        // Their last records first.
                        while events.drain(&mut batch) > 0 {
                            take_in(&mut batch, &mut stacks, &mut consumer, &mut children)?;
                        }
                        children.finish(session, &mut consumer, &exited)?;
                    }
                    if consumer.records(pid) {
                        consumer.sample_memory().map_err(Error::Io)?;
                    } else {
                        unregistered = start_capture(session, &mut consumer, pid, &self.settings)
                            .err();
                    }
                }
                _ = exited.readable() => break Stop::Exited,
                _ = interrupt.recv() => {
                    if let Some(stop) = on_signal(self.on_signal, pid, libc::SIGINT) {
                        break stop;
                    }
                }
                _ = terminate.recv() => {
                    if let Some(stop) = on_signal(self.on_signal, pid, libc::SIGTERM) {
                        break stop;
                    }
                }
                _ = &mut deadline => break Stop::Duration,
            }
        };
        let held = held_children(pid, &session.tracked()?);
        session.detach(pid)?;
        // The records still in the ring, up to the detach.
        while events.drain(&mut batch) > 0 {
            take_in(&mut batch, &mut stacks, &mut consumer, &mut children)?;
        }
        // Children still held at their exit go on (and end) without us.
        held.into_iter().for_each(resume_if_held);
        session.flush_log();
        let drops = session.drops(pid)?;
        let walks = session.walk_counters()?;
        for recorded in consumer.pids().collect::<Vec<_>>() {
            consumer.note_lost_records(recorded, session.drops(recorded)?);
        }
        let (mut capture, mut children) = (None, children.finished);
        for finished in consumer.finish() {
            if finished.pid == pid {
                capture = Some(finished);
            } else {
                children.push(finished);
            }
        }
        Ok(Outcome {
            stop,
            unregistered: capture.is_none().then_some(unregistered).flatten(),
            capture,
            children,
            drops,
            walks,
        })
    }
}

/// Records a batch (emptied after), first opening the captures of the
/// children it is the first to name.
fn take_in(
    batch: &mut Vec<Event>,
    stacks: &mut StackTable,
    consumer: &mut Consumer,
    children: &mut Children,
) -> Result<(), Error> {
    children.start(consumer, batch).map_err(Error::Io)?;
    // After the batch: every stack it names is in the ring by now.
    stacks.drain();
    consumer.record(batch, stacks).map_err(Error::Io)?;
    batch.clear();
    Ok(())
}

/// The children a recorded process forks (`--follow-fork`: the probes add
/// them to the pid set, and their interpreter to the stack walk's maps, at
/// fork). Each gets a capture from its first record, ended when it exits.
struct Children {
    parent: u32,
    settings: CaptureSettings,
    /// Children whose interpreter could not be read (gone already).
    unreadable: HashSet<u32>,
    finished: Vec<Finished>,
}

impl Children {
    fn new(parent: u32, settings: &CaptureSettings) -> Children {
        Children {
            parent,
            settings: settings.clone(),
            unreadable: HashSet::new(),
            finished: Vec::new(),
        }
    }

    /// Opens a capture, named as in-process memray names it, for each child
    /// `batch` is the first to name.
    fn start(&mut self, consumer: &mut Consumer, batch: &[Event]) -> io::Result<()> {
        for event in batch {
            let child = event.tgid;
            if child == self.parent || consumer.records(child) || self.unreadable.contains(&child) {
                continue;
            }
            let Ok(process) = PythonProcess::attach(child as i32) else {
                self.unreadable.insert(child);
                continue;
            };
            consumer.add(&process, &self.settings.for_child(self.parent, child))?;
        }
        Ok(())
    }

    /// The children being recorded that have left the pid set (`tracked`).
    fn exited(&self, consumer: &Consumer, tracked: &[u32]) -> Vec<u32> {
        consumer
            .pids()
            .filter(|&pid| pid != self.parent && !tracked.contains(&pid))
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

/// Registers the interpreter of `pid` for the stack walk and opens its
/// capture; fails while the interpreter is not up yet.
pub fn start_capture(
    session: &mut Session,
    consumer: &mut Consumer,
    pid: u32,
    settings: &CaptureSettings,
) -> Result<(), python::Error> {
    let process = PythonProcess::attach(pid as i32)?;
    session.register_python(&process)?;
    consumer
        .add(&process, settings)
        .map_err(|e| python::Error::Ebpf(Error::Io(e)))
}

/// Whether process `pid` is stopped (held by the probes).
fn is_stopped(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let (_, state) = stat.rsplit_once(')')?;
            Some(state.trim_start().starts_with('T'))
        })
        .unwrap_or(false)
}

/// The followed children of `pid` stopped (held at `_exit` by the probes).
fn held_children(pid: u32, tracked: &[u32]) -> Vec<u32> {
    tracked
        .iter()
        .copied()
        .filter(|&child| child != pid && is_stopped(child))
        .collect()
}

/// Lets a held program go on.
fn resume_if_held(pid: u32) {
    if is_stopped(pid) {
        // SAFETY: kill has no memory arguments; the pid is our child's.
        unsafe { libc::kill(pid as i32, libc::SIGCONT) };
    }
}

/// Passes the signal on, or stops.
fn on_signal(policy: OnSignal, pid: u32, signal: i32) -> Option<Stop> {
    match policy {
        OnSignal::Stop => Some(Stop::Signal),
        OnSignal::Forward => {
            // SAFETY: kill has no memory arguments; the pid is our child's
            // (not reaped until the recording ends, so not reused).
            unsafe { libc::kill(pid as i32, signal) };
            None
        }
    }
}
