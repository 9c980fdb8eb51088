//! The replay's fast path (hot records applied straight from the bytes)
//! against a model of what was written: a generated capture with threads,
//! deep stacks, frees, munmaps, native frames, mappings and long varints,
//! replayed plain and LZ4-compressed (each through many refills of the
//! reader's sliding buffer), one event at a time and in batches of several
//! sizes.

use std::collections::HashMap;
use std::path::Path;

use memray_format::{
    compress_file, AllocationEvent, Allocator, CaptureWriter, Event, Header, Image, MmapFileSink,
    Replay, Segment, StreamingWriter,
};

const THREADS: [u64; 3] = [0x1111, 0x2222, 0x3333];
const CODE_OBJECTS: u64 = 8;
const ALLOCATORS: [Allocator; 6] = [
    Allocator::Malloc,
    Allocator::Free,
    Allocator::PymallocMalloc,
    Allocator::PymallocFree,
    Allocator::Mmap,
    Allocator::Munmap,
];

/// xorshift64*: a fixed, dependency-free stream of choices.
struct Choices(u64);

impl Choices {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// An allocation as the replay must report it, its Python stack as
/// `(function, filename, lineno)`, leaf first.
#[derive(Debug, PartialEq)]
struct Expected {
    event: AllocationEvent,
    stack: Vec<(String, String, i32)>,
}

fn function(code: u64) -> String {
    format!("function_{code}")
}

fn filename(code: u64) -> String {
    format!("/src/module_{code}.py")
}

fn firstlineno(code: u64) -> i32 {
    code as i32 * 10
}

/// Writes `operations` random records with `writer` and returns the
/// allocations the replay must produce.
fn write_capture(writer: &mut dyn CaptureWriter, operations: usize) -> Vec<Expected> {
    let mut choose = Choices(0x9e37_79b9_7f4a_7c15);
    for code in 1..=CODE_OBJECTS {
        // An empty line table: every frame of the code object is on its first line.
        writer
            .write_code_object(
                code,
                function(code).as_bytes(),
                filename(code).as_bytes(),
                firstlineno(code),
                b"",
            )
            .unwrap();
    }
    let mut stacks: HashMap<u64, Vec<u64>> = HashMap::new();
    let mut native_nodes = 0u32;
    let mut generations = 0u32;
    let mut expected = Vec::new();
    for _ in 0..operations {
        let tid = THREADS[choose.below(3) as usize];
        let stack = stacks.entry(tid).or_default();
        match choose.below(1000) {
            0..=249 => {
                let code = 1 + choose.below(CODE_OBJECTS);
                // A few call sites per function, as a loop produces.
                let offset = 2 * choose.below(4) as i64;
                let is_entry = choose.below(2) == 0;
                writer
                    .write_frame_push(tid, code, offset, is_entry)
                    .unwrap();
                stack.push(code);
            }
            250..=449 => {
                let count = 1 + choose.below(20) as u32;
                writer.write_frame_pop(tid, count).unwrap();
                stack.truncate(stack.len().saturating_sub(count as usize));
            }
            450..=499 => {
                let ip = choose.next();
                let parent = choose.below(native_nodes as u64 + 1) as u32;
                writer.write_native_trace_index(ip, parent).unwrap();
                native_nodes += 1;
            }
            500..=504 => {
                writer
                    .write_memory_record(1_000 + choose.below(1 << 20), choose.next() >> 20)
                    .unwrap();
            }
            505 => {
                writer
                    .write_mappings(&[Image {
                        filename: format!("/lib/lib{generations}.so"),
                        load_address: choose.next(),
                        segments: vec![Segment {
                            vaddr: 0x1000,
                            memsz: 0x2000,
                        }],
                    }])
                    .unwrap();
                generations += 1;
            }
            _ => {
                let allocator = ALLOCATORS[choose.below(ALLOCATORS.len() as u64) as usize];
                // Near and far addresses: 1-byte to 10-byte deltas, and cache hits.
                let address = match choose.below(3) {
                    0 => 0x7f00_0000_0000 + 16 * choose.below(64),
                    1 => choose.next() & !7,
                    _ => 0x1000 + 8 * choose.below(1 << 20),
                };
                let size = if choose.below(10) == 0 {
                    choose.next() >> 1
                } else {
                    choose.below(4096)
                };
                let native = choose.below(native_nodes as u64 + 1) as u32;
                writer
                    .write_allocation(tid, address, size, allocator, native)
                    .unwrap();
                expected.push(expect(
                    allocator,
                    tid,
                    address,
                    size,
                    native,
                    stack,
                    generations,
                ));
            }
        }
    }
    for (index, expectation) in expected.iter_mut().enumerate() {
        expectation.event.record_index = index as u64;
    }
    writer.finish(2_000).unwrap();
    expected
}

/// memray's rules: frees carry neither size nor native frame; deallocations
/// have no stack and segment generation 0.
fn expect(
    allocator: Allocator,
    tid: u64,
    address: u64,
    size: u64,
    native: u32,
    stack: &[u64],
    generations: u32,
) -> Expected {
    let simple_free = allocator.is_simple_deallocator();
    let deallocation = allocator.is_deallocator();
    Expected {
        event: AllocationEvent {
            tid,
            address,
            size: if simple_free { 0 } else { size },
            allocator,
            python_node: 0, // checked through `stack`
            native_frame_id: if simple_free { 0 } else { native as u64 },
            native_segment_generation: if deallocation { 0 } else { generations },
            record_index: 0,
            n_allocations: 1,
        },
        stack: if deallocation {
            Vec::new()
        } else {
            stack
                .iter()
                .rev()
                .map(|&code| (function(code), filename(code), firstlineno(code)))
                .collect()
        },
    }
}

/// The allocations of a replay taken `batch` events at a time (0: one by one
/// through `next_event`), in the form of [`Expected`].
fn replayed(path: &Path, batch: usize) -> (Vec<Expected>, u64) {
    let mut replay = Replay::open(path).unwrap();
    let mut events = Vec::new();
    if batch == 0 {
        while let Some(event) = replay.next_event().unwrap() {
            events.push(event);
        }
    } else {
        loop {
            let before = events.len();
            let added = replay.next_events(&mut events, batch).unwrap();
            assert_eq!(events.len() - before, added);
            assert!(added <= batch);
            if added == 0 {
                break;
            }
        }
    }
    assert!(!replay.is_truncated());
    let allocations = events
        .into_iter()
        .filter_map(|event| match event {
            Event::Allocation(a) => Some(a),
            _ => None,
        })
        .map(|event| Expected {
            stack: replay
                .python_stack(event.python_node, event.tid)
                .into_iter()
                .map(|f| (f.function.to_string(), f.filename.to_string(), f.lineno))
                .collect(),
            event: AllocationEvent {
                python_node: 0,
                ..event
            },
        })
        .collect();
    (allocations, replay.records_read())
}

#[test]
fn fast_replay_yields_every_allocation_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("generated.bin");
    let header = Header {
        native_traces: true,
        main_tid: 1,
        ..Header::default()
    };
    let sink = MmapFileSink::create(&plain, true).unwrap();
    let mut writer = StreamingWriter::new(sink, header).unwrap();
    let expected = write_capture(&mut writer, 1_000_000);
    drop(writer);
    let compressed = dir.path().join("generated-lz4.bin");
    std::fs::copy(&plain, &compressed).unwrap();
    compress_file(&compressed).unwrap();
    assert!(
        std::fs::metadata(&plain).unwrap().len() > 9 << 20,
        "the capture spans many refills of the reader's 256 KiB buffer"
    );

    let mut records_read = Vec::new();
    for path in [&plain, &compressed] {
        for batch in [0, 1, 7, 2048] {
            let (allocations, records) = replayed(path, batch);
            let name = path.file_name().unwrap().to_string_lossy();
            assert_eq!(allocations.len(), expected.len(), "{name}, batch {batch}");
            for (got, want) in allocations.iter().zip(&expected) {
                assert_eq!(got, want, "{name}, batch {batch}");
            }
            records_read.push(records);
        }
    }
    assert!(records_read.iter().all(|&n| n == records_read[0]));
}
