//! The AGGREGATED_ALLOCATIONS writer (memray's `AggregatingRecordWriter`):
//! everything is kept in memory, aggregated per location by a
//! high-water-mark aggregator, and written at `finish`.
//!
//! memray iterates `unordered_map`s when writing, so the order of records
//! within a run of one type is unspecified there; we write them in
//! first-seen order (readers must not depend on it, memray's own golden
//! test sorts each run).

use std::collections::{BTreeMap, HashMap};
use std::io;

use crate::code::CodeObject;
use crate::encoding::{put_cstr, put_delta, put_svarint, put_varint};
use crate::frame_tree::{FrameTree, Registry};
use crate::header::{FileFormat, Header};
use crate::lost_records;
use crate::record::AggregatedAllocation;
use crate::sink::Sink;
use crate::token::AggregatedToken;
use crate::writer::{encode_code_object, encode_mappings, normalized_header, CaptureWriter, Image};
use memray_heap::{Allocator, HighWaterMarkAggregator};

/// Writes AGGREGATED_ALLOCATIONS captures. Nothing reaches the sink before
/// [`CaptureWriter::finish`] (as in memray: a killed process leaves no data).
pub struct AggregatingWriter<S: Sink> {
    sink: S,
    header: Header,
    memory_snapshots: Vec<[u64; 3]>,
    thread_names: Vec<(u64, Vec<u8>)>,
    mappings_by_generation: Vec<Vec<Image>>,
    code_objects: Vec<(u64, CodeObject<Vec<u8>>)>,
    code_object_ids: HashMap<u64, usize>,
    native_frames: Vec<(u64, u64)>,
    frames: Registry<(u64, i64, bool)>,
    tree: FrameTree,
    stacks: HashMap<u64, Vec<u32>>,
    surviving_objects: BTreeMap<u64, u64>,
    high_water_mark: HighWaterMarkAggregator<Location>,
    lost_records: u64,
}

impl<S: Sink> AggregatingWriter<S> {
    /// See [`StreamingWriter::new`](crate::StreamingWriter::new) for `header`.
    pub fn new(sink: S, header: Header) -> Self {
        AggregatingWriter {
            sink,
            header: normalized_header(header, FileFormat::AggregatedAllocations),
            memory_snapshots: Vec::new(),
            thread_names: Vec::new(),
            mappings_by_generation: Vec::new(),
            code_objects: Vec::new(),
            code_object_ids: HashMap::new(),
            native_frames: Vec::new(),
            frames: Registry::default(),
            tree: FrameTree::default(),
            stacks: HashMap::new(),
            surviving_objects: BTreeMap::new(),
            high_water_mark: HighWaterMarkAggregator::default(),
            lost_records: 0,
        }
    }

    pub fn sink(&self) -> &S {
        &self.sink
    }

    pub fn into_sink(self) -> S {
        self.sink
    }

    fn encode_body(&self, out: &mut Vec<u8>) {
        for snapshot in &self.memory_snapshots {
            out.push(AggregatedToken::MemorySnapshot.byte());
            for word in snapshot {
                out.extend_from_slice(&word.to_ne_bytes());
            }
        }
        for (tid, name) in &self.thread_names {
            out.push(AggregatedToken::ContextSwitch.byte());
            out.extend_from_slice(&tid.to_ne_bytes());
            out.push(AggregatedToken::ThreadRecord.byte());
            put_cstr(out, name);
        }
        for images in &self.mappings_by_generation {
            encode_mappings(out, images);
        }
        let mut last_firstlineno = 0;
        for (id, code) in &self.code_objects {
            encode_code_object(
                out,
                &mut last_firstlineno,
                *id,
                &code.function,
                &code.filename,
                code.firstlineno,
                &code.linetable,
            );
        }
        let (mut last_ip, mut last_parent) = (0, 0);
        for &(ip, parent) in &self.native_frames {
            out.push(AggregatedToken::NativeTraceIndex.byte());
            put_delta(out, &mut last_ip, ip);
            put_delta(out, &mut last_parent, parent);
        }
        for (frame_id, &(code_object_id, offset, is_entry)) in
            self.frames.values().iter().enumerate()
        {
            out.push(AggregatedToken::PythonFrameIndex.byte());
            put_varint(out, frame_id as u64);
            put_varint(out, code_object_id);
            put_svarint(out, offset);
            out.push(is_entry as u8);
        }
        for node in 1..=self.tree.len() as u32 {
            let (frame_id, parent) = self.tree.node(node).expect("node in range");
            out.push(AggregatedToken::PythonTraceIndex.byte());
            put_varint(out, frame_id);
            put_varint(out, parent as u64);
        }
        for (&address, &native_frame_id) in &self.surviving_objects {
            out.push(AggregatedToken::SurvivingObject.byte());
            put_varint(out, address >> 3);
            if self.header.native_traces {
                put_varint(out, native_frame_id);
            }
        }
        for allocation in aggregated_allocations(&self.high_water_mark) {
            out.push(AggregatedToken::AggregatedAllocation.byte());
            out.extend_from_slice(&allocation.encode());
        }
        out.push(AggregatedToken::AggregatedTrailer.byte());
    }
}

