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
    rewrite, AggregatingWriter, Allocator, CaptureReader, CaptureWriter, FormatError, Header,
    MemorySink,
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
fn replay(path: &str) -> Result<(u64, f64, Vec<u8>), FormatError> {
    let mut reader = CaptureReader::open(path)?;
    let header = reader.header().clone();
    let end_time_ms = header.stats.end_time_ms as u64;
    let mut writer = AggregatingWriter::new(MemorySink::default(), header);
    let started = Instant::now();
    rewrite(&mut reader, &mut writer)?;
    writer.finish(end_time_ms).map_err(FormatError::Write)?;
    let seconds = started.elapsed().as_secs_f64();
    Ok((reader.records_read(), seconds, writer.into_sink().bytes))
}

fn fail(message: &str) -> ! {
    eprintln!("aggregate_throughput: {message}");
    std::process::exit(1);
}
