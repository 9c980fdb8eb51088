//! Record grammars (docs/memray-format.md §5, §7, §8). Each decoder reads one
//! record at `pos` and commits its delta/cache state only once the whole
//! record was there, so an incomplete record can be retried after a refill.

use std::ops::ControlFlow;

use crate::encoding::{
    Cursor, DecodeError, DeltaState, FieldReader, PointerCache, Window, CACHE_MISS, WINDOW,
};
use crate::header::{FileFormat, Header};
use crate::record::{
    AggregatedAllocation, AllocationRecord, LegacyFrame, Record, AGGREGATED_ALLOCATION_SIZE,
};
use crate::token::{AggregatedToken, LegacyToken, StreamToken};
use memray_heap::Allocator;

/// Decoding state shared by all records of one stream.
pub struct Decoder {
    grammar: Grammar,
    native_traces: bool,
    start_time_ms: u64,
    last: DeltaState,
    cache: PointerCache,
    /// v11 deltas that v12+ dropped.
    last_frame_id: u64,
    last_lineno: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Grammar {
    Stream,
    Aggregated,
    LegacyStream,
    LegacyAggregated,
}

type Decoded<'a> = Result<(Record<'a>, usize), DecodeError>;

/// The longest hot record: an ALLOCATION with a 10-byte address delta, its
/// allocator byte, a 10-byte native frame delta and a 10-byte size. A hot
/// record with this many bytes ahead is read through a [`Window`].
pub const MAX_HOT_RECORD_LEN: usize = 32;
const _: () = assert!(MAX_HOT_RECORD_LEN == WINDOW);

/// Receives the records of a v12/v13 stream that replay applies most often
/// (ALLOCATION, FRAME_PUSH, FRAME_POP, NATIVE_TRACE_INDEX, CONTEXT_SWITCH)
/// field by field: moving a whole [`Record`] through `Result`/`Option`
/// wrappers for each of them cost more than decoding them.
/// Each returns `Break` to stop the run after its record (an event is ready).
pub trait HotRecords {
    fn allocation(&mut self, record: AllocationRecord) -> ControlFlow<()>;
    fn frame_push(&mut self, frame: PushedFrame) -> ControlFlow<()>;
    fn frame_pop(&mut self, count: u32) -> ControlFlow<()>;
    fn native_trace_index(&mut self, ip: u64, parent: u64) -> ControlFlow<()>;
    fn context_switch(&mut self, tid: u64) -> ControlFlow<()>;
}

/// A FRAME_PUSH record's fields.
#[derive(Debug, Clone, Copy)]
pub struct PushedFrame {
    pub code_object_id: u64,
    pub instruction_offset: i64,
    pub is_entry_frame: bool,
}

/// Where a [`Decoder::hot_run`] ended.
pub struct HotRun {
    /// The position after the last record applied.
    pub pos: usize,
    pub applied: u64,
    /// The sink asked to stop (otherwise a record needs `decode`).
    pub stopped: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum Hot {
    Applied,
    Stop,
    /// Another kind of record: nothing was consumed.
    Cold,
}

/// Turns one hot record back into a [`Record`] (and stops the run there).
pub(crate) struct RecordSlot(pub Option<Record<'static>>);

impl RecordSlot {
    #[inline(always)]
    fn fill(&mut self, record: Record<'static>) -> ControlFlow<()> {
        self.0 = Some(record);
        ControlFlow::Break(())
    }
}

impl HotRecords for RecordSlot {
    #[inline(always)]
    fn allocation(&mut self, record: AllocationRecord) -> ControlFlow<()> {
        self.fill(Record::Allocation(record))
    }

    #[inline(always)]
    fn frame_push(&mut self, frame: PushedFrame) -> ControlFlow<()> {
        self.fill(Record::FramePush {
            code_object_id: frame.code_object_id,
            instruction_offset: frame.instruction_offset,
            is_entry_frame: frame.is_entry_frame,
        })
    }

    #[inline(always)]
    fn frame_pop(&mut self, count: u32) -> ControlFlow<()> {
        self.fill(Record::FramePop { count })
    }

    #[inline(always)]
    fn native_trace_index(&mut self, ip: u64, parent: u64) -> ControlFlow<()> {
        self.fill(native_trace_index_record((ip, parent)))
    }

    #[inline(always)]
    fn context_switch(&mut self, tid: u64) -> ControlFlow<()> {
        self.fill(Record::ContextSwitch { tid })
    }
}

fn native_trace_index_record((ip, parent): (u64, u64)) -> Record<'static> {
    Record::NativeTraceIndex { ip, parent }
}

/// The [`WINDOW`] bytes from `pos` on, if the data holds that many.
#[inline(always)]
fn window_at(data: &[u8], pos: usize) -> Option<&[u8; WINDOW]> {
    data.get(pos..pos.checked_add(WINDOW)?)?.try_into().ok()
}

impl Decoder {
    pub fn new(header: &Header) -> Decoder {
        let legacy = header.version < 12;
        let grammar = match (header.file_format, legacy) {
            (FileFormat::AllAllocations, false) => Grammar::Stream,
            (FileFormat::AggregatedAllocations, false) => Grammar::Aggregated,
            (FileFormat::AllAllocations, true) => Grammar::LegacyStream,
            (FileFormat::AggregatedAllocations, true) => Grammar::LegacyAggregated,
        };
        Decoder {
            grammar,
            native_traces: header.native_traces,
            start_time_ms: header.stats.start_time_ms as u64,
            last: DeltaState::default(),
            cache: PointerCache::default(),
            last_frame_id: 0,
            last_lineno: 0,
        }
    }

