//! Replays a capture into memray's reconstruction state (docs/memray-format.md
//! §6): per-thread Python stacks as trie nodes, code objects and lazily
//! computed line numbers, the native trie, segment generations and thread
//! names. The analysis engine consumes the [`Event`]s and asks for stacks.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;

use python_frames::linetable::{line_number, LineTableKind};

use crate::code::CodeObject;
use crate::decode::{HotRecords, PushedFrame};
use crate::error::FormatError;
use crate::frame::Frame;
use crate::frame_tree::{ChildCache, FrameTree, Registry};
use crate::header::{FileFormat, Header};
use crate::reader::{CaptureReader, Damage};
use crate::record::{AggregatedAllocation, AllocationRecord, Record};
use crate::writer::{Image, Segment};
use memray_heap::Allocator;

/// One allocation (memray's `Allocation`): an ALLOCATION record with the
/// context it was made in, or an aggregated location's contribution to the
/// peak or to the leaks ([`AggregatedLocation::to_high_water_mark`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocationEvent {
    pub tid: u64,
    pub address: u64,
    /// Bytes; 0 for simple deallocations.
    pub size: u64,
    pub allocator: Allocator,
    /// Python trie node (0 = no Python frames; always 0 for deallocations).
    pub python_node: u32,
    /// Native trie leaf (0 = no native stack).
    pub native_frame_id: u64,
    /// MEMORY_MAP_START records seen before this one (0 for deallocations).
    pub native_segment_generation: u32,
    /// 0-based position among the file's ALLOCATION records.
    pub record_index: u64,
    /// 1 for a record; the stored count for an aggregated contribution.
    pub n_allocations: u64,
}

impl AllocationEvent {
    /// A single allocation with no stack, as the first record of a file.
    pub fn new(tid: u64, address: u64, size: u64, allocator: Allocator) -> AllocationEvent {
        AllocationEvent {
            tid,
            address,
            size,
            allocator,
            python_node: 0,
            native_frame_id: 0,
            native_segment_generation: 0,
            record_index: 0,
            n_allocations: 1,
        }
    }

    /// The same allocation attributed to a Python stack.
    pub fn at(mut self, python_node: u32) -> AllocationEvent {
        self.python_node = python_node;
        self
    }

    /// The same allocation attributed to a native stack.
    pub fn with_native(mut self, native_frame_id: u64) -> AllocationEvent {
        self.native_frame_id = native_frame_id;
        self
    }
}

/// One AGGREGATED_ALLOCATION record, its Python trie node and segment
/// generation checked to be ids replay can have made: a location's
/// contribution to the peak and to the leaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggregatedLocation {
    pub tid: u64,
    pub allocator: Allocator,
    pub python_node: u32,
    pub native_frame_id: u64,
    pub native_segment_generation: u32,
    pub n_allocations_in_high_water_mark: u64,
    pub n_allocations_leaked: u64,
    pub bytes_in_high_water_mark: u64,
    pub bytes_leaked: u64,
}

impl AggregatedLocation {
    fn of(record: &AggregatedAllocation) -> Option<AggregatedLocation> {
        Some(AggregatedLocation {
            tid: record.tid,
            allocator: record.allocator,
            python_node: u32::try_from(record.python_frame_id).ok()?,
            native_frame_id: record.native_frame_id,
            native_segment_generation: u32::try_from(record.native_segment_generation).ok()?,
            n_allocations_in_high_water_mark: record.n_allocations_in_high_water_mark,
            n_allocations_leaked: record.n_allocations_leaked,
            bytes_in_high_water_mark: record.bytes_in_high_water_mark,
            bytes_leaked: record.bytes_leaked,
        })
    }

    fn contribution(&self, size: u64, n_allocations: u64) -> AllocationEvent {
        AllocationEvent {
            tid: self.tid,
            address: 0,
            size,
            allocator: self.allocator,
            python_node: self.python_node,
            native_frame_id: self.native_frame_id,
            native_segment_generation: self.native_segment_generation,
            record_index: 0,
            n_allocations,
        }
    }

    /// memray's `contributionToHighWaterMark`.
    pub fn to_high_water_mark(&self) -> AllocationEvent {
        self.contribution(
            self.bytes_in_high_water_mark,
            self.n_allocations_in_high_water_mark,
        )
    }

    /// memray's `contributionToLeaks`.
    pub fn to_leaks(&self) -> AllocationEvent {
        self.contribution(self.bytes_leaked, self.n_allocations_leaked)
    }
}

