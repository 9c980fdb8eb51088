//! Feeds the records of a v12/v13 ALL_ALLOCATIONS capture to a
//! [`CaptureWriter`] as the tracker made the calls: re-encoding a capture,
//! or aggregating one after the fact.

use crate::error::FormatError;
use crate::reader::CaptureReader;
use crate::record::Record;
use crate::writer::{CaptureWriter, Image, Segment};

/// Writes every record of `reader` (up to the trailer) through `writer`;
/// the caller finishes the writer. Other grammars' records are refused.
pub fn rewrite(
    reader: &mut CaptureReader,
    writer: &mut dyn CaptureWriter,
) -> Result<(), FormatError> {
    let mut tid = 0;
    // A MEMORY_MAP_START and its SEGMENT_HEADERs and SEGMENTs are one call.
    let mut images: Option<Vec<Image>> = None;
    while let Some(record) = reader.next_record()? {
        if !matches!(
            record,
            Record::SegmentHeader { .. } | Record::Segment { .. }
        ) {
            if let Some(done) = images.take() {
                writer.write_mappings(&done).map_err(FormatError::Write)?;
            }
        }
        let written = match record {
            Record::Allocation(a) => writer.write_allocation(
                tid,
                a.address,
                a.size,
                a.allocator,
                a.native_frame_id as u32,
            ),
            Record::FramePush {
                code_object_id,
                instruction_offset,
                is_entry_frame,
            } => writer.write_frame_push(tid, code_object_id, instruction_offset, is_entry_frame),
            Record::FramePop { count } => writer.write_frame_pop(tid, count),
            Record::ObjectRecord {
                address,
                created,
                native_frame_id,
            } => writer.write_object_record(tid, address, created, native_frame_id as u32),
            Record::MemoryRecord { time_ms, rss } => writer.write_memory_record(time_ms, rss),
            Record::NativeTraceIndex { ip, parent } => {
                writer.write_native_trace_index(ip, parent as u32)
            }
            Record::MemoryMapStart => {
                images = Some(Vec::new());
                Ok(())
            }
            Record::SegmentHeader {
                filename,
                load_address,
                ..
            } => {
                let image = Image {
                    filename: String::from_utf8_lossy(filename).into_owned(),
                    load_address,
                    segments: Vec::new(),
                };
                images
                    .as_mut()
                    .ok_or(FormatError::Inconsistent(
                        "SEGMENT_HEADER outside a memory map",
                    ))?
                    .push(image);
                Ok(())
            }
            Record::Segment { vaddr, memsz } => {
                images
                    .as_mut()
                    .and_then(|images| images.last_mut())
                    .ok_or(FormatError::Inconsistent("SEGMENT outside a memory map"))?
                    .segments
                    .push(Segment { vaddr, memsz });
                Ok(())
            }
            Record::ThreadRecord { name } => writer.write_thread_name(tid, name),
            Record::ContextSwitch { tid: next } => {
                tid = next;
                Ok(())
            }
            Record::CodeObject {
                code_object_id,
                function_name,
                filename,
                firstlineno,
                linetable,
            } => writer.write_code_object(
                code_object_id,
                function_name,
                filename,
                firstlineno,
                linetable,
            ),
            Record::Trailer => break,
            _ => return Err(FormatError::Inconsistent("not a v12/v13 stream record")),
        };
        written.map_err(FormatError::Write)?;
    }
    if let Some(done) = images.take() {
        writer.write_mappings(&done).map_err(FormatError::Write)?;
    }
    Ok(())
}
