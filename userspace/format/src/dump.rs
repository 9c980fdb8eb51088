//! memray's `memray parse` dump (its `dumpAllRecords`), line
//! for line, quirks included (docs/memray-format.md §10), in the dialect of the
//! memray release that wrote the file:
//!
//! * v13 (1.20) and v12 (1.19) print the same record lines; the v12 HEADER
//!   line stops after `track_object_lifetimes`.
//! * v11 (1.11-1.18) has no `python_version` nor anything after
//!   `trace_python_allocators` in its HEADER line, and its own record lines:
//!   `ALLOCATION` without `native_frame_id`, `ALLOCATION_WITH_NATIVE`,
//!   `FRAME_ID`, `FRAME_PUSH frame_id=N`, and `MEMORY_RECORD` with the RSS
//!   in hex.
//!
//! A capture that ends in the middle of a record (a killed process, a cut
//! file) ends the dump as memray's does: with that record's name and a
//! space, and no newline, since memray prints the name before parsing.

use std::io::{self, Write};

use crate::header::{FileFormat, Header};
use crate::reader::{CaptureReader, Damage};
use crate::record::{LegacyFrame, Record};
use crate::token::{AggregatedToken, LegacyToken, StreamToken};

/// How a dump ended.
#[derive(Debug)]
pub enum DumpEnd {
    /// A trailer was read.
    Complete,
    /// The data ended without a trailer (killed process or cut-off file).
    Truncated,
    /// A record could not be decoded: memray prints `UNKNOWN RECORD TYPE`
    /// and stops, and so do we.
    Damaged(Damage),
}

/// Writes the dump of `reader` to `out`; a read that fails (an I/O error,
/// not damaged data) is an `Err`.
pub fn dump(reader: &mut CaptureReader, out: &mut impl Write) -> io::Result<DumpEnd> {
    let header = reader.header().clone();
    write_header(&header, out)?;
    let dialect = Dialect::of(&header);
    loop {
        match reader.next_record() {
            Ok(Some(record)) => write_record(&record, dialect, out)?,
            Ok(None) => break,
            // The file, not its data, failed: an error, not a dump's end.
            Err(error) => return Err(io::Error::other(error)),
        }
    }
    if let Some(damage) = reader.damage() {
        write_unreadable_record(damage.token, dialect, out)?;
        return Ok(DumpEnd::Damaged(damage));
    }
    if !reader.is_truncated() {
        return Ok(DumpEnd::Complete);
    }
    if let Some(token) = reader.cut_off_token() {
        write_unreadable_record(token, dialect, out)?;
    }
    Ok(DumpEnd::Truncated)
}

/// Which memray's dump to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Dialect {
    legacy: bool,
    aggregated: bool,
}

impl Dialect {
    fn of(header: &Header) -> Dialect {
        Dialect {
            legacy: header.version < 12,
            aggregated: header.file_format == FileFormat::AggregatedAllocations,
        }
    }