/// Process memory at one moment: resident set size and the tracked heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemorySnapshot {
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    pub rss: u64,
    pub heap: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Allocation(AllocationEvent),
    /// MEMORY_RECORD: absolute time and resident set size (the heap is
    /// computed by whoever replays the allocations).
    Memory {
        time_ms: u64,
        rss: u64,
    },
    Object {
        tid: u64,
        address: u64,
        created: bool,
        native_frame_id: u64,
    },
    // Aggregated files.
    MemorySnapshot(MemorySnapshot),
    AggregatedAllocation(AggregatedLocation),
    SurvivingObject {
        address: u64,
        native_frame_id: u64,
    },
}

/// A frame as FRAME_PUSH (v12+) or FRAME_INDEX (v11) identifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum FrameKey {
    Code {
        code_object_id: u64,
        instruction_offset: i64,
        is_entry: bool,
    },
    Legacy(u64),
}

/// The reconstruction state, separate from the reader so that events can
/// borrow neither.
struct State {
    line_table: LineTableKind,
    tid: u64,
    stack: Vec<u32>,
    children: ChildCache<FrameKey>,
    other_stacks: HashMap<u64, Vec<u32>>,
    frames: Registry<FrameKey>,
    tree: FrameTree,
    code_objects: HashMap<u64, CodeObject<Arc<str>, Box<[u8]>>>,
    legacy_frames: HashMap<u64, Frame>,
    /// v11 aggregated tries hold the file's own frame ids (PYTHON_FRAME_INDEX
    /// records come in no particular order), not registration order.
    trie_holds_legacy_ids: bool,
    rendered: Vec<Option<Frame>>,
    native_nodes: Vec<(u64, u64)>,
    generations: Vec<Vec<Image>>,
    segments_expected: u64,
    thread_names: HashMap<u64, String>,
    allocations: u64,
}

pub struct Replay {
    reader: CaptureReader,
    state: State,
}

fn text(bytes: &[u8]) -> Arc<str> {
    Arc::from(String::from_utf8_lossy(bytes).as_ref())
}

impl Replay {
    pub fn open(path: impl AsRef<Path>) -> Result<Replay, FormatError> {
        Ok(Replay::new(CaptureReader::open(path)?))
    }

    pub fn new(reader: CaptureReader) -> Replay {
        let header = reader.header();
        let (major, minor) = header.python_major_minor();
        let state = State {
            line_table: LineTableKind::for_version(major, minor),
            tid: 0,
            stack: Vec::new(),
            children: ChildCache::default(),
            other_stacks: HashMap::new(),
            frames: Registry::default(),
            tree: FrameTree::default(),
            code_objects: HashMap::new(),
            legacy_frames: HashMap::new(),
            trie_holds_legacy_ids: header.version < 12
                && header.file_format == FileFormat::AggregatedAllocations,
            rendered: Vec::new(),
            native_nodes: Vec::new(),
            generations: Vec::new(),
            segments_expected: 0,
            thread_names: HashMap::new(),
            allocations: 0,
        };
        Replay { reader, state }
    }

    pub fn header(&self) -> &Header {
        self.reader.header()
    }

    /// See [`CaptureReader::is_truncated`].
    pub fn is_truncated(&self) -> bool {
        self.reader.is_truncated()
    }

    /// See [`CaptureReader::is_waiting`].
    pub fn is_waiting(&self) -> bool {
        self.reader.is_waiting()
    }

    /// See [`CaptureReader::damage`].
    pub fn damage(&self) -> Option<Damage> {
        self.reader.damage()
    }

    /// See [`CaptureReader::lost_records`].
    pub fn lost_records(&self) -> Option<u64> {
        self.reader.lost_records()
    }

    pub fn records_read(&self) -> u64 {
        self.reader.records_read()
    }

    /// The next event; `None` at the end of the capture.
    pub fn next_event(&mut self) -> Result<Option<Event>, FormatError> {
        let mut next = None;
        self.replay_until(|event| {
            next = Some(event);
            ControlFlow::Break(())
        })?;
        Ok(next)
    }

    /// Appends up to `limit` events to `out` and returns how many: 0 only at
    /// the end of the capture (or for a `limit` of 0). About 15% cheaper per
    /// event than [`Replay::next_event`]. On an error, the events before it
    /// are in `out`.
    pub fn next_events(
        &mut self,
        out: &mut Vec<Event>,
        limit: usize,
    ) -> Result<usize, FormatError> {
        if limit == 0 {
            return Ok(0);
        }
        let before = out.len();
        let target = before.saturating_add(limit);
        self.replay_until(|event| {
            out.push(event);
            if out.len() < target {
                ControlFlow::Continue(())
            } else {
                ControlFlow::Break(())
            }
        })?;
        Ok(out.len() - before)
    }

