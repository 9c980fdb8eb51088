//! A capture file as a [`Capture`] and a [`StackResolver`]: every pass
//! re-reads the file through memray-format's replay layer, and the replay of
//! the latest pass renders stacks (its tries only grow, so they cover every
//! node that pass produced).

use memray_format::{Event, FileFormat, FormatError, Header, Replay};
use memray_symbolize::NativeSymbolizer;
use std::cell::{Cell, RefCell};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread;

use crate::capture::Capture;
use crate::error::AnalysisError;
use crate::replay_stacks::native_frames;
use crate::stack::{Frame, StackResolver};

pub struct CaptureFile {
    path: PathBuf,
    header: Header,
    latest: RefCell<Option<Replay>>,
    /// Made on the first native stack, from the segment generations the replay knows then.
    symbolizer: RefCell<Option<NativeSymbolizer>>,
    /// Set by any pass that read to the end and found no trailer: a later
    /// pass may stop early (at the peak) and never see the end.
    cut_off: Cell<bool>,
    /// Set, like `cut_off`, by any pass that stopped at a damaged record.
    damaged_at: Cell<Option<u64>>,
    /// Set by any pass that read the trailer and the note after it.
    lost_records: Cell<Option<u64>>,
}

/// The events the analyses consume: object records have no report yet.
fn is_analysed(event: &Event) -> bool {
    !matches!(event, Event::Object { .. } | Event::SurvivingObject { .. })
}

impl CaptureFile {
    /// Opens a capture and reads its header.
    pub fn open(path: impl AsRef<Path>) -> Result<CaptureFile, FormatError> {
        let replay = Replay::open(path.as_ref())?;
        Ok(CaptureFile {
            path: path.as_ref().to_path_buf(),
            header: replay.header().clone(),
            latest: RefCell::new(Some(replay)),
            symbolizer: RefCell::new(None),
            cut_off: Cell::new(false),
            damaged_at: Cell::new(None),
            lost_records: Cell::new(None),
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// After the passes: the reports cover only the start of the capture,
    /// because one pass found the data ending without a trailer (a killed
    /// process, or a cut-off file) or stopped at a damaged record.
    pub fn is_truncated(&self) -> bool {
        self.cut_off.get() || self.damaged_at.get().is_some()
    }

    /// After the passes: the offset of the damaged record one of them
    /// stopped at (see [`memray_format::Damage`]).
    pub fn damaged_at(&self) -> Option<u64> {
        self.damaged_at.get()
    }

    /// After the passes: how many records the capture says it misses (the
    /// eBPF mode's probes lost them), if it says so.
    pub fn lost_records(&self) -> Option<u64> {
        self.lost_records.get()
    }

    /// What symbolizing native frames found wrong since the last call, one line per file
    /// (a mapped file missing or changed since the capture), for the user's stderr.
    pub fn take_native_warnings(&self) -> Vec<String> {
        self.symbolizer
            .borrow_mut()
            .as_mut()
            .map_or_else(Vec::new, NativeSymbolizer::take_warnings)
    }

    fn with_replay<T>(&self, f: impl FnOnce(&mut Replay) -> T) -> Option<T> {
        self.latest.borrow_mut().as_mut().map(f)
    }
}

impl Capture for CaptureFile {
    fn is_aggregated(&self) -> bool {
        self.header.file_format == FileFormat::AggregatedAllocations
    }

    /// Decoding runs on its own thread, a few batches ahead of `visit`: on
    /// large captures the two halves of the work overlap.
    fn replay(
        &self,
        visit: &mut dyn FnMut(&[Event]) -> ControlFlow<()>,
    ) -> Result<(), AnalysisError> {
        // The previous pass's reader is replaced, not kept alongside this one.
        self.latest.borrow_mut().take();
        let (full, received) = mpsc::sync_channel::<Vec<Event>>(BATCHES_AHEAD);
        let (emptied, recycled) = mpsc::channel::<Vec<Event>>();
        let path = &self.path;
        let (replay, decoded) = thread::scope(|scope| {
            let decoder = scope.spawn(move || decode(path, full, recycled));
            // Leaving the loop drops `received`: a decoder still going stops
            // at its next send.
            for mut batch in received {
                if visit(&batch).is_break() {
                    break;
                }
                batch.clear();
                // The decoder may be gone already; then the buffer just drops.
                let _ = emptied.send(batch);
            }
            decoder.join().expect("the decoding thread does not panic")
        });
        if let Some(replay) = replay {
            if replay.is_truncated() {
                self.cut_off.set(true);
            }
            if let Some(damage) = replay.damage() {
                self.damaged_at.set(Some(damage.offset));
            }
            if let Some(lost) = replay.lost_records() {
                self.lost_records.set(Some(lost));
            }
            *self.latest.borrow_mut() = Some(replay);
        }
        decoded
    }
}

/// Events per batch: big enough that handing a batch over (a futex wake-up
/// when the consumer waits) is rare, small enough that the few batches in
/// flight stay a small part of the peak memory.
const BATCH: usize = 4096;
/// Full batches queued ahead of the consumer; with the one being filled and
/// the one being read, at most `BATCHES_AHEAD + 2` buffers exist.
const BATCHES_AHEAD: usize = 2;

/// Sends the capture's events in batches until the end, an error, or the
/// consumer hanging up; returns the replay state for stack rendering. Batch
/// buffers come back through `recycled` and are refilled.
fn decode(
    path: &Path,
    full: SyncSender<Vec<Event>>,
    recycled: Receiver<Vec<Event>>,
) -> (Option<Replay>, Result<(), AnalysisError>) {
    let mut replay = match Replay::open(path) {
        Ok(replay) => replay,
        Err(error) => return (None, Err(error.into())),
    };
    let result = loop {
        let mut batch = recycled
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BATCH));
        let decoded = replay.replay_until(|event| {
            if is_analysed(&event) {
                batch.push(event);
            }
            if batch.len() < BATCH {
                ControlFlow::Continue(())
            } else {
                ControlFlow::Break(())
            }
        });
        let more = matches!(decoded, Ok(true));
        if (!batch.is_empty() && full.send(batch).is_err()) || !more {
            break decoded.map(drop).map_err(AnalysisError::from);
        }
    };
    (Some(replay), result)
}

impl StackResolver for CaptureFile {
    fn python_frames(&self, node: u32) -> Vec<Frame> {
        let mut frames = Vec::new();
        self.with_replay(|replay| replay.python_frames_into(node, &mut frames));
        frames
    }

    fn python_frames_with_entries(&self, node: u32) -> Vec<(Frame, bool)> {
        self.with_replay(|replay| replay.python_frames_with_entries(node))
            .unwrap_or_default()
    }

    fn native_frames(&self, native_frame_id: u64, generation: u32) -> Vec<Frame> {
        let latest = self.latest.borrow();
        let Some(replay) = latest.as_ref() else {
            return Vec::new();
        };
        native_frames(replay, &self.symbolizer, native_frame_id, generation)
    }

    fn header(&self) -> &Header {
        &self.header
    }

    fn thread_name(&self, tid: u64) -> Option<String> {
        self.with_replay(|replay| replay.thread_name(tid).map(str::to_owned))
            .flatten()
    }
}