    /// The name memray prints (before parsing the payload) for `token`;
    /// `None` for tokens it does not know.
    fn record_name(self, token: u8) -> Option<&'static str> {
        if self.aggregated {
            return Some(match AggregatedToken::of(token)? {
                AggregatedToken::MemorySnapshot => "MEMORY_SNAPSHOT",
                AggregatedToken::AggregatedAllocation => "AGGREGATED_ALLOCATION",
                AggregatedToken::PythonTraceIndex => "PYTHON_TRACE_INDEX",
                AggregatedToken::PythonFrameIndex => "PYTHON_FRAME_INDEX",
                AggregatedToken::NativeTraceIndex => "NATIVE_TRACE_INDEX",
                AggregatedToken::SegmentHeader => "SEGMENT_HEADER",
                AggregatedToken::Segment => "SEGMENT",
                AggregatedToken::ThreadRecord => "THREAD_RECORD",
                AggregatedToken::ContextSwitch => "CONTEXT_SWITCH",
                AggregatedToken::SurvivingObject if !self.legacy => "SURVIVING_OBJECT",
                AggregatedToken::CodeObject if !self.legacy => "CODE_OBJECT",
                _ => return None,
            });
        }
        if self.legacy {
            return Some(match LegacyToken::of(token)? {
                LegacyToken::Allocation => "ALLOCATION",
                LegacyToken::AllocationWithNative => "ALLOCATION_WITH_NATIVE",
                LegacyToken::FrameIndex => "FRAME_ID",
                LegacyToken::FramePush => "FRAME_PUSH",
                LegacyToken::NativeTraceIndex => "NATIVE_FRAME_ID",
                LegacyToken::SegmentHeader => "SEGMENT_HEADER",
                LegacyToken::Segment => "SEGMENT",
                LegacyToken::ThreadRecord => "THREAD",
                LegacyToken::MemoryRecord => "MEMORY_RECORD",
                LegacyToken::ContextSwitch => "CONTEXT_SWITCH",
                LegacyToken::Other | LegacyToken::MemoryMapStart | LegacyToken::FramePop => {
                    return None
                }
            });
        }
        Some(match StreamToken::of(token)? {
            StreamToken::Allocation => "ALLOCATION",
            StreamToken::FramePush => "FRAME_PUSH",
            StreamToken::ObjectRecord => "OBJECT_RECORD",
            StreamToken::MemoryRecord => "MEMORY_RECORD",
            StreamToken::NativeTraceIndex => "NATIVE_FRAME_ID",
            StreamToken::SegmentHeader => "SEGMENT_HEADER",
            StreamToken::Segment => "SEGMENT",
            StreamToken::ThreadRecord => "THREAD",
            StreamToken::ContextSwitch => "CONTEXT_SWITCH",
            StreamToken::CodeObject => "CODE_OBJECT",
            StreamToken::Trailer | StreamToken::MemoryMapStart | StreamToken::FramePop => {
                return None
            }
        })
    }
}