    /// Applies records, handing their events to `emit`, until `emit` breaks
    /// (true) or the capture ends (false): the cheapest way to consume
    /// events. Hot records skip [`Record`] (see [`HotRecords`]).
    #[inline]
    pub fn replay_until(
        &mut self,
        mut emit: impl FnMut(Event) -> ControlFlow<()>,
    ) -> Result<bool, FormatError> {
        loop {
            // A SEGMENT_HEADER's SEGMENTs must come first: `apply` checks.
            if self.state.segments_expected == 0 {
                let mut applier = HotApplier {
                    state: &mut self.state,
                    emit: &mut emit,
                };
                if self.reader.apply_hot_records(&mut applier) {
                    return Ok(true);
                }
            }
            let Some(record) = self.reader.next_record()? else {
                return Ok(false);
            };
            let event = self
                .state
                .apply(record)
                .map_err(FormatError::Inconsistent)?;
            if event.is_some_and(|event| emit(event).is_break()) {
                return Ok(true);
            }
        }
    }

    /// The Python stack of an allocation `tid` made at `node`, leaf first,
    /// as memray shows it (see [`Header::hide_outer_frames`]).
    pub fn python_stack(&mut self, node: u32, tid: u64) -> Vec<Frame> {
        let mut out = Vec::new();
        self.python_stack_into(node, tid, &mut out);
        out
    }

    /// Like [`Replay::python_stack`], reusing `out`'s allocation.
    pub fn python_stack_into(&mut self, node: u32, tid: u64, out: &mut Vec<Frame>) {
        self.python_frames_into(node, out);
        self.reader.header().hide_outer_frames(tid, out);
    }

    /// Every Python frame of trie node `node`, leaf first (empty for node 0),
    /// whichever thread it is shown for; `out` is cleared first.
    pub fn python_frames_into(&mut self, node: u32, out: &mut Vec<Frame>) {
        out.clear();
        self.state.walk(node, |frame, _| out.push(frame));
    }

    /// Every Python frame of trie node `node` with its entry-frame bit (what memray's hybrid
    /// stacks need: set on a frame that started its own eval loop, always before 3.11),
    /// leaf first, whichever thread it is shown for.
    pub fn python_frames_with_entries(&mut self, node: u32) -> Vec<(Frame, bool)> {
        let mut out = Vec::new();
        self.state
            .walk(node, |frame, is_entry| out.push((frame, is_entry)));
        out
    }

    /// `(frame_id, parent node)` of a Python trie node (for callers that
    /// build their own trees); `None` for the root.
    pub fn python_node(&self, node: u32) -> Option<(u64, u32)> {
        self.state.tree.node(node)
    }

    /// The instruction pointers of native trie node `id`, leaf first.
    pub fn native_stack(&self, id: u64) -> impl Iterator<Item = u64> + '_ {
        let nodes = &self.state.native_nodes;
        let mut next = id;
        std::iter::from_fn(move || {
            let &(ip, parent) = nodes.get((next as usize).checked_sub(1)?)?;
            // Parents always precede their children; anything else is corrupt.
            next = if parent < next { parent } else { 0 };
            Some(ip)
        })
    }

    /// The loaded objects of every segment generation so far, in the order of the capture's
    /// MEMORY_MAP_START records (generation 1 first).
    pub fn generations(&self) -> &[Vec<Image>] {
        &self.state.generations
    }

    /// The loaded objects of a segment generation (1-based, as allocations
    /// count them; generation 0 has none).
    pub fn images(&self, generation: u32) -> &[Image] {
        (generation as usize)
            .checked_sub(1)
            .and_then(|g| self.state.generations.get(g))
            .map_or(&[], Vec::as_slice)
    }

    pub fn thread_name(&self, tid: u64) -> Option<&str> {
        self.state.thread_names.get(&tid).map(String::as_str)
    }
}

/// Applies hot records to the state in place, emitting allocations.
struct HotApplier<'a, F> {
    state: &'a mut State,
    emit: &'a mut F,
}

