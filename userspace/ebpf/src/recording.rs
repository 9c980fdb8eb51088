//! One process recorded into a capture, from tokio: the records drained in
//! batches, resident-set-size samples on memray's interval, the interpreter
//! registered for the stack walk, until the process exits, a signal or the
//! duration ends it; with `--follow-fork`, each child it forks into a capture
//! of its own; with `--follow-exec`, each CPython program it or its children
//! exec into a capture of its own (`intake`). The loop for `run
//! --ebpf` and `attach --ebpf`.

use std::io;
use std::os::fd::BorrowedFd;
use std::rc::Rc;
use std::time::Duration;

use memray_recorder::rss::MEMORY_INTERVAL;
use memray_recorder::CaptureSettings;
use python_frames::PythonProcess;
use std::pin::Pin;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::time::{interval, sleep, Interval, MissedTickBehavior, Sleep};

use crate::consumer::{Consumer, Finished};
use crate::intake::{Ended, Intake, Naming};
use crate::{python, Error, Follow, Session};

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
    /// The attached process ran exec (execs not followed).
    Exec,
}

/// What a recording left.
pub struct Outcome {
    pub stop: Stop,
    /// The capture, if the interpreter was found (else there is none).
    pub capture: Option<Finished>,
    /// The captures of the children it forked (`--follow-fork`) and of
    /// the programs they or it exec'd (`--follow-exec`).
    pub children: Vec<Finished>,
    /// Why stack walks gave up.
    pub walks: python::WalkCounters,
    /// The last reason the interpreter could not be registered, if it never was.
    pub unregistered: Option<python::Error>,
    /// Recorded processes that ran exec, execs not being followed: each
    /// left the recording there (its capture, if it had one, ends there).
    pub left_at_exec: usize,
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
    /// What is followed (attach with [`Follow::forks`] set: the probes
    /// must be placed for every process; execs alone need only the
    /// process's own).
    pub follow: Follow,
}

impl Recording<'_> {
    /// Records process `pid` (attached to `session` already) into its
    /// capture, then detaches. Runs its own tokio runtime: call it after
    /// any `fork`.
    pub fn run(self, session: &mut Session) -> Result<Outcome, python::Error> {
        let pid = self.pid;
        let outcome = runtime()?.block_on(self.record(session));
        if outcome.is_err() {
            abandon(session, pid);
        }
        outcome
    }

    async fn record(self, session: &mut Session) -> Result<Outcome, python::Error> {
        let pid = self.pid;
        let parent_settings = self.settings.clone();
        let naming: Naming = Rc::new(move |child| parent_settings.for_child(pid, child));
        let mut intake = Intake::new(session, naming, Some(pid), self.follow)?;
        if !self.starting {
            start_capture(session, &mut intake.consumer, pid, &self.settings)?;
        }
        // SAFETY: the borrowed pidfd stays open and the same for as long as
        // the recording runs, which outlives this AsyncFd.
        let exited = unsafe { AsyncFd::register_with_interest(self.exited, Interest::READABLE) }
            .map_err(io::Error::from)
            .map_err(Error::Io)?;
        let mut pacing = Pacing::new(self.duration)?;
        let mut unregistered = None;
        // A starting program that ended before its interpreter was found
        // has no libc left to place anything on.
        let mut ended = false;
        if self.starting {
            // Nothing is drained meanwhile: the records wait in the ring and
            // are taken with the stacks the walk can give once it knows the
            // interpreter (held at `Py_RunMain` if the session could).
            let found = async {
                loop {
                    // Held before this try: its interpreter is as up as it
                    // gets before the program runs.
                    let held = is_stopped(pid);
                    match start_capture(session, &mut intake.consumer, pid, &self.settings) {
                        Ok(()) => break,
                        Err(error) => unregistered = Some(error),
                    }
                    if held {
                        // Held, and still not found: it goes on without stacks.
                        break;
                    }
                    sleep(INTERPRETER_POLL).await;
                }
            };
            ended = tokio::select! {
                _ = found => false,
                _ = exited.readable() => true,
                _ = sleep(INTERPRETER_WAIT) => false,
            };
            if !ended {
                // Attached before exec: the probes were placed on our libc.
                session.follow_exec(pid)?;
            }
        }
        if !ended {
            intake.children_held_at_exit = session.hold_children_at_exit(pid)?;
        }
        if self.starting {
            resume_if_held(pid);
        }
        if self.follow.execs {
            // From here: the program's own exec is behind it.
            session.follow_execs(pid)?;
        }
        let stop = loop {
            // Its exec is heard of with the records or at a memory tick.
            if !self.starting && intake.following.has_left(pid) {
                // Attached: nothing more of it to record.
                break Stop::Exec;
            }
            tokio::select! {
                notices = intake.next() => {
                    session.flush_log();
                    for exec in notices? {
                        intake.exec(session, exec);
                    }
                }
                _ = pacing.memory.tick() => {
                    for exec in intake.waiting_execs()? {
                        intake.exec(session, exec);
                    }
                    intake.follow_up(session)?;
                    let execed = intake.following.has_execed(pid);
                    if self.starting && is_stopped(pid) && !execed {
                        // Held where the interpreter finalizes: its code
                        // objects are alive until it goes on.
                        intake.drain_all()?;
                        resume_if_held(pid);
                    }
                    if intake.consumer.records(pid) || execed {
                        intake.consumer.sample().map_err(Error::Capture)?;
                    } else {
                        unregistered =
                            start_capture(session, &mut intake.consumer, pid, &self.settings).err();
                    }
                }
                _ = exited.readable() => break Stop::Exited,
                _ = pacing.interrupt.recv() => {
                    if let Some(stop) = on_signal(self.on_signal, pid, libc::SIGINT) {
                        break stop;
                    }
                }
                _ = pacing.terminate.recv() => {
                    if let Some(stop) = on_signal(self.on_signal, pid, libc::SIGTERM) {
                        break stop;
                    }
                }
                _ = &mut pacing.deadline => break Stop::Duration,
            }
        };
        session.detach(pid)?;
        // The records still in the ring, up to the detach.
        let Ended {
            finished,
            left_at_exec,
        } = intake.end(session)?;
        let walks = session.walk_counters()?;
        let (mut capture, mut children) = (None, Vec::new());
        for finished in finished {
            if finished.output == self.settings.output {
                capture = Some(finished);
            } else {
                children.push(finished);
            }
        }
        Ok(Outcome {
            stop,
            unregistered: capture.is_none().then_some(unregistered).flatten(),
            left_at_exec,
            capture,
            children,
            walks,
        })
    }
}