/// What memray prints for a record it could not read: the record's name (its
/// payload was cut off or bad), or that the token is unknown.
fn write_unreadable_record(token: u8, dialect: Dialect, out: &mut impl Write) -> io::Result<()> {
    if let Some(name) = dialect.record_name(token) {
        return write!(out, "{name} ");
    }
    match (dialect.legacy, dialect.aggregated) {
        (true, false) if LegacyToken::of(token) == Some(LegacyToken::Other) => {
            writeln!(
                out,
                "UNKNOWN OTHER RECORD TYPE {}",
                LegacyToken::flags(token)
            )
        }
        (true, false) => writeln!(out, "UNKNOWN RECORD TYPE {}", LegacyToken::kind_bits(token)),
        _ => writeln!(out, "UNKNOWN RECORD TYPE {token}"),
    }
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

/// One line of the most frequent records, written without `core::fmt`
/// (its machinery was most of a dump's time): the same text as `write!`.
struct Line {
    bytes: [u8; 160],
    len: usize,
}

impl Line {
    #[inline(always)]
    fn new() -> Line {
        Line {
            bytes: [0; 160],
            len: 0,
        }
    }

    #[inline(always)]
    fn text(&mut self, text: &str) -> &mut Line {
        self.bytes[self.len..self.len + text.len()].copy_from_slice(text.as_bytes());
        self.len += text.len();
        self
    }

    #[inline(always)]
    fn decimal(&mut self, value: impl itoa::Integer) -> &mut Line {
        self.text(itoa::Buffer::new().format(value))
    }

    /// As [`Ptr`] prints it.
    #[inline(always)]
    fn pointer(&mut self, value: u64) -> &mut Line {
        if value == 0 {
            return self.text("(nil)");
        }
        let digits = (67 - value.leading_zeros() as usize) / 4;
        self.text("0x");
        for i in 0..digits {
            let nibble = (value >> (4 * (digits - 1 - i))) & 0xf;
            self.bytes[self.len + i] = b"0123456789abcdef"[nibble as usize];
        }
        self.len += digits;
        self
    }

    #[inline(always)]
    fn end(&mut self, out: &mut impl Write) -> io::Result<()> {
        self.text("\n");
        out.write_all(&self.bytes[..self.len])
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

/// The HEADER line: each version prints the fields it has.
fn write_header(h: &Header, out: &mut impl Write) -> io::Result<()> {
    write!(out, "HEADER magic=memray version={}", h.version)?;
    if h.version >= 12 {
        write!(out, " python_version={:08x}", h.python_version)?;
    }
    write!(
        out,
        " native_traces={} file_format={} \
         n_allocations={} n_frames={} start_time={} end_time={} pid={} main_tid={} \
         skipped_frames_on_main_tid={} command_line={} python_allocator={} \
         trace_python_allocators={}",
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
    )?;
    if h.version >= 12 {
        write!(out, " track_object_lifetimes={}", h.track_object_lifetimes)?;
    }
    if h.version >= 13 {
        write!(
            out,
            " libdest={} site_packages=[{}] sys.path=[{}]",
            h.libdest,
            h.site_packages.join(", "),
            h.sys_path.join(", "),
        )?;
    }
    writeln!(out)
}

/// A v11 frame with its location; `frame_id` as that record prints it.
fn legacy_frame(
    out: &mut impl Write,
    label: &str,
    frame_id: impl std::fmt::Display,
    frame: LegacyFrame<'_>,
) -> io::Result<()> {
    writeln!(
        out,
        "{label} frame_id={frame_id} function_name={} filename={} lineno={} is_entry_frame={}",
        Raw(frame.function_name),
        Raw(frame.filename),
        frame.lineno,
        frame.is_entry_frame as u8
    )
}

fn write_record(record: &Record<'_>, dialect: Dialect, out: &mut impl Write) -> io::Result<()> {
    let aggregated = dialect.aggregated;
    match *record {
        Record::Allocation(a) if dialect.legacy => writeln!(
            out,
            "ALLOCATION address={} size={} allocator={}",
            Ptr(a.address),
            a.size as i64,
            a.allocator.name(),
        ),
        Record::Allocation(a) | Record::LegacyNativeAllocation(a) => Line::new()
            .text(match record {
                Record::LegacyNativeAllocation(_) => "ALLOCATION_WITH_NATIVE",
                _ => "ALLOCATION",
            })
            .text(" address=")
            .pointer(a.address)
            .text(" size=")
            .decimal(a.size as i64)
            .text(" allocator=")
            .text(a.allocator.name())
            .text(" native_frame_id=")
            .decimal(a.native_frame_id as i64)
            .end(out),
        Record::FramePush {
            code_object_id,
            instruction_offset,
            is_entry_frame,
        } => Line::new()
            .text("FRAME_PUSH code_object_id=")
            .decimal(code_object_id as i64)
            .text(" instruction_offset=")
            .decimal(instruction_offset as i32)
            .text(" is_entry_frame=")
            .decimal(is_entry_frame as u8)
            .end(out),
        Record::FramePop { count } => Line::new().text("FRAME_POP count=").decimal(count).end(out),
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
        // v11 printed the RSS with PRIxPTR.
        Record::MemoryRecord { time_ms, rss } if dialect.legacy => {
            writeln!(out, "MEMORY_RECORD time={time_ms} memory={rss:x}")
        }
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
        // memray 1.18 prints the stream's frame ids signed, the aggregated ones not.
        Record::LegacyFrameIndex(frame) => {
            legacy_frame(out, "FRAME_ID", frame.frame_id as i64, frame)
        }
        Record::LegacyFramePush { frame_id } => {
            writeln!(out, "FRAME_PUSH frame_id={}", frame_id as i64)
        }
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
        Record::LegacyPythonFrameIndex(frame) => {
            legacy_frame(out, "PYTHON_FRAME_INDEX", frame.frame_id, frame)
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_prints_numbers_as_core_fmt_does() {
        for value in [0, 1, 0xf, 0x10, 0x7f0f_cb56_48f0, u64::MAX >> 1, u64::MAX] {
            let mut out = Vec::new();
            Line::new()
                .pointer(value)
                .text(" ")
                .decimal(value as i64)
                .end(&mut out)
                .unwrap();
            let expected = format!("{} {}\n", Ptr(value), value as i64);
            assert_eq!(String::from_utf8(out).unwrap(), expected);
        }
    }
}
