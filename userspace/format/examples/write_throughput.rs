//! Times the tracker's hot path: ALLOCATION records written by the
//! [`StreamingWriter`] into the mmap sink. The records (addresses, sizes,
//! allocators, threads) are those of a real capture, replayed `ROUNDS` times
//! (default 5) into a fresh file; prints one JSON line:
//! `{"records": N, "seconds": S, "ns_per_record": T}`.
//!
//! usage: write_throughput CAPTURE [ROUNDS] [--native]

use std::time::Instant;

use memray_format::{
    Allocator, CaptureReader, CaptureWriter, Event, Header, MmapFileSink, Replay, StreamingWriter,
};

struct Allocation {
    tid: u64,
    address: u64,
    size: u64,
    allocator: Allocator,
    native_frame_id: u32,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let native = args.iter().any(|a| a == "--native");
    let positional: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let Some(path) = positional.first() else {
        eprintln!("usage: write_throughput CAPTURE [ROUNDS] [--native]");
        std::process::exit(2);
    };
    let rounds: usize = positional
        .get(1)
        .map_or(Ok(5), |r| r.parse())
        .unwrap_or_else(|e| fail(&format!("ROUNDS: {e}")));
    let allocations = load(path).unwrap_or_else(|e| fail(&format!("{path}: {e}")));

    let dir = std::env::temp_dir().join(format!("write_throughput-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| fail(&e.to_string()));
    let output = dir.join("out.bin");
    let sink = MmapFileSink::create(&output, true).unwrap_or_else(|e| fail(&e.to_string()));
    let header = Header {
        native_traces: native,
        ..Header::default()
    };
    let mut writer = StreamingWriter::new(sink, header).unwrap_or_else(|e| fail(&e.to_string()));

    let started = Instant::now();
    for _ in 0..rounds {
        for a in &allocations {
            writer
                .write_allocation(a.tid, a.address, a.size, a.allocator, a.native_frame_id)
                .unwrap_or_else(|e| fail(&e.to_string()));
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    writer.finish(0).unwrap_or_else(|e| fail(&e.to_string()));
    drop(writer);
    let _ = std::fs::remove_dir_all(&dir);

    let records = allocations.len() * rounds;
    println!(
        "{{\"records\": {records}, \"seconds\": {seconds:.6}, \"ns_per_record\": {:.2}}}",
        seconds * 1e9 / records as f64
    );
}

fn load(path: &str) -> Result<Vec<Allocation>, memray_format::FormatError> {
    let mut replay = Replay::new(CaptureReader::open(path)?);
    let mut out = Vec::new();
    while let Some(event) = replay.next_event()? {
        if let Event::Allocation(a) = event {
            out.push(Allocation {
                tid: a.tid,
                address: a.address,
                size: a.size,
                allocator: a.allocator,
                // Fake but realistic native ids: a few hundred distinct stacks.
                native_frame_id: (a.record_index % 397) as u32,
            });
        }
    }
    Ok(out)
}

fn fail(message: &str) -> ! {
    eprintln!("write_throughput: {message}");
    std::process::exit(1);
}