impl<F: FnMut(Event) -> ControlFlow<()>> HotRecords for HotApplier<'_, F> {
    #[inline(always)]
    fn allocation(&mut self, record: AllocationRecord) -> ControlFlow<()> {
        (self.emit)(Event::Allocation(self.state.allocation(record)))
    }

    #[inline(always)]
    fn frame_push(&mut self, frame: PushedFrame) -> ControlFlow<()> {
        self.state.push(FrameKey::Code {
            code_object_id: frame.code_object_id,
            instruction_offset: frame.instruction_offset,
            is_entry: frame.is_entry_frame,
        });
        ControlFlow::Continue(())
    }

    #[inline(always)]
    fn frame_pop(&mut self, count: u32) -> ControlFlow<()> {
        self.state.pop(count);
        ControlFlow::Continue(())
    }

    #[inline(always)]
    fn native_trace_index(&mut self, ip: u64, parent: u64) -> ControlFlow<()> {
        self.state.native_nodes.push((ip, parent));
        ControlFlow::Continue(())
    }

    #[inline(always)]
    fn context_switch(&mut self, tid: u64) -> ControlFlow<()> {
        self.state.switch_to(tid);
        ControlFlow::Continue(())
    }
}

impl State {
    #[inline]
    fn allocation(&mut self, a: AllocationRecord) -> AllocationEvent {
        // As memray: a deallocation has no stack and no generation.
        let (python_node, native_segment_generation) = if a.allocator.is_deallocator() {
            (0, 0)
        } else {
            (
                self.stack.last().copied().unwrap_or(0),
                self.generations.len() as u32,
            )
        };
        let record_index = self.allocations;
        self.allocations += 1;
        AllocationEvent {
            tid: self.tid,
            address: a.address,
            size: a.size,
            allocator: a.allocator,
            python_node,
            native_frame_id: a.native_frame_id,
            native_segment_generation,
            record_index,
            n_allocations: 1,
        }
    }

    #[inline]
    fn pop(&mut self, count: u32) {
        let keep = self.stack.len().saturating_sub(count as usize);
        self.stack.truncate(keep);
    }

    #[inline]
    fn switch_to(&mut self, tid: u64) {
        if tid != self.tid {
            let previous = std::mem::take(&mut self.stack);
            self.other_stacks.insert(self.tid, previous);
            self.stack = self.other_stacks.remove(&tid).unwrap_or_default();
            self.tid = tid;
        }
    }

    /// Always inlined: a call per FRAME_PUSH was 6% of the replay.
    #[inline(always)]
    fn push(&mut self, key: FrameKey) {
        let parent = self.stack.last().copied().unwrap_or(0);
        let node = match self.children.get(parent, &key) {
            Some(node) => node,
            None => self.new_child(parent, key),
        };
        self.stack.push(node);
    }

    /// The trie node under `parent` for `key`, on a [`ChildCache`] miss.
    #[inline(never)]
    fn new_child(&mut self, parent: u32, key: FrameKey) -> u32 {
        let frame_id = self.frames.register(key);
        let node = self.tree.trace_index(parent, frame_id);
        self.children.insert(parent, key, node);
        node
    }