impl<S: Sink> CaptureWriter for AggregatingWriter<S> {
    fn write_memory_record(&mut self, time_ms: u64, rss: u64) -> io::Result<()> {
        let heap = self.high_water_mark.current_heap();
        self.memory_snapshots.push([time_ms, rss, heap]);
        Ok(())
    }

    fn write_code_object(
        &mut self,
        id: u64,
        function: &[u8],
        filename: &[u8],
        firstlineno: i32,
        linetable: &[u8],
    ) -> io::Result<()> {
        if !self.code_object_ids.contains_key(&id) {
            self.code_object_ids.insert(id, self.code_objects.len());
            self.code_objects.push((
                id,
                CodeObject {
                    function: function.to_vec(),
                    filename: filename.to_vec(),
                    firstlineno,
                    linetable: linetable.to_vec(),
                },
            ));
        }
        Ok(())
    }

    fn write_frame_push(
        &mut self,
        tid: u64,
        code_object_id: u64,
        instruction_offset: i64,
        is_entry: bool,
    ) -> io::Result<()> {
        let frame_id = self
            .frames
            .register((code_object_id, instruction_offset, is_entry));
        let stack = self.stacks.entry(tid).or_default();
        let node = self
            .tree
            .trace_index(stack.last().copied().unwrap_or(0), frame_id);
        stack.push(node);
        Ok(())
    }

    fn write_frame_pop(&mut self, tid: u64, count: u32) -> io::Result<()> {
        let stack = self.stacks.entry(tid).or_default();
        stack.truncate(stack.len().saturating_sub(count as usize));
        Ok(())
    }

    fn write_native_trace_index(&mut self, ip: u64, parent: u32) -> io::Result<()> {
        self.native_frames.push((ip, parent as u64));
        Ok(())
    }

    fn write_allocation(
        &mut self,
        tid: u64,
        address: u64,
        size: u64,
        allocator: Allocator,
        native_frame_id: u32,
    ) -> io::Result<()> {
        let python_frame_id = if allocator.is_deallocator() {
            0
        } else {
            self.stacks
                .get(&tid)
                .and_then(|s| s.last().copied())
                .unwrap_or(0)
        };
        let location = Location {
            tid,
            python_frame_id: python_frame_id as u64,
            native_frame_id: native_frame_id as u64,
            native_segment_generation: self.mappings_by_generation.len() as u64,
            allocator,
        };
        self.high_water_mark.add(location, allocator, address, size);
        Ok(())
    }

    fn write_thread_name(&mut self, tid: u64, name: &[u8]) -> io::Result<()> {
        match self.thread_names.iter_mut().find(|(t, _)| *t == tid) {
            Some((_, existing)) => *existing = name.to_vec(),
            None => self.thread_names.push((tid, name.to_vec())),
        }
        Ok(())
    }

    fn write_mappings(&mut self, images: &[Image]) -> io::Result<()> {
        self.mappings_by_generation.push(images.to_vec());
        Ok(())
    }

    fn write_object_record(
        &mut self,
        _tid: u64,
        address: u64,
        created: bool,
        native_frame_id: u32,
    ) -> io::Result<()> {
        if created {
            self.surviving_objects
                .insert(address, native_frame_id as u64);
        } else {
            self.surviving_objects.remove(&address);
        }
        Ok(())
    }

    fn note_lost_records(&mut self, count: u64) {
        self.lost_records = count;
    }

    fn finish(&mut self, end_time_ms: u64) -> io::Result<()> {
        self.header.stats.end_time_ms = end_time_ms as i64;
        let mut out = self.header.encode();
        self.encode_body(&mut out);
        lost_records::append(&mut out, self.lost_records);
        self.sink.write_all(&out)?;
        self.sink.finish()
    }
}

/// Where an allocation was made (memray's `HighWaterMarkLocationKey`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Location {
    tid: u64,
    python_frame_id: u64,
    native_frame_id: u64,
    native_segment_generation: u64,
    allocator: Allocator,
}

/// Per-location high-water-mark and leak contributions; locations with
/// neither are left out.
fn aggregated_allocations(
    aggregator: &HighWaterMarkAggregator<Location>,
) -> impl Iterator<Item = AggregatedAllocation> + '_ {
    aggregator.totals().filter_map(|(location, totals)| {
        let allocation = AggregatedAllocation {
            tid: location.tid,
            allocator: location.allocator,
            native_frame_id: location.native_frame_id,
            python_frame_id: location.python_frame_id,
            native_segment_generation: location.native_segment_generation,
            n_allocations_in_high_water_mark: totals.at_peak.allocations,
            n_allocations_leaked: totals.leaked.allocations,
            bytes_in_high_water_mark: totals.at_peak.bytes,
            bytes_leaked: totals.leaked.bytes,
        };
        let empty = allocation.n_allocations_in_high_water_mark == 0
            && allocation.n_allocations_leaked == 0;
        (!empty).then_some(allocation)
    })
}
