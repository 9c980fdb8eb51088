//! memray's `memray parse` dump (`record_reader.cpp::dumpAllRecords*`), line
//! for line, quirks included (memray-format.md §10).
//!
//! Legacy files print the same lines; v11-only records, which memray 1.20
//! cannot read, print as `FRAME_INDEX frame_id=N function_name=F filename=P
//! lineno=N is_entry_frame=B` and `FRAME_PUSH frame_id=N` (and
//! `PYTHON_FRAME_INDEX frame_id=N function_name=F filename=P lineno=N
//! is_entry_frame=B` in aggregated files); header fields a version lacks
//! print as their defaults (`python_version=00000000`, empty lists).

use std::io::{self, Write};

use crate::error::FormatError;
use crate::header::{FileFormat, Header};
use crate::reader::CaptureReader;
use crate::record::Record;

/// How a dump ended.
#[derive(Debug)]
pub enum DumpEnd {
    /// A trailer was read.
    Complete,
    /// The data ended without a trailer (killed process or cut-off file).
    Truncated,
    /// A record could not be decoded: memray prints `UNKNOWN RECORD TYPE`
    /// and stops, and so do we.
    Corrupt(FormatError),
}

/// Writes the dump of `reader` to `out`.
pub fn dump(reader: &mut CaptureReader, out: &mut impl Write) -> io::Result<DumpEnd> {
    let header = reader.header().clone();
    write_header(&header, out)?;
    let aggregated = header.file_format == FileFormat::AggregatedAllocations;
    loop {
        match reader.next_record() {
            Ok(Some(record)) => write_record(&record, aggregated, out)?,
            Ok(None) => break,
            Err(error) => {
                if let FormatError::CorruptRecord { token, .. } = error {
                    writeln!(out, "UNKNOWN RECORD TYPE {token}")?;
                }
                return Ok(DumpEnd::Corrupt(error));
            }
        }
    }
    Ok(if reader.is_truncated() {
        DumpEnd::Truncated
    } else {
        DumpEnd::Complete
    })
}

/// C's `%p` with glibc: `(nil)` for 0.
struct Ptr(u64);

impl std::fmt::Display for Ptr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0 == 0 {
            f.write_str("(nil)")
        } else {
            write!(f, "{:#x}", self.0)
        }
    }
}

/// Raw bytes, as `%s` prints them.
struct Raw<'a>(&'a [u8]);

impl std::fmt::Display for Raw<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.0))
    }
}

fn header_allocator_name(id: u8) -> &'static str {
    // memray prints "pymalloc" for malloc (3): reproduced on purpose.
    match id {
        1 | 3 => "pymalloc",
        2 => "pymalloc debug",
        4 => "other",
        5 => "mimalloc",
        6 => "mimalloc debug",
        _ => "",
    }
}

fn write_header(h: &Header, out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "HEADER magic=memray version={} python_version={:08x} native_traces={} file_format={} \
         n_allocations={} n_frames={} start_time={} end_time={} pid={} main_tid={} \
         skipped_frames_on_main_tid={} command_line={} python_allocator={} \
         trace_python_allocators={} track_object_lifetimes={} libdest={} site_packages=[{}] \
         sys.path=[{}]",
        h.version,
        h.python_version,
        h.native_traces,
        h.file_format.name(),
        h.stats.n_allocations as i64,
        h.stats.n_frames as i64,
        h.stats.start_time_ms,
        h.stats.end_time_ms,
        h.pid,
        h.main_tid,
        h.skipped_frames_on_main_tid as i64,
        h.command_line,
        header_allocator_name(h.python_allocator),
        h.trace_python_allocators,
        h.track_object_lifetimes,
        h.libdest,
        h.site_packages.join(", "),
        h.sys_path.join(", "),
    )
}

