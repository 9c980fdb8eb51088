//! `attach --ebpf --all`: every CPython process running on the machine that
//! the caller wants, those that exec a CPython while the recording runs, and
//! what they fork and exec, each into a capture of its own
//! (`memray-<name>.<pid>.bin` in a directory), until a signal or the
//! duration. One set of probes per libc serves them all; the pid set
//! filters in BPF.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use memray_recorder::CaptureSettings;

use crate::consumer::{Consumer, Finished};
use crate::discovery::{capture_name, command_line, looks_like_python, python_candidates};
use crate::intake::{Intake, Naming};
use crate::recording::{resume_if_held, runtime, start_capture, Pacing};
use crate::{python, Error, Exec, ExecKind, Follow, Session, Stop};

/// What every process is recorded with.
const FOLLOW: Follow = Follow {
    forks: true,
    execs: true,
};

/// What to record and until when.
pub struct SystemRecording<'a> {
    /// Where the captures go (it exists).
    pub directory: PathBuf,
    /// The settings of every capture; each gets its own output, and the
    /// process's command line in its header.
    pub settings: CaptureSettings,
    pub duration: Option<Duration>,
    /// Whether a process that is not followed from another one is
    /// recorded, by its command line.
    pub wanted: &'a dyn Fn(&str) -> bool,
}

/// One process's capture.
pub struct ProcessCapture {
    pub finished: Finished,
    /// Its command line when its capture started.
    pub command: String,
}

/// What the recording left.
pub struct SystemOutcome {
    pub stop: Stop,
    pub captures: Vec<ProcessCapture>,
    /// Why stack walks gave up.
    pub walks: python::WalkCounters,
    /// How long finding and attaching to the running processes took.
    pub attach_time: Duration,
}

impl SystemRecording<'_> {
    /// Records until a signal or the duration, then detaches. Runs its own
    /// tokio runtime.
    pub fn run(self, session: &mut Session) -> Result<SystemOutcome, python::Error> {
        let outcome = runtime()?.block_on(self.record(session));
        if outcome.is_err() {
            // The processes leave the pid set, and those the probes hold go on.
            for pid in session.tracked().unwrap_or_default() {
                let _ = session.untrack(pid);
                resume_if_held(pid);
            }
        }
        outcome
    }

    async fn record(self, session: &mut Session) -> Result<SystemOutcome, python::Error> {
        let started = std::time::Instant::now();
        let (directory, settings) = (self.directory.clone(), self.settings.clone());
        let commands: Rc<RefCell<HashMap<u32, String>>> = Rc::default();
        let noted = Rc::clone(&commands);
        let naming: Naming = Rc::new(move |pid| {
            let command = command_line(pid);
            noted.borrow_mut().insert(pid, command.clone());
            let mut settings = settings.clone();
            settings.output = directory.join(capture_name(pid));
            settings.header.command_line = command;
            settings
        });
        let mut intake = Intake::new(session, Rc::clone(&naming), None, FOLLOW)?;
        session.watch_execs(true)?;
        for pid in python_candidates() {
            if (self.wanted)(&command_line(pid)) {
                start(session, &mut intake.consumer, pid, &naming);
            }
        }
        let attach_time = started.elapsed();
        let mut pacing = Pacing::new(self.duration)?;
        let stop = loop {
            tokio::select! {
                notices = intake.next() => {
                    session.flush_log();
                    for exec in notices? {
                        self.exec(session, &mut intake, exec)?;
                    }
                }
                _ = pacing.memory.tick() => {
                    for exec in intake.waiting_execs()? {
                        self.exec(session, &mut intake, exec)?;
                    }
                    intake.follow_up(session)?;
                    intake.consumer.sample().map_err(Error::Io)?;
                }
                _ = pacing.interrupt.recv() => break Stop::Signal,
                _ = pacing.terminate.recv() => break Stop::Signal,
                _ = &mut pacing.deadline => break Stop::Duration,
            }
        };
        session.watch_execs(false)?;
        for pid in session.tracked()? {
            session.untrack(pid)?;
        }
        let finished = intake.end(session)?.finished;
        let walks = session.walk_counters()?;
        let mut captures = Vec::new();
        for finished in finished {
            captures.push(ProcessCapture {
                command: commands
                    .borrow()
                    .get(&finished.pid)
                    .cloned()
                    .unwrap_or_default(),
                finished,
            });
        }
        captures.sort_by_key(|capture| capture.finished.pid);
        Ok(SystemOutcome {
            stop,
            captures,
            walks,
            attach_time,
        })
    }

    /// A process ran exec: a followed one goes on as [`Intake::exec`] says;
    /// another that execs a CPython the caller wants starts being recorded.
    fn exec(&self, session: &mut Session, intake: &mut Intake, exec: Exec) -> Result<(), Error> {
        if exec.kind != ExecKind::Watched {
            intake.exec(session, exec);
            return Ok(());
        }
        if !looks_like_python(exec.pid) || !(self.wanted)(&command_line(exec.pid)) {
            return Ok(());
        }
        // In the pid set before its holds can stop it.
        session.track(exec.pid, FOLLOW)?;
        if !intake.exec(session, exec) {
            session.untrack(exec.pid)?;
        }
        Ok(())
    }
}

/// Starts recording a running process, if it is a CPython.
fn start(session: &mut Session, consumer: &mut Consumer, pid: u32, naming: &Naming) {
    let recorded = session.track(pid, FOLLOW).is_ok()
        && session.follow_into_program(pid).is_ok()
        && start_capture(session, consumer, pid, &naming(pid)).is_ok();
    if !recorded {
        // Not a CPython (or gone): out of the pid set.
        let _ = session.untrack(pid);
    }
}