    /// The record at `pos` and the position after it.
    #[inline]
    pub fn decode<'a>(&mut self, data: &'a [u8], pos: usize) -> Decoded<'a> {
        match self.grammar {
            Grammar::Stream => self.stream(data, pos),
            Grammar::Aggregated => self.aggregated(data, pos, false),
            Grammar::LegacyStream => self.legacy_stream(data, pos),
            Grammar::LegacyAggregated => self.aggregated(data, pos, true),
        }
    }

    #[inline]
    fn stream<'a>(&mut self, data: &'a [u8], pos: usize) -> Decoded<'a> {
        if let Some(window) = window_at(data, pos) {
            let mut w = Window::new(window, 1);
            let mut slot = RecordSlot(None);
            if self.hot_record(&mut w, window[0], &mut slot)? != Hot::Cold {
                let record = slot.0.expect("a hot record fills the slot");
                return Ok((record, pos + w.pos()));
            }
        }
        let mut c = Cursor::new(data, pos);
        let token = c.u8()?;
        let mut slot = RecordSlot(None);
        if self.hot_record(&mut c, token, &mut slot)? != Hot::Cold {
            let record = slot.0.expect("a hot record fills the slot");
            return Ok((record, c.pos()));
        }
        let record = match StreamToken::of(token) {
            Some(StreamToken::ObjectRecord) => self.object_record(&mut c, token)?,
            Some(StreamToken::Trailer) => Record::Trailer,
            Some(StreamToken::MemoryRecord) => self.memory_record(&mut c)?,
            Some(StreamToken::CodeObject) => self.code_object(&mut c)?,
            _ => self.shared_simple(&mut c, token)?,
        };
        Ok((record, c.pos()))
    }

    /// Decodes a v12/v13 record of a hot kind (token already read) straight
    /// into `sink`; `Hot::Cold` for any other kind (nothing consumed).
    #[inline(always)]
    fn hot_record<R: FieldReader, S: HotRecords>(
        &mut self,
        c: &mut R,
        token: u8,
        sink: &mut S,
    ) -> Result<Hot, DecodeError> {
        let flow = if token & StreamToken::Allocation.byte() != 0 {
            let record = self.allocation(c, token)?;
            sink.allocation(record)
        } else if token & StreamToken::FramePush.byte() != 0 {
            let code_object_id = c.varint()?;
            sink.frame_push(PushedFrame {
                code_object_id,
                instruction_offset: c.svarint()?,
                is_entry_frame: token & 1 != 0,
            })
        } else if token & 0x30 == StreamToken::FramePop.byte() {
            sink.frame_pop((token & 0x0f) as u32 + 1)
        } else if token == StreamToken::NativeTraceIndex.byte() {
            let (ip, parent) = self.native_trace_index(c)?;
            sink.native_trace_index(ip, parent)
        } else if token == StreamToken::ContextSwitch.byte() {
            sink.context_switch(c.u64_raw()?)
        } else {
            return Ok(Hot::Cold);
        };
        Ok(match flow {
            ControlFlow::Continue(()) => Hot::Applied,
            ControlFlow::Break(()) => Hot::Stop,
        })
    }

    /// Whether the grammar has hot records (v12/v13 streams), the
    /// precondition of [`Decoder::hot_run`].
    pub fn has_hot_records(&self) -> bool {
        self.grammar == Grammar::Stream
    }

    /// Applies the hot records from `pos` on (see [`HotRecords`]) until the
    /// sink stops, another kind of record comes, or fewer than
    /// [`MAX_HOT_RECORD_LEN`] bytes are left; stops before a record that does
    /// not decode, leaving it to [`Decoder::decode`]. Only for a grammar
    /// that [`Decoder::has_hot_records`].
    #[inline]
    pub fn hot_run<S: HotRecords>(&mut self, data: &[u8], pos: usize, sink: &mut S) -> HotRun {
        debug_assert!(self.has_hot_records());
        let mut run = HotRun {
            pos,
            applied: 0,
            stopped: false,
        };
        while let Some(window) = window_at(data, run.pos) {
            let mut w = Window::new(window, 1);
            let outcome = self.hot_record(&mut w, window[0], sink);
            if !matches!(outcome, Ok(Hot::Applied | Hot::Stop)) {
                break;
            }
            run.pos += w.pos();
            run.applied += 1;
            if outcome == Ok(Hot::Stop) {
                run.stopped = true;
                break;
            }
        }
        run
    }

    /// MEMORY_RECORD: the time is stored relative to the header's start time.
    fn memory_record<'a>(&self, c: &mut Cursor<'a>) -> Result<Record<'a>, DecodeError> {
        let rss = c.varint()?;
        let delta = c.varint()?;
        Ok(Record::MemoryRecord {
            time_ms: self.start_time_ms.wrapping_add(delta),
            rss,
        })
    }

    /// Records encoded alike in every grammar and version.
    fn shared_simple<'a>(
        &mut self,
        c: &mut Cursor<'a>,
        token: u8,
    ) -> Result<Record<'a>, DecodeError> {
        // The same bytes in both grammars.
        Ok(match StreamToken::of(token) {
            Some(StreamToken::MemoryMapStart) => Record::MemoryMapStart,
            Some(StreamToken::SegmentHeader) => Record::SegmentHeader {
                filename: c.cstr()?,
                num_segments: c.varint()?,
                load_address: c.u64_raw()?,
            },
            Some(StreamToken::Segment) => Record::Segment {
                vaddr: c.u64_raw()?,
                memsz: c.varint()?,
            },
            Some(StreamToken::ThreadRecord) => Record::ThreadRecord { name: c.cstr()? },
            Some(StreamToken::ContextSwitch) => Record::ContextSwitch { tid: c.u64_raw()? },
            _ => return Err(DecodeError::Invalid),
        })
    }

    /// Always inlined: returned through memory, the record was re-read
    /// with wider loads than it was stored with (a store-forwarding stall).
    #[inline(always)]
    fn allocation<R: FieldReader>(
        &mut self,
        c: &mut R,
        token: u8,
    ) -> Result<AllocationRecord, DecodeError> {
        let (address, missed) = self.address(c, (token >> 3) & 0x0f)?;
        let allocator_id = match token & 0x07 {
            0 => c.u8()?,
            id => id,
        };
        let allocator = Allocator::from_id(allocator_id).ok_or(DecodeError::Invalid)?;
        let mut native_frame_id = self.last.native_frame_id;
        let (size, native) = if allocator.is_simple_deallocator() {
            (0, 0)
        } else {
            if self.native_traces {
                native_frame_id = c.delta(native_frame_id)?;
            }
            (
                c.varint()?,
                if self.native_traces {
                    native_frame_id
                } else {
                    0
                },
            )
        };
        // Complete: commit.
        self.commit_address(address, missed);
        self.last.native_frame_id = native_frame_id;
        Ok(AllocationRecord {
            address,
            size,
            allocator,
            native_frame_id: native,
        })
    }

    /// The address of an ALLOCATION or OBJECT_RECORD: the pointer cache's
    /// `slot`, or on a miss a delta from the last data pointer (in 8-byte
    /// units), returned for [`Decoder::commit_address`].
    #[inline(always)]
    fn address<R: FieldReader>(
        &self,
        c: &mut R,
        slot: u8,
    ) -> Result<(u64, Option<u64>), DecodeError> {
        if slot == CACHE_MISS {
            let data_pointer = c.delta(self.last.data_pointer)?;
            Ok((data_pointer << 3, Some(data_pointer)))
        } else {
            Ok((self.cache.get(slot), None))
        }
    }

    /// Once the record is complete: a missed address becomes the last data
    /// pointer and enters the cache.
    #[inline(always)]
    fn commit_address(&mut self, address: u64, missed: Option<u64>) {
        if let Some(data_pointer) = missed {
            self.last.data_pointer = data_pointer;
            self.cache.insert(address);
        }
    }

    fn object_record<'a>(
        &mut self,
        c: &mut Cursor<'a>,
        token: u8,
    ) -> Result<Record<'a>, DecodeError> {
        let created = token & 1 != 0;
        let (address, missed) = self.address(c, (token >> 1) & 0x0f)?;
        let mut native_frame_id = self.last.native_frame_id;
        if self.native_traces && created {
            native_frame_id = c.delta(native_frame_id)?;
        }
        self.commit_address(address, missed);
        self.last.native_frame_id = native_frame_id;
        Ok(Record::ObjectRecord {
            address,
            created,
            native_frame_id: if self.native_traces && created {
                native_frame_id
            } else {
                0
            },
        })
    }

    /// Aggregated files start these deltas from zero too: the decoder is fresh.
    /// `(ip, parent)`.
    fn native_trace_index<R: FieldReader>(&mut self, c: &mut R) -> Result<(u64, u64), DecodeError> {
        let ip = c.delta(self.last.instruction_pointer)?;
        let parent = c.delta(self.last.native_frame_id)?;
        self.last.instruction_pointer = ip;
        self.last.native_frame_id = parent;
        Ok((ip, parent))
    }

    fn code_object<'a>(&mut self, c: &mut Cursor<'a>) -> Result<Record<'a>, DecodeError> {
        let code_object_id = c.varint()?;
        let function_name = c.cstr()?;
        let filename = c.cstr()?;
        let firstlineno = c.delta(self.last.code_firstlineno)?;
        let len = c.varint()?;
        let linetable = c.bytes(usize::try_from(len).map_err(|_| DecodeError::Invalid)?)?;
        self.last.code_firstlineno = firstlineno;
        Ok(Record::CodeObject {
            code_object_id,
            function_name,
            filename,
            firstlineno: firstlineno as i32,
            linetable,
        })
    }

    fn aggregated<'a>(&mut self, data: &'a [u8], pos: usize, legacy: bool) -> Decoded<'a> {
        let mut c = Cursor::new(data, pos);
        let token = c.u8()?;
        let Some(kind) = AggregatedToken::of(token) else {
            return Err(DecodeError::Invalid);
        };
        let record = match kind {
            AggregatedToken::MemorySnapshot => Record::MemorySnapshot {
                time_ms: c.u64_raw()?,
                rss: c.u64_raw()?,
                heap: c.u64_raw()?,
            },
            AggregatedToken::AggregatedAllocation => {
                let bytes: &[u8; AGGREGATED_ALLOCATION_SIZE] = c
                    .bytes(AGGREGATED_ALLOCATION_SIZE)?
                    .try_into()
                    .expect("exact length");
                let allocator = if legacy {
                    Allocator::from_v11_id(bytes[8])
                } else {
                    Allocator::from_id(bytes[8])
                };
                let allocator = allocator.ok_or(DecodeError::Invalid)?;
                Record::AggregatedAllocation(AggregatedAllocation::decode(bytes, allocator))
            }
            // v11: raw `frame_id_t` (u64) and `FrameTree::index_t` (u32).
            AggregatedToken::PythonTraceIndex if legacy => Record::PythonTraceIndex {
                frame_id: c.u64_raw()?,
                parent_index: c.u32_raw()? as u64,
            },
            AggregatedToken::PythonTraceIndex => Record::PythonTraceIndex {
                frame_id: c.varint()?,
                parent_index: c.varint()?,
            },
            AggregatedToken::PythonFrameIndex if legacy => {
                Record::LegacyPythonFrameIndex(LegacyFrame {
                    frame_id: c.u64_raw()?,
                    function_name: c.cstr()?,
                    filename: c.cstr()?,
                    lineno: c.i32_raw()?,
                    is_entry_frame: c.u8()? != 0,
                })
            }
            AggregatedToken::PythonFrameIndex => Record::PythonFrameIndex {
                frame_id: c.varint()?,
                code_object_id: c.varint()?,
                instruction_offset: c.svarint()?,
                is_entry_frame: c.u8()? != 0,
            },
            AggregatedToken::NativeTraceIndex => {
                native_trace_index_record(self.native_trace_index(&mut c)?)
            }
            AggregatedToken::SurvivingObject if !legacy => {
                let address = c.varint()? << 3;
                let native_frame_id = if self.native_traces { c.varint()? } else { 0 };
                Record::SurvivingObject {
                    address,
                    native_frame_id,
                }
            }
            AggregatedToken::CodeObject if !legacy => self.code_object(&mut c)?,
            AggregatedToken::AggregatedTrailer => Record::Trailer,
            _ => self.shared_simple(&mut c, token)?,
        };
        Ok((record, c.pos()))
    }

    /// v11: low nibble = record type, high nibble = flags.
    fn legacy_stream<'a>(&mut self, data: &'a [u8], pos: usize) -> Decoded<'a> {
        let mut c = Cursor::new(data, pos);
        let token = c.u8()?;
        let flags = LegacyToken::flags(token);
        let kind = LegacyToken::of(token).ok_or(DecodeError::Invalid)?;
        let record = match kind {
            LegacyToken::Other if flags == 1 => Record::Trailer,
            LegacyToken::Allocation => {
                let allocator = Allocator::from_v11_id(flags).ok_or(DecodeError::Invalid)?;
                let address = c.delta(self.last.data_pointer)?;
                let size = if allocator.is_simple_deallocator() {
                    0
                } else {
                    c.varint()?
                };
                self.last.data_pointer = address;
                Record::Allocation(AllocationRecord {
                    address,
                    size,
                    allocator,
                    native_frame_id: 0,
                })
            }
            // ALLOCATION_WITH_NATIVE always carries a size, frees included.
            LegacyToken::AllocationWithNative => {
                let allocator = Allocator::from_v11_id(flags).ok_or(DecodeError::Invalid)?;
                let address = c.delta(self.last.data_pointer)?;
                let size = c.varint()?;
                let native_frame_id = c.delta(self.last.native_frame_id)?;
                self.last.data_pointer = address;
                self.last.native_frame_id = native_frame_id;
                Record::LegacyNativeAllocation(AllocationRecord {
                    address,
                    size,
                    allocator,
                    native_frame_id,
                })
            }
            LegacyToken::FrameIndex => {
                let frame_id = c.delta(self.last_frame_id)?;
                let function_name = c.cstr()?;
                let filename = c.cstr()?;
                let lineno = c.delta(self.last_lineno)?;
                self.last_frame_id = frame_id;
                self.last_lineno = lineno;
                Record::LegacyFrameIndex(LegacyFrame {
                    frame_id,
                    function_name,
                    filename,
                    lineno: lineno as i32,
                    is_entry_frame: flags & 1 == 0,
                })
            }
            LegacyToken::FramePush => {
                let frame_id = c.delta(self.last_frame_id)?;
                self.last_frame_id = frame_id;
                Record::LegacyFramePush { frame_id }
            }
            LegacyToken::NativeTraceIndex => {
                native_trace_index_record(self.native_trace_index(&mut c)?)
            }
            LegacyToken::FramePop => Record::FramePop {
                count: flags as u32 + 1,
            },
            LegacyToken::MemoryRecord => self.memory_record(&mut c)?,
            LegacyToken::MemoryMapStart
            | LegacyToken::SegmentHeader
            | LegacyToken::Segment
            | LegacyToken::ThreadRecord
            | LegacyToken::ContextSwitch
                if flags == 0 =>
            {
                self.shared_simple(&mut c, kind.byte())?
            }
            LegacyToken::Other
            | LegacyToken::MemoryMapStart
            | LegacyToken::SegmentHeader
            | LegacyToken::Segment
            | LegacyToken::ThreadRecord
            | LegacyToken::ContextSwitch => return Err(DecodeError::Invalid),
        };
        Ok((record, c.pos()))
    }
}