fn write_record(record: &Record<'_>, aggregated: bool, out: &mut impl Write) -> io::Result<()> {
    match *record {
        Record::Allocation(a) => writeln!(
            out,
            "ALLOCATION address={} size={} allocator={} native_frame_id={}",
            Ptr(a.address),
            a.size as i64,
            a.allocator.name(),
            a.native_frame_id as i64
        ),
        Record::FramePush {
            code_object_id,
            instruction_offset,
            is_entry_frame,
        } => writeln!(
            out,
            "FRAME_PUSH code_object_id={} instruction_offset={} is_entry_frame={}",
            code_object_id as i64, instruction_offset as i32, is_entry_frame as u8
        ),
        Record::FramePop { count } => writeln!(out, "FRAME_POP count={count}"),
        Record::ObjectRecord {
            address,
            native_frame_id,
            ..
        } => writeln!(
            out,
            "OBJECT_RECORD address={} native_frame_id={}",
            Ptr(address),
            native_frame_id as i64
        ),
        Record::MemoryRecord { time_ms, rss } => {
            writeln!(out, "MEMORY_RECORD time={time_ms} memory={}", rss as i64)
        }
        Record::NativeTraceIndex { ip, parent } => {
            let name = if aggregated {
                "NATIVE_TRACE_INDEX"
            } else {
                "NATIVE_FRAME_ID"
            };
            writeln!(out, "{name} ip={} index={parent}", Ptr(ip))
        }
        Record::MemoryMapStart => writeln!(out, "MEMORY_MAP_START"),
        Record::SegmentHeader {
            filename,
            num_segments,
            load_address,
        } => writeln!(
            out,
            "SEGMENT_HEADER filename={} num_segments={} addr={}",
            Raw(filename),
            num_segments as i64,
            Ptr(load_address)
        ),
        Record::Segment { vaddr, memsz } => writeln!(out, "SEGMENT {} {memsz:x}", Ptr(vaddr)),
        Record::ThreadRecord { name } => {
            let label = if aggregated {
                "THREAD_RECORD"
            } else {
                "THREAD"
            };
            writeln!(out, "{label} {}", Raw(name))
        }
        Record::ContextSwitch { tid } => writeln!(out, "CONTEXT_SWITCH tid={tid}"),
        Record::CodeObject {
            code_object_id,
            function_name,
            filename,
            firstlineno,
            linetable,
        } => writeln!(
            out,
            "CODE_OBJECT code_id={} function_name={} filename={} firstlineno={firstlineno} \
             linetable_size={}",
            code_object_id as i64,
            Raw(function_name),
            Raw(filename),
            linetable.len()
        ),
        Record::Trailer if aggregated => writeln!(out, "AGGREGATED_TRAILER"),
        Record::Trailer => writeln!(out, "TRAILER"),
        Record::LegacyFrameIndex {
            frame_id,
            function_name,
            filename,
            lineno,
            is_entry_frame,
        } => writeln!(
            out,
            "FRAME_INDEX frame_id={frame_id} function_name={} filename={} lineno={lineno} \
             is_entry_frame={}",
            Raw(function_name),
            Raw(filename),
            is_entry_frame as u8
        ),
        Record::LegacyFramePush { frame_id } => writeln!(out, "FRAME_PUSH frame_id={frame_id}"),
        Record::MemorySnapshot { time_ms, rss, heap } => writeln!(
            out,
            "MEMORY_SNAPSHOT time={time_ms} rss={} heap={}",
            rss as i64, heap as i64
        ),
        Record::AggregatedAllocation(a) => writeln!(
            out,
            "AGGREGATED_ALLOCATION tid={} allocator={} native_frame_id={} python_frame_id={} \
             native_segment_generation={} n_allocations_in_high_water_mark={} \
             n_allocations_leaked={} bytes_in_high_water_mark={} bytes_leaked={}",
            a.tid,
            a.allocator.name(),
            a.native_frame_id as i64,
            a.python_frame_id as i64,
            a.native_segment_generation as i64,
            a.n_allocations_in_high_water_mark as i64,
            a.n_allocations_leaked as i64,
            a.bytes_in_high_water_mark as i64,
            a.bytes_leaked as i64
        ),
        Record::PythonFrameIndex {
            frame_id,
            code_object_id,
            instruction_offset,
            is_entry_frame,
        } => writeln!(
            out,
            "PYTHON_FRAME_INDEX frame_id={} code_object_id={} instruction_offset={} \
             is_entry_frame={}",
            frame_id as i64, code_object_id as i64, instruction_offset as i32, is_entry_frame as u8
        ),
        Record::LegacyPythonFrameIndex {
            frame_id,
            function_name,
            filename,
            lineno,
            is_entry_frame,
        } => writeln!(
            out,
            "PYTHON_FRAME_INDEX frame_id={frame_id} function_name={} filename={} \
             lineno={lineno} is_entry_frame={}",
            Raw(function_name),
            Raw(filename),
            is_entry_frame as u8
        ),
        Record::PythonTraceIndex {
            frame_id,
            parent_index,
        } => writeln!(
            out,
            "PYTHON_TRACE_INDEX frame_id={} parent_index={}",
            frame_id as i64, parent_index as i64
        ),
        Record::SurvivingObject {
            address,
            native_frame_id,
        } => writeln!(
            out,
            "SURVIVING_OBJECT address=0x{} native_frame_id={native_frame_id}",
            Ptr(address)
        ),
    }
}
