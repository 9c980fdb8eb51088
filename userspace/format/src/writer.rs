//! The v13 writers' common interface, and the ALL_ALLOCATIONS stream writer
//! (memray's `StreamingRecordWriter`), byte for byte.

use std::io;

use crate::encoding::{
    put_cstr, put_delta, put_varint, DeltaState, PointerCache, RecordBuf, CACHE_MISS,
};
use crate::header::{FileFormat, Header, CURRENT_VERSION};
use crate::lost_records;
use crate::sink::Sink;
use crate::token::StreamToken;
use memray_heap::Allocator;

/// One loaded object: a SEGMENT_HEADER and its SEGMENTs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub filename: String,
    /// The load bias (`dlpi_addr`).
    pub load_address: u64,
    pub segments: Vec<Segment>,
}

/// One `PT_LOAD` program header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub vaddr: u64,
    pub memsz: u64,
}

/// What the tracker calls, whichever file format it writes. Implemented by
/// [`StreamingWriter`] (ALL_ALLOCATIONS) and
/// [`AggregatingWriter`](crate::AggregatingWriter) (AGGREGATED_ALLOCATIONS).
pub trait CaptureWriter: Send {
    fn write_memory_record(&mut self, time_ms: u64, rss: u64) -> io::Result<()>;
    fn write_code_object(
        &mut self,
        id: u64,
        function: &[u8],
        filename: &[u8],
        firstlineno: i32,
        linetable: &[u8],
    ) -> io::Result<()>;
    fn write_frame_push(
        &mut self,
        tid: u64,
        code_object_id: u64,
        instruction_offset: i64,
        is_entry: bool,
    ) -> io::Result<()>;
    fn write_frame_pop(&mut self, tid: u64, count: u32) -> io::Result<()>;
    /// Defines native trie node N+1 (nodes are numbered in call order from 1).
    fn write_native_trace_index(&mut self, ip: u64, parent: u32) -> io::Result<()>;
    fn write_allocation(
        &mut self,
        tid: u64,
        address: u64,
        size: u64,
        allocator: Allocator,
        native_frame_id: u32,
    ) -> io::Result<()>;
    fn write_thread_name(&mut self, tid: u64, name: &[u8]) -> io::Result<()>;
    /// MEMORY_MAP_START, then each image's SEGMENT_HEADER and SEGMENTs.
    fn write_mappings(&mut self, images: &[Image]) -> io::Result<()>;
    fn write_object_record(
        &mut self,
        tid: u64,
        address: u64,
        created: bool,
        native_frame_id: u32,
    ) -> io::Result<()>;
    /// Records that never reached the writer (lost by the eBPF probes):
    /// `finish` notes their number after the trailer, where memray does not read.
    fn note_lost_records(&mut self, count: u64);
    /// Trailer, then the header rewritten with `n_allocations` and `end_time`.
    fn finish(&mut self, end_time_ms: u64) -> io::Result<()>;
    /// Hands the records written so far to the sink's readers (a live
    /// session's socket sends its buffer, at most every 100 ms).
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// MEMORY_MAP_START + SEGMENT_HEADER/SEGMENT records (shared by both writers).
pub(crate) fn encode_mappings(out: &mut Vec<u8>, images: &[Image]) {
    out.push(StreamToken::MemoryMapStart.byte());
    for image in images {
        out.push(StreamToken::SegmentHeader.byte());
        put_cstr(out, image.filename.as_bytes());
        put_varint(out, image.segments.len() as u64);
        out.extend_from_slice(&image.load_address.to_ne_bytes());
        for segment in &image.segments {
            out.push(StreamToken::Segment.byte());
            out.extend_from_slice(&segment.vaddr.to_ne_bytes());
            put_varint(out, segment.memsz);
        }
    }
}

/// CODE_OBJECT (shared by both writers; `last_firstlineno` is the delta base).
pub(crate) fn encode_code_object(
    out: &mut Vec<u8>,
    last_firstlineno: &mut u64,
    id: u64,
    function: &[u8],
    filename: &[u8],
    firstlineno: i32,
    linetable: &[u8],
) {
    out.push(StreamToken::CodeObject.byte());
    put_varint(out, id);
    put_cstr(out, function);
    put_cstr(out, filename);
    put_delta(out, last_firstlineno, firstlineno as i64 as u64);
    put_varint(out, linetable.len() as u64);
    out.extend_from_slice(linetable);
}

/// The largest fixed-size record (ALLOCATION with a CONTEXT_SWITCH before
/// it: 9 + 1 + 10 + 1 + 10 + 10 bytes), rounded up.
const SMALL_RECORD: usize = 48;

/// CONTEXT_SWITCH when `tid` is not the stream's current thread.
#[inline]
fn context_switch(last: &mut DeltaState, buf: &mut RecordBuf<'_, SMALL_RECORD>, tid: u64) {
    if last.thread_id != tid {
        last.thread_id = tid;
        buf.byte(StreamToken::ContextSwitch.byte());
        buf.raw(&tid.to_ne_bytes());
    }
}

/// FRAME_POP tokens (each pops 1-16 frames) for up to 512 of `count`
/// frames, so that they fit after a context switch; returns what is left.
#[inline]
fn frame_pop_tokens(buf: &mut RecordBuf<'_, SMALL_RECORD>, count: u32) -> u32 {
    let mut left = count;
    for _ in 0..32 {
        if left == 0 {
            break;
        }
        let n = left.min(16);
        buf.byte(StreamToken::FramePop.byte() | (n - 1) as u8);
        left -= n;
    }
    left
}

/// Prepares a caller-filled header for writing with this writer's format.
pub(crate) fn normalized_header(mut header: Header, format: FileFormat) -> Header {
    header.version = CURRENT_VERSION;
    header.file_format = format;
    header.stats.n_allocations = 0;
    header.stats.n_frames = 0;
    header.stats.end_time_ms = header.stats.start_time_ms;
    header
}

/// Writes ALL_ALLOCATIONS captures as they happen (memray's
/// `StreamingRecordWriter`). The header is written at creation.
pub struct StreamingWriter<S: Sink> {
    sink: S,
    header: Header,
    last: DeltaState,
    cache: PointerCache,
    /// Reused for variable-length records (strings, mappings).
    scratch: Vec<u8>,
    lost_records: u64,
}

impl<S: Sink> StreamingWriter<S> {
    /// Fill `header` with the process's details and `stats.start_time_ms`;
    /// version, file format and the other stats are set here.
    pub fn new(mut sink: S, header: Header) -> io::Result<Self> {
        let header = normalized_header(header, FileFormat::AllAllocations);
        sink.write_all(&header.encode())?;
        Ok(StreamingWriter {
            sink,
            header,
            last: DeltaState::default(),
            cache: PointerCache::default(),
            scratch: Vec::new(),
            lost_records: 0,
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn sink(&self) -> &S {
        &self.sink
    }

    pub fn into_sink(self) -> S {
        self.sink
    }

    /// Writes `scratch` to the sink (variable-length records).
    fn flush_scratch(&mut self) -> io::Result<()> {
        let result = self.sink.write_all(&self.scratch);
        self.scratch.clear();
        result
    }
}

impl<S: Sink> CaptureWriter for StreamingWriter<S> {
    fn write_memory_record(&mut self, time_ms: u64, rss: u64) -> io::Result<()> {
        let start_time_ms = self.header.stats.start_time_ms as u64;
        self.sink.write_with::<SMALL_RECORD>(|buf| {
            buf.byte(StreamToken::MemoryRecord.byte());
            buf.varint(rss);
            buf.varint(time_ms.wrapping_sub(start_time_ms));
        })?;
        self.sink.flush()
    }

    fn write_code_object(
        &mut self,
        id: u64,
        function: &[u8],
        filename: &[u8],
        firstlineno: i32,
        linetable: &[u8],
    ) -> io::Result<()> {
        encode_code_object(
            &mut self.scratch,
            &mut self.last.code_firstlineno,
            id,
            function,
            filename,
            firstlineno,
            linetable,
        );
        self.flush_scratch()
    }

    #[inline]
    fn write_frame_push(
        &mut self,
        tid: u64,
        code_object_id: u64,
        instruction_offset: i64,
        is_entry: bool,
    ) -> io::Result<()> {
        let last = &mut self.last;
        self.sink.write_with::<SMALL_RECORD>(|buf| {
            context_switch(last, buf, tid);
            buf.byte(StreamToken::FramePush.byte() | is_entry as u8);
            buf.varint(code_object_id);
            buf.svarint(instruction_offset);
        })
    }

    #[inline]
    fn write_frame_pop(&mut self, tid: u64, count: u32) -> io::Result<()> {
        let last = &mut self.last;
        let mut left = count;
        self.sink.write_with::<SMALL_RECORD>(|buf| {
            context_switch(last, buf, tid);
            left = frame_pop_tokens(buf, left);
        })?;
        while left > 0 {
            self.sink
                .write_with::<SMALL_RECORD>(|buf| left = frame_pop_tokens(buf, left))?;
        }
        Ok(())
    }

    #[inline]
    fn write_native_trace_index(&mut self, ip: u64, parent: u32) -> io::Result<()> {
        let last = &mut self.last;
        self.sink.write_with::<SMALL_RECORD>(|buf| {
            buf.byte(StreamToken::NativeTraceIndex.byte());
            buf.delta(&mut last.instruction_pointer, ip);
            buf.delta(&mut last.native_frame_id, parent as u64);
        })
    }

    #[inline]
    fn write_allocation(
        &mut self,
        tid: u64,
        address: u64,
        size: u64,
        allocator: Allocator,
        native_frame_id: u32,
    ) -> io::Result<()> {
        self.header.stats.n_allocations += 1;
        let native_traces = self.header.native_traces;
        let (last, cache) = (&mut self.last, &mut self.cache);
        self.sink.write_with::<SMALL_RECORD>(|buf| {
            context_switch(last, buf, tid);
            let id = allocator.id();
            let slot = cache.lookup_or_insert(address);
            let mut token = StreamToken::Allocation.byte() | (slot.unwrap_or(CACHE_MISS) << 3);
            if id < 8 {
                token |= id;
            }
            buf.byte(token);
            if slot.is_none() {
                buf.delta(&mut last.data_pointer, address >> 3);
            }
            if id >= 8 {
                buf.byte(id);
            }
            if !allocator.is_simple_deallocator() {
                if native_traces {
                    buf.delta(&mut last.native_frame_id, native_frame_id as u64);
                }
                buf.varint(size);
            }
        })
    }

    fn write_thread_name(&mut self, tid: u64, name: &[u8]) -> io::Result<()> {
        let last = &mut self.last;
        self.sink
            .write_with::<SMALL_RECORD>(|buf| context_switch(last, buf, tid))?;
        self.scratch.push(StreamToken::ThreadRecord.byte());
        put_cstr(&mut self.scratch, name);
        self.flush_scratch()
    }

    fn write_mappings(&mut self, images: &[Image]) -> io::Result<()> {
        encode_mappings(&mut self.scratch, images);
        self.flush_scratch()
    }

    fn write_object_record(
        &mut self,
        tid: u64,
        address: u64,
        created: bool,
        native_frame_id: u32,
    ) -> io::Result<()> {
        let native_traces = self.header.native_traces;
        let (last, cache) = (&mut self.last, &mut self.cache);
        self.sink.write_with::<SMALL_RECORD>(|buf| {
            context_switch(last, buf, tid);
            let slot = cache.lookup_or_insert(address);
            buf.byte(
                StreamToken::ObjectRecord.byte()
                    | (slot.unwrap_or(CACHE_MISS) << 1)
                    | created as u8,
            );
            if slot.is_none() {
                buf.delta(&mut last.data_pointer, address >> 3);
            }
            if native_traces && created {
                buf.delta(&mut last.native_frame_id, native_frame_id as u64);
            }
        })
    }

    fn note_lost_records(&mut self, count: u64) {
        self.lost_records = count;
    }

    fn finish(&mut self, end_time_ms: u64) -> io::Result<()> {
        let mut end = vec![StreamToken::Trailer.byte()];
        lost_records::append(&mut end, self.lost_records);
        self.sink.write_all(&end)?;
        self.header.stats.end_time_ms = end_time_ms as i64;
        self.sink.rewrite_header(&self.header.encode())?;
        self.sink.finish()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sink.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::MemorySink;
    use crate::{CaptureReader, Record};

    #[test]
    fn long_frame_pops_span_several_small_records() {
        let mut w = StreamingWriter::new(MemorySink::default(), Header::default()).unwrap();
        w.write_frame_pop(7, 1000).unwrap();
        w.finish(0).unwrap();
        let mut reader = CaptureReader::from_bytes(w.into_sink().bytes).unwrap();
        let mut popped = 0;
        let mut records = Vec::new();
        while let Some(record) = reader.next_record().unwrap() {
            if let Record::FramePop { count } = record {
                popped += count;
            }
            records.push(format!("{record:?}"));
        }
        assert_eq!(popped, 1000);
        // One context switch, 62 pops of 16 and one of 8, the trailer.
        assert_eq!(records.len(), 1 + 63 + 1);
        assert_eq!(records[0], "ContextSwitch { tid: 7 }");
        assert!(!reader.is_truncated());
    }
}