/// After a failed recording: process `pid` and the children it was followed
/// into leave the pid set, and those the probes hold go on.
fn abandon(session: &mut Session, pid: u32) {
    let tracked = session.tracked().unwrap_or_default();
    // Detached already if it failed at its end.
    let _ = session.detach(pid);
    for tgid in tracked.into_iter().chain([pid]) {
        resume_if_held(tgid);
    }
}

/// What paces and ends a recording's loop: memray's interval of memory
/// samples, SIGINT, SIGTERM and the duration.
pub(crate) struct Pacing {
    pub memory: Interval,
    pub interrupt: Signal,
    pub terminate: Signal,
    pub deadline: Pin<Box<Sleep>>,
}

impl Pacing {
    /// Must be called inside the runtime.
    pub fn new(duration: Option<Duration>) -> Result<Pacing, Error> {
        let mut memory = interval(MEMORY_INTERVAL);
        memory.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Ok(Pacing {
            memory,
            interrupt: signal(SignalKind::interrupt()).map_err(Error::Io)?,
            terminate: signal(SignalKind::terminate()).map_err(Error::Io)?,
            deadline: Box::pin(sleep(duration.unwrap_or(Duration::MAX / 4))),
        })
    }
}

/// A current-thread tokio runtime with time and I/O, for a recording's loop.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Io)
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
    if settings.options.native_traces {
        session
            .record_native_stacks(pid)
            .map_err(python::Error::Ebpf)?;
    }
    consumer
        .add(&process, settings)
        .map_err(|e| python::Error::Ebpf(Error::Io(e)))
}

/// Whether process `pid` is stopped (held by the probes).
pub(crate) fn is_stopped(pid: u32) -> bool {
    stat_after_command(pid).is_some_and(|fields| fields.trim_start().starts_with('T'))
}

/// `/proc/PID/stat` after the command in parentheses (which may hold
/// anything): the state first, then the parent…
pub(crate) fn stat_after_command(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, fields) = stat.rsplit_once(')')?;
    Some(fields.to_string())
}

/// Lets a held program go on.
pub(crate) fn resume_if_held(pid: u32) {
    if is_stopped(pid) {
        resume(pid);
    }
}

/// Lets a process that the probes stopped go on, even one whose stop is
/// still pending (SIGCONT discards it).
pub(crate) fn resume(pid: u32) {
    // SAFETY: kill has no memory arguments; the pid is in the pid set (its
    // exit would have taken it out), so not reused.
    unsafe { libc::kill(pid as i32, libc::SIGCONT) };
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