    /// Updates the state; returns the event the record produces, if any.
    #[inline]
    fn apply(&mut self, record: Record<'_>) -> Result<Option<Event>, &'static str> {
        if self.segments_expected > 0 {
            let Record::Segment { vaddr, memsz } = record else {
                return Err("a SEGMENT_HEADER is not followed by its SEGMENT records");
            };
            let image = self
                .generations
                .last_mut()
                .and_then(|g| g.last_mut())
                .ok_or("a SEGMENT outside any MEMORY_MAP_START")?;
            image.segments.push(Segment { vaddr, memsz });
            self.segments_expected -= 1;
            return Ok(None);
        }
        Ok(match record {
            Record::Allocation(a) | Record::LegacyNativeAllocation(a) => {
                Some(Event::Allocation(self.allocation(a)))
            }
            Record::FramePush {
                code_object_id,
                instruction_offset,
                is_entry_frame,
            } => {
                self.push(FrameKey::Code {
                    code_object_id,
                    instruction_offset,
                    is_entry: is_entry_frame,
                });
                None
            }
            Record::LegacyFramePush { frame_id } => {
                self.push(FrameKey::Legacy(frame_id));
                None
            }
            Record::FramePop { count } => {
                self.pop(count);
                None
            }
            Record::ObjectRecord {
                address,
                created,
                native_frame_id,
            } => Some(Event::Object {
                tid: self.tid,
                address,
                created,
                native_frame_id,
            }),
            Record::MemoryRecord { time_ms, rss } => Some(Event::Memory { time_ms, rss }),
            Record::NativeTraceIndex { ip, parent } => {
                self.native_nodes.push((ip, parent));
                None
            }
            Record::MemoryMapStart => {
                self.generations.push(Vec::new());
                None
            }
            Record::SegmentHeader {
                filename,
                num_segments,
                load_address,
            } => {
                let generation = self
                    .generations
                    .last_mut()
                    .ok_or("a SEGMENT_HEADER outside any MEMORY_MAP_START")?;
                generation.push(Image {
                    filename: String::from_utf8_lossy(filename).into_owned(),
                    load_address,
                    segments: Vec::new(),
                });
                self.segments_expected = num_segments;
                None
            }
            Record::Segment { .. } => return Err("a SEGMENT without a SEGMENT_HEADER"),
            Record::ThreadRecord { name } => {
                self.thread_names
                    .insert(self.tid, String::from_utf8_lossy(name).into_owned());
                None
            }
            Record::ContextSwitch { tid } => {
                self.switch_to(tid);
                None
            }
            Record::CodeObject {
                code_object_id,
                function_name,
                filename,
                firstlineno,
                linetable,
            } => {
                self.code_objects.insert(
                    code_object_id,
                    CodeObject {
                        function: text(function_name),
                        filename: text(filename),
                        firstlineno,
                        linetable: linetable.into(),
                    },
                );
                None
            }
            Record::LegacyFrameIndex(frame) | Record::LegacyPythonFrameIndex(frame) => {
                let rendered = Frame {
                    function: text(frame.function_name),
                    filename: text(frame.filename),
                    lineno: frame.lineno,
                };
                self.legacy_frames.insert(frame.frame_id, rendered);
                None
            }
            Record::PythonFrameIndex {
                frame_id,
                code_object_id,
                instruction_offset,
                is_entry_frame,
            } => {
                let registered = self.frames.register(FrameKey::Code {
                    code_object_id,
                    instruction_offset,
                    is_entry: is_entry_frame,
                });
                if registered != frame_id {
                    return Err("Frame ID mismatch");
                }
                None
            }
            Record::PythonTraceIndex {
                frame_id,
                parent_index,
            } => {
                // Parents precede their children: anything else could make
                // a cycle that stack walks would never leave.
                let parent = u32::try_from(parent_index)
                    .ok()
                    .filter(|&p| p as usize <= self.tree.len())
                    .ok_or("a trie parent out of range")?;
                self.tree.trace_index(parent, frame_id);
                None
            }
            Record::MemorySnapshot { time_ms, rss, heap } => {
                Some(Event::MemorySnapshot(MemorySnapshot { time_ms, rss, heap }))
            }
            Record::AggregatedAllocation(a) => Some(Event::AggregatedAllocation(
                AggregatedLocation::of(&a).ok_or("an aggregated allocation's ids out of range")?,
            )),
            Record::SurvivingObject {
                address,
                native_frame_id,
            } => Some(Event::SurvivingObject {
                address,
                native_frame_id,
            }),
            Record::Trailer => None,
        })
    }

    /// Hands each renderable frame of trie node `node`, leaf first, to `visit` with its
    /// entry-frame bit (v11 frames have none: memray counts them as entry frames).
    fn walk(&mut self, mut node: u32, mut visit: impl FnMut(Frame, bool)) {
        while let Some((frame_id, parent)) = self.tree.node(node) {
            if let Some(frame) = self.render(frame_id) {
                let is_entry = match self.frames.get(frame_id) {
                    Some(&FrameKey::Code { is_entry, .. }) => is_entry,
                    _ => true,
                };
                visit(frame, is_entry);
            }
            node = parent;
        }
    }

    /// The frame registered as `frame_id`, rendered once and cached.
    fn render(&mut self, frame_id: u64) -> Option<Frame> {
        let index = frame_id as usize;
        if let Some(Some(frame)) = self.rendered.get(index) {
            return Some(frame.clone());
        }
        if self.trie_holds_legacy_ids {
            return self.legacy_frames.get(&frame_id).cloned();
        }
        let frame = match *self.frames.get(frame_id)? {
            FrameKey::Code {
                code_object_id,
                instruction_offset,
                ..
            } => {
                let code = self.code_objects.get(&code_object_id)?;
                Frame {
                    function: code.function.clone(),
                    filename: code.filename.clone(),
                    lineno: line_number(
                        self.line_table,
                        &code.linetable,
                        code.firstlineno,
                        instruction_offset,
                    ),
                }
            }
            FrameKey::Legacy(id) => self.legacy_frames.get(&id)?.clone(),
        };
        if self.rendered.len() <= index {
            self.rendered.resize(index + 1, None);
        }
        self.rendered[index] = Some(frame.clone());
        Some(frame)
    }
}
