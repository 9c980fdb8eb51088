//! The reader side of a live session: a thread follows the capture on the
//! socket as it arrives and publishes a [`Snapshot`] whenever something
//! changed, at most every [`PUBLISH_EVERY`] (and once more at the end).

use std::net::TcpStream;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use memray_analysis::{Event, ReplayStacks};
use memray_format::{CaptureReader, FormatError, Replay};

use crate::snapshot::{Aggregator, End, Snapshot};

/// How long one read waits before the reader looks at its state again.
const READ_TIMEOUT: Duration = Duration::from_millis(50);
const PUBLISH_EVERY: Duration = Duration::from_millis(200);
/// Events applied between two looks at the clock, at most.
const BATCH: usize = 4096;

pub struct Feed {
    latest: Arc<Mutex<Arc<Snapshot>>>,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
}

impl Feed {
    /// Starts following `stream`.
    pub fn start(stream: TcpStream) -> std::io::Result<Feed> {
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        let latest = Arc::new(Mutex::new(Arc::new(Snapshot::default())));
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (latest, stop) = (latest.clone(), stop.clone());
            thread::Builder::new()
                .name("memray-live-reader".into())
                .spawn(move || follow(stream, &latest, &stop))?
        };
        Ok(Feed {
            latest,
            stop,
            reader: Some(reader),
        })
    }

    /// Waits for the capture to start: true once its header came, false
    /// if the stream ended before (the program failed before tracking).
    pub fn started(&self) -> bool {
        loop {
            let latest = self.latest();
            if latest.pid != 0 {
                return true;
            }
            if latest.end.is_some() {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// The newest snapshot.
    pub fn latest(&self) -> Arc<Snapshot> {
        self.latest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for Feed {
    /// Stops reading and closes the connection.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

fn publish(latest: &Mutex<Arc<Snapshot>>, snapshot: Snapshot) {
    *latest.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(snapshot);
}

fn follow(stream: TcpStream, latest: &Mutex<Arc<Snapshot>>, stop: &AtomicBool) {
    let reader = match CaptureReader::follow(stream) {
        Ok(reader) => reader,
        Err(error) => {
            let end = Some(End::Failed(error.to_string()));
            return publish(
                latest,
                Snapshot {
                    end,
                    ..Snapshot::default()
                },
            );
        }
    };
    let stacks = ReplayStacks::new(Replay::new(reader));
    let start_ms = u64::try_from(stacks.replay().header().stats.start_time_ms).unwrap_or(0);
    let mut aggregator = Aggregator::new(start_ms);
    let mut changed = true;
    let mut published = Instant::now() - PUBLISH_EVERY;
    while !stop.load(Ordering::Relaxed) {
        let mut applied = 0;
        let more = stacks.replay().replay_until(|event| {
            aggregator.add(&event);
            applied += 1;
            // Memory records come every 10 ms: a look at the clock then.
            if applied < BATCH && !matches!(event, Event::Memory { .. }) {
                ControlFlow::Continue(())
            } else {
                ControlFlow::Break(())
            }
        });
        changed |= applied > 0;
        let end = ending(more, &stacks.replay());
        let ended = end.is_some();
        if let Some(end) = end {
            aggregator.end(end);
        }
        if ended || (changed && published.elapsed() >= PUBLISH_EVERY) {
            publish(latest, aggregator.snapshot(&stacks));
            published = Instant::now();
            changed = false;
        }
        if ended {
            return;
        }
    }
}

/// How a replay step ended the stream, if it did.
fn ending(step: Result<bool, FormatError>, replay: &Replay) -> Option<End> {
    match step {
        Ok(true) => None,
        Ok(false) if replay.is_waiting() => None,
        Ok(false) if replay.damage().is_some() => {
            Some(End::Failed("the stream holds a damaged record".into()))
        }
        Ok(false) if replay.is_truncated() => Some(End::CutOff),
        Ok(false) => Some(End::Finished),
        Err(error) => Some(End::Failed(error.to_string())),
    }
}
