//! Stacks rendered from a [`Replay`] that is still being fed: the live
//! view's [`StackResolver`]. Native frames go through the same symbolizer
//! path as a capture file's ([`native_frames`]).

use std::cell::{RefCell, RefMut};
use std::time::{Duration, SystemTime};

use memray_format::{Header, Replay};
use memray_symbolize::{NativeFrame, NativeSymbolizer};

use crate::stack::{Frame, StackResolver};

pub struct ReplayStacks {
    header: Header,
    replay: RefCell<Replay>,
    symbolizer: RefCell<Option<NativeSymbolizer>>,
}

impl ReplayStacks {
    pub fn new(replay: Replay) -> ReplayStacks {
        ReplayStacks {
            header: replay.header().clone(),
            replay: RefCell::new(replay),
            symbolizer: RefCell::new(None),
        }
    }

    /// The replay, to feed it more records.
    pub fn replay(&self) -> RefMut<'_, Replay> {
        self.replay.borrow_mut()
    }
}

/// When the capture started, to tell the files changed since.
pub(crate) fn recorded_at(header: &Header) -> Option<SystemTime> {
    let millis = u64::try_from(header.stats.start_time_ms).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_millis(millis))
}

/// The frames of native trie node `id` of `replay`, symbolized for segment
/// `generation` by `symbolizer` (made on first use from the generations the
/// replay knows then).
pub(crate) fn native_frames(
    replay: &Replay,
    symbolizer: &RefCell<Option<NativeSymbolizer>>,
    id: u64,
    generation: u32,
) -> Vec<Frame> {
    let mut symbolizer = symbolizer.borrow_mut();
    let symbolizer = symbolizer.get_or_insert_with(|| {
        NativeSymbolizer::new(replay.generations().to_vec(), recorded_at(replay.header()))
    });
    let mut frames = Vec::new();
    for ip in replay.native_stack(id) {
        let resolved = symbolizer.frames(ip, generation as usize);
        frames.extend(resolved.iter().map(NativeFrame::to_frame));
    }
    frames
}

impl StackResolver for ReplayStacks {
    fn python_frames(&self, node: u32) -> Vec<Frame> {
        let mut frames = Vec::new();
        self.replay().python_frames_into(node, &mut frames);
        frames
    }

    fn python_frames_with_entries(&self, node: u32) -> Vec<(Frame, bool)> {
        self.replay().python_frames_with_entries(node)
    }

    fn native_frames(&self, native_frame_id: u64, generation: u32) -> Vec<Frame> {
        native_frames(
            &self.replay.borrow(),
            &self.symbolizer,
            native_frame_id,
            generation,
        )
    }

    fn header(&self) -> &Header {
        &self.header
    }

    fn thread_name(&self, tid: u64) -> Option<String> {
        self.replay.borrow().thread_name(tid).map(str::to_owned)
    }
}
