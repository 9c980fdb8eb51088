//! Reads every record of a capture and prints one JSON line:
//! `{"records": N, "seconds": S, "records_per_second": R}`.
//!
//! usage: read_throughput CAPTURE [--replay]
//! With `--replay`, records also go through the replay layer (stacks,
//! tries, segment generations), as the analysis engine consumes them.

use std::time::Instant;

use memray_format::{CaptureReader, Replay};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: read_throughput CAPTURE [--replay]");
        std::process::exit(2);
    };
    let replay = args.next().as_deref() == Some("--replay");
    let started = Instant::now();
    let result = if replay {
        count_events(&path)
    } else {
        count_records(&path)
    };
    let records = result.unwrap_or_else(|e| {
        eprintln!("{path}: {e}");
        std::process::exit(1);
    });
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"records\": {records}, \"seconds\": {seconds:.6}, \"records_per_second\": {:.0}}}",
        records as f64 / seconds
    );
}

fn count_records(path: &str) -> Result<u64, memray_format::FormatError> {
    let mut reader = CaptureReader::open(path)?;
    let mut checksum = 0u64;
    while let Some(record) = reader.next_record()? {
        // Touch each record so the loop cannot be optimised away.
        if let memray_format::Record::Allocation(a) = record {
            checksum = checksum.wrapping_add(a.size);
        }
    }
    std::hint::black_box(checksum);
    Ok(reader.records_read())
}

fn count_events(path: &str) -> Result<u64, memray_format::FormatError> {
    let mut replay = Replay::open(path)?;
    let mut checksum = 0u64;
    while let Some(event) = replay.next_event()? {
        if let memray_format::Event::Allocation(a) = event {
            checksum = checksum.wrapping_add(a.python_node as u64);
        }
    }
    std::hint::black_box(checksum);
    Ok(replay.records_read())
}
