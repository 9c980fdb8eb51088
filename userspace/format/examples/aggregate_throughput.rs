//! Times the `--aggregate` writer. Either replays a streaming capture's
//! records into an [`AggregatingWriter`] (and writes the aggregated bytes to
//! OUT, so two builds can be compared byte for byte), or feeds it N mmaps
//! that all stay live and are then unmapped one by one (`--mmaps N`), the
//! shape that made a range set scanned on every munmap quadratic. Prints one
//! JSON line: `{"records": N, "seconds": S}`.
//!
//! usage: aggregate_throughput (CAPTURE OUT | --mmaps N)

use std::time::Instant;

use memray_format::{
    AggregatingWriter, Allocator, CaptureReader, CaptureWriter, Header, MemorySink, Record,
};

const PAGE: u64 = 4096;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (records, seconds) = match args.as_slice() {
        [flag, n] if flag == "--mmaps" => {
            let n = n.parse().unwrap_or_else(|e| fail(&format!("N: {e}")));
            synthetic(n)
        }
        [capture, out] => {
            let (records, seconds, bytes) =
                replay(capture).unwrap_or_else(|e| fail(&format!("{capture}: {e}")));
            std::fs::write(out, bytes).unwrap_or_else(|e| fail(&format!("{out}: {e}")));
            (records, seconds)
        }
        _ => fail("usage: aggregate_throughput (CAPTURE OUT | --mmaps N)"),
    };
    println!("{{\"records\": {records}, \"seconds\": {seconds:.3}}}");
}

/// N page-sized mappings side by side, then every one unmapped.
fn synthetic(n: u64) -> (u64, f64) {
    let mut writer = AggregatingWriter::new(MemorySink::default(), Header::default());
    let started = Instant::now();
    let base = 0x7f00_0000_0000;
    for i in 0..n {
        let address = base + 2 * i * PAGE;
        writer
            .write_allocation(1, address, PAGE, Allocator::Mmap, 0)
            .unwrap_or_else(|e| fail(&e.to_string()));
    }
    for i in 0..n {
        let address = base + 2 * i * PAGE;
        writer
            .write_allocation(1, address, PAGE, Allocator::Munmap, 0)
            .unwrap_or_else(|e| fail(&e.to_string()));
    }
    writer.finish(0).unwrap_or_else(|e| fail(&e.to_string()));
    (2 * n, started.elapsed().as_secs_f64())
}

/// Every record of a streaming capture, as the tracker would have written it.
fn replay(path: &str) -> Result<(u64, f64, Vec<u8>), Box<dyn std::error::Error>> {
    let mut reader = CaptureReader::open(path)?;
    let header = reader.header().clone();
    let end_time_ms = header.stats.end_time_ms as u64;
    let mut writer = AggregatingWriter::new(MemorySink::default(), header);
    let mut tid = 0;
    let mut records = 0;
    let started = Instant::now();
    while let Some(record) = reader.next_record()? {
        records += 1;
        match record {
            Record::ContextSwitch { tid: t } => tid = t,
            Record::Allocation(a) => writer.write_allocation(
                tid,
                a.address,
                a.size,
                a.allocator,
                a.native_frame_id as u32,
            )?,
            Record::FramePush {
                code_object_id,
                instruction_offset,
                is_entry_frame,
            } => {
                writer.write_frame_push(tid, code_object_id, instruction_offset, is_entry_frame)?
            }
            Record::FramePop { count } => writer.write_frame_pop(tid, count)?,
            Record::MemoryRecord { time_ms, rss } => writer.write_memory_record(time_ms, rss)?,
            Record::NativeTraceIndex { ip, parent } => {
                writer.write_native_trace_index(ip, parent as u32)?
            }
            Record::ThreadRecord { name } => writer.write_thread_name(tid, name)?,
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
            )?,
            Record::ObjectRecord {
                address,
                created,
                native_frame_id,
            } => writer.write_object_record(tid, address, created, native_frame_id as u32)?,
            _ => {}
        }
    }
    writer.finish(end_time_ms)?;
    let seconds = started.elapsed().as_secs_f64();
    Ok((records, seconds, writer.into_sink().bytes))
}

fn fail(message: &str) -> ! {
    eprintln!("aggregate_throughput: {message}");
    std::process::exit(1);
}
