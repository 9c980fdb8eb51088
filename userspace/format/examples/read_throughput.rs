//! Reads every record of a capture and prints one JSON line:
//! `{"records": N, "seconds": S, "records_per_second": R}`.
//!
//! usage: read_throughput CAPTURE [--replay | --replay-batch]
//! With `--replay`, records also go through the replay layer (stacks,
//! tries, segment generations), as the analysis engine consumes them, one
//! event at a time (`Replay::next_event`); `--replay-batch` takes them in
//! batches (`Replay::next_events`).

use std::time::Instant;

use memray_format::{CaptureReader, Event, FormatError, Record, Replay};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: read_throughput CAPTURE [--replay | --replay-batch]");
        std::process::exit(2);
    };
    let mode = args.next();
    let started = Instant::now();
    let result = match mode.as_deref() {
        None => count_records(&path),
        Some("--replay") => count_events(&path),
        Some("--replay-batch") => count_event_batches(&path),
        Some(other) => {
            eprintln!("unknown option {other}");
            std::process::exit(2);
        }
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

fn count_records(path: &str) -> Result<u64, FormatError> {
    let mut reader = CaptureReader::open(path)?;
    let mut checksum = 0u64;
    while let Some(record) = reader.next_record()? {
        // Touch each record so the loop cannot be optimised away.
        if let Record::Allocation(a) = record {
            checksum = checksum.wrapping_add(a.size);
        }
    }
    std::hint::black_box(checksum);
    Ok(reader.records_read())
}

fn count_events(path: &str) -> Result<u64, FormatError> {
    let mut replay = Replay::open(path)?;
    let mut checksum = 0u64;
    while let Some(event) = replay.next_event()? {
        checksum = checksum.wrapping_add(touch(&event));
    }
    std::hint::black_box(checksum);
    Ok(replay.records_read())
}

fn count_event_batches(path: &str) -> Result<u64, FormatError> {
    let mut replay = Replay::open(path)?;
    let mut checksum = 0u64;
    let mut batch = Vec::new();
    while replay.next_events(&mut batch, 2048)? > 0 {
        checksum = batch.iter().map(touch).fold(checksum, u64::wrapping_add);
        batch.clear();
    }
    std::hint::black_box(checksum);
    Ok(replay.records_read())
}

/// Reads a field of each event, so that no work can be optimised away.
fn touch(event: &Event) -> u64 {
    match event {
        Event::Allocation(a) => a.python_node as u64,
        _ => 0,
    }
}
