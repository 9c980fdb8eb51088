//! `attach --ebpf --all`: every CPython process running on the machine that
//! the caller wants, those that exec a CPython while the recording runs, and
//! what they fork and exec, each into a capture of its own
//! (`memray-<name>.<pid>.bin` in a directory), until a signal or the
//! duration. One set of probes per libc serves them all; the pid set
//! filters in BPF.

use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use memray_recorder::rss::MEMORY_INTERVAL;
use memray_recorder::CaptureSettings;
use tokio::signal::unix::{signal, SignalKind};
use tokio::time::{interval, sleep, MissedTickBehavior};

use crate::consumer::{Consumer, Finished};
use crate::discovery::{capture_name, command_line, looks_like_python, python_candidates};
use crate::exec_following::ExecFollowing;
use crate::recording::{drain_all, next_execs, start_capture, take_in, Children, Naming, BATCH};
use crate::{python, Error, Event, Exec, Follow, Session, Stop};

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
    /// Records the probes lost because the ring buffer was full.
    pub drops: u64,
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
    pub fn run(self, mut session: Session) -> Result<SystemOutcome, python::Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::Io)?;
        runtime.block_on(self.record(&mut session))
    }

    async fn record(self, session: &mut Session) -> Result<SystemOutcome, python::Error> {
        let started = std::time::Instant::now();
        let mut events = session.events(BATCH)?;
        let mut stacks = session.stacks()?;
        let mut execs = Some(session.execs()?);
        session.watch_execs(true)?;
        let (directory, settings) = (self.directory.clone(), self.settings.clone());
        let commands: Rc<std::cell::RefCell<HashMap<u32, String>>> = Rc::default();
        let noted = Rc::clone(&commands);
        let naming: Naming = Rc::new(move |pid| {
            let command = command_line(pid);
            noted.borrow_mut().insert(pid, command.clone());
            let mut settings = settings.clone();
            settings.output = directory.join(capture_name(pid));
            settings.header.command_line = command;
            settings
        });
        let mut consumer = Consumer::new();
        let mut children = Children::new(None, Rc::clone(&naming), FOLLOW.forks);
        let mut following = ExecFollowing::new(Rc::clone(&naming));
        for pid in python_candidates() {
            if (self.wanted)(&command_line(pid)) {
                self.start(session, &mut consumer, pid, &naming);
            }
        }
        let attach_time = started.elapsed();
        let mut memory = interval(MEMORY_INTERVAL);
        memory.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut interrupt = signal(SignalKind::interrupt()).map_err(Error::Io)?;
        let mut terminate = signal(SignalKind::terminate()).map_err(Error::Io)?;
        let deadline = sleep(self.duration.unwrap_or(Duration::MAX / 4));
        tokio::pin!(deadline);
        let mut batch: Vec<Event> = Vec::new();
        let stop = loop {
            tokio::select! {
                drained = events.next_batch(&mut batch) => {
                    drained.map_err(Error::Io)?;
                    take_in(&mut batch, &mut stacks, &mut consumer, &mut children, &following)?;
                    session.flush_log();
                }
                notices = next_execs(&mut execs) => {
                    let notices = notices.map_err(Error::Io)?;
                    drain_all(&mut events, &mut batch, &mut stacks, &mut consumer, &mut children, &following)?;
                    for exec in notices {
                        self.exec(session, &mut consumer, &mut following, exec)?;
                    }
                }
                _ = memory.tick() => {
                    if let Some(notices) = execs.as_mut().map(crate::ExecStream::drain).filter(|n| !n.is_empty()) {
                        drain_all(&mut events, &mut batch, &mut stacks, &mut consumer, &mut children, &following)?;
                        for exec in notices {
                            self.exec(session, &mut consumer, &mut following, exec)?;
                        }
                    }
                    let stopped = following.stopped();
                    if !stopped.is_empty() {
                        drain_all(&mut events, &mut batch, &mut stacks, &mut consumer, &mut children, &following)?;
                    }
                    following.resume(session, &mut consumer, &stopped);
                    let exited = children.exited(&consumer, &session.tracked()?);
                    if !exited.is_empty() {
                        drain_all(&mut events, &mut batch, &mut stacks, &mut consumer, &mut children, &following)?;
                        children.finish(&mut consumer, &exited);
                        for &pid in &exited {
                            following.exited(session, pid);
                        }
                    }
                    consumer.sample_memory().map_err(Error::Io)?;
                }
                _ = interrupt.recv() => break Stop::Signal,
                _ = terminate.recv() => break Stop::Signal,
                _ = &mut deadline => break Stop::Duration,
            }
        };
        session.watch_execs(false)?;
        let tracked = session.tracked()?;
        for &pid in &tracked {
            session.untrack(pid)?;
        }
        following.end(session, execs.as_mut());
        drain_all(
            &mut events,
            &mut batch,
            &mut stacks,
            &mut consumer,
            &mut children,
            &following,
        )?;
        session.flush_log();
        let walks = session.walk_counters()?;
        let finished = following
            .finished
            .into_iter()
            .chain(children.finished)
            .chain(consumer.finish());
        let mut captures = Vec::new();
        for finished in finished {
            captures.push(ProcessCapture {
                command: commands
                    .borrow()
                    .get(&finished.pid)
                    .cloned()
                    .unwrap_or_default(),
                drops: session.drops(finished.pid)?,
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

    /// Starts recording a running process, if it is a CPython.
    fn start(&self, session: &mut Session, consumer: &mut Consumer, pid: u32, naming: &Naming) {
        let recorded = session.track(pid, FOLLOW).is_ok()
            && session.follow_into_program(pid).is_ok()
            && start_capture(session, consumer, pid, &naming(pid)).is_ok();
        if !recorded {
            // Not a CPython (or gone): out of the pid set.
            let _ = session.untrack(pid);
        }
    }

    /// A process ran exec: a followed one goes on as [`ExecFollowing`]
    /// says; another that execs a CPython the caller wants starts being
    /// recorded.
    fn exec(
        &self,
        session: &mut Session,
        consumer: &mut Consumer,
        following: &mut ExecFollowing,
        exec: Exec,
    ) -> Result<(), Error> {
        if exec.tracked {
            following.exec(session, consumer, exec);
            return Ok(());
        }
        if !looks_like_python(exec.pid) || !(self.wanted)(&command_line(exec.pid)) {
            return Ok(());
        }
        // In the pid set before its holds can stop it.
        session.track(exec.pid, FOLLOW)?;
        if !following.exec(session, consumer, exec) {
            session.untrack(exec.pid)?;
        }
        Ok(())
    }
}
