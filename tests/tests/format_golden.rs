//! S18: our v13 writers against memray 1.20's golden outputs
//! (`tests/integration/test_record_writer.py`, memray-format.md §9/§10.1).
//! Each file is checked with our `memray parse` and with memray's.

use std::path::Path;

use memray_format::{
    AggregatingWriter, Allocator, CaptureWriter, Header, Image, MmapFileSink, Segment,
    StreamingWriter,
};
use memray_tests::paths::memray_bin;
use memray_tests::reference::reference_memray;
use memray_tests::run::stdout_of;

fn harness_header(python_version: u32) -> Header {
    Header {
        python_version,
        stats: memray_format::TrackerStats {
            start_time_ms: 1757101101000,
            ..Default::default()
        },
        command_line: "memray test harness".into(),
        pid: 4242,
        ..Header::default()
    }
}

/// Both `memray parse` implementations' output for `path`.
fn parse_both(path: &Path) -> (String, String) {
    let ours = stdout_of(memray_bin(), [Path::new("parse"), path]);
    let theirs = stdout_of(reference_memray().memray, [Path::new("parse"), path]);
    (ours, theirs)
}

fn record_lines(dump: &str) -> Vec<&str> {
    dump.lines().skip(1).collect()
}

/// memray's golden test compares aggregated output after sorting each run of
/// same-type lines.
fn sorted_runs(lines: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut run: Vec<&str> = Vec::new();
    let kind = |l: &str| l.split(' ').next().unwrap_or("").to_string();
    for line in lines {
        if run.first().is_some_and(|first| kind(first) != kind(line)) {
            run.sort();
            out.extend(run.drain(..).map(String::from));
        }
        run.push(line);
    }
    run.sort();
    out.extend(run.drain(..).map(String::from));
    out
}

const BASIC_RECORDS: &str = "\
MEMORY_RECORD time=1757101101880 memory=1024
MEMORY_RECORD time=1757101102880 memory=2048
CONTEXT_SWITCH tid=1
THREAD MainThread
CONTEXT_SWITCH tid=2
THREAD Other Thread
CODE_OBJECT code_id=1 function_name=a filename=a.py firstlineno=1 linetable_size=0
CODE_OBJECT code_id=2 function_name=b filename=b.py firstlineno=11 linetable_size=0
CODE_OBJECT code_id=3 function_name=c filename=c.py firstlineno=21 linetable_size=0
CONTEXT_SWITCH tid=1
FRAME_PUSH code_object_id=1 instruction_offset=12 is_entry_frame=1
FRAME_PUSH code_object_id=2 instruction_offset=34 is_entry_frame=1
FRAME_PUSH code_object_id=3 instruction_offset=56 is_entry_frame=1
FRAME_POP count=1
FRAME_POP count=16
FRAME_POP count=16
FRAME_POP count=1
NATIVE_FRAME_ID ip=0xdeadbeef index=1
NATIVE_FRAME_ID ip=0xfeedcafe index=2
ALLOCATION address=0x1000 size=1024 allocator=malloc native_frame_id=1
ALLOCATION address=0x2000 size=0 allocator=pymalloc_free native_frame_id=0
ALLOCATION address=0x3000 size=4096 allocator=posix_memalign native_frame_id=0
CONTEXT_SWITCH tid=2
ALLOCATION address=0x4000 size=4096 allocator=malloc native_frame_id=2
MEMORY_MAP_START
SEGMENT_HEADER filename=/usr/lib/libc.so.6 num_segments=2 addr=0xf1234567
SEGMENT 0x12345678 1000
SEGMENT 0xf2345678 2000
TRAILER";

fn write_basic_records(w: &mut dyn CaptureWriter) {
    w.write_memory_record(1757101101880, 1024).unwrap();
    w.write_memory_record(1757101102880, 2048).unwrap();
    w.write_thread_name(1, b"MainThread").unwrap();
    w.write_thread_name(2, b"Other Thread").unwrap();
    for (id, name, file, first) in [
        (1, "a", "a.py", 1),
        (2, "b", "b.py", 11),
        (3, "c", "c.py", 21),
    ] {
        w.write_code_object(id, name.as_bytes(), file.as_bytes(), first, b"")
            .unwrap();
    }
    for (code, offset) in [(1, 12), (2, 34), (3, 56)] {
        w.write_frame_push(1, code, offset, true).unwrap();
    }
    for count in [0, 1, 16, 17] {
        w.write_frame_pop(1, count).unwrap();
    }
    w.write_native_trace_index(0xDEADBEEF, 1).unwrap();
    w.write_native_trace_index(0xFEEDCAFE, 2).unwrap();
    w.write_allocation(1, 0x1000, 1024, Allocator::Malloc, 1)
        .unwrap();
    w.write_allocation(1, 0x2000, 2048, Allocator::PymallocFree, 0)
        .unwrap();
    w.write_allocation(1, 0x3000, 4096, Allocator::PosixMemalign, 0)
        .unwrap();
    w.write_allocation(2, 0x4000, 4096, Allocator::Malloc, 2)
        .unwrap();
    w.write_mappings(&[Image {
        filename: "/usr/lib/libc.so.6".into(),
        load_address: 0xF1234567,
        segments: vec![
            Segment {
                vaddr: 0x12345678,
                memsz: 0x1000,
            },
            Segment {
                vaddr: 0xF2345678,
                memsz: 0x2000,
            },
        ],
    }])
    .unwrap();
    w.finish(1757101103000).unwrap();
}

#[test]
fn streaming_writer_matches_test_write_basic_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("basic.bin");
    let header = Header {
        native_traces: true,
        trace_python_allocators: true,
        main_tid: 10,
        skipped_frames_on_main_tid: 15,
        libdest: "/some/path with spaces and a \":\" too".into(),
        site_packages: vec!["/some/path".into(), "/\"another\"/path too".into()],
        sys_path: vec!["/some/path".into(), "/\"another\"/path too".into()],
        ..harness_header(0x030b07f0)
    };
    let mut writer =
        StreamingWriter::new(MmapFileSink::create(&path, false).unwrap(), header).unwrap();
    write_basic_records(&mut writer);
    drop(writer);

    let (ours, theirs) = parse_both(&path);
    let expected_header = "HEADER magic=memray version=13 python_version=030b07f0 native_traces=true \
        file_format=ALL_ALLOCATIONS n_allocations=4 n_frames=0 start_time=1757101101000 \
        end_time=1757101103000 pid=4242 main_tid=10 skipped_frames_on_main_tid=15 \
        command_line=memray test harness python_allocator=pymalloc trace_python_allocators=true \
        track_object_lifetimes=false libdest=/some/path with spaces and a \":\" too \
        site_packages=[/some/path, /\"another\"/path too] sys.path=[/some/path, /\"another\"/path too]";
    assert_eq!(ours.lines().next(), Some(expected_header));
    assert_eq!(
        record_lines(&ours),
        BASIC_RECORDS.lines().collect::<Vec<_>>()
    );
    assert_eq!(ours, theirs, "memray 1.20 reads our file identically");
}

#[test]
fn aggregating_writer_matches_test_write_aggregated_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("aggregated.bin");
    let header = Header {
        main_tid: 1,
        ..harness_header(0x030b07f0)
    };
    let mut w = AggregatingWriter::new(MmapFileSink::create(&path, false).unwrap(), header);
    w.write_memory_record(1757105244685, 10000).unwrap();
    for (id, name, file, first) in [
        (10, "a", "a.py", 1),
        (20, "b", "b.py", 11),
        (30, "c", "c.py", 21),
    ] {
        w.write_code_object(id, name.as_bytes(), file.as_bytes(), first, b"")
            .unwrap();
    }
    w.write_frame_push(1, 1, 12, true).unwrap();
    w.write_frame_push(1, 2, 34, true).unwrap();
    w.write_allocation(1, 0x1000, 1024, Allocator::Malloc, 0)
        .unwrap();
    w.write_frame_push(2, 3, 56, true).unwrap();
    w.write_allocation(2, 0x2000, 2048, Allocator::Malloc, 0)
        .unwrap();
    w.write_memory_record(1757105245685, 20000).unwrap();
    w.finish(1757105246000).unwrap();
    drop(w);

    let expected = "\
MEMORY_SNAPSHOT time=1757105244685 rss=10000 heap=0
MEMORY_SNAPSHOT time=1757105245685 rss=20000 heap=3072
CODE_OBJECT code_id=10 function_name=a filename=a.py firstlineno=1 linetable_size=0
CODE_OBJECT code_id=20 function_name=b filename=b.py firstlineno=11 linetable_size=0
CODE_OBJECT code_id=30 function_name=c filename=c.py firstlineno=21 linetable_size=0
PYTHON_FRAME_INDEX frame_id=0 code_object_id=1 instruction_offset=12 is_entry_frame=1
PYTHON_FRAME_INDEX frame_id=1 code_object_id=2 instruction_offset=34 is_entry_frame=1
PYTHON_FRAME_INDEX frame_id=2 code_object_id=3 instruction_offset=56 is_entry_frame=1
PYTHON_TRACE_INDEX frame_id=0 parent_index=0
PYTHON_TRACE_INDEX frame_id=1 parent_index=1
PYTHON_TRACE_INDEX frame_id=2 parent_index=0
AGGREGATED_ALLOCATION tid=1 allocator=malloc native_frame_id=0 python_frame_id=2 native_segment_generation=0 n_allocations_in_high_water_mark=1 n_allocations_leaked=1 bytes_in_high_water_mark=1024 bytes_leaked=1024
AGGREGATED_ALLOCATION tid=2 allocator=malloc native_frame_id=0 python_frame_id=3 native_segment_generation=0 n_allocations_in_high_water_mark=1 n_allocations_leaked=1 bytes_in_high_water_mark=2048 bytes_leaked=2048
AGGREGATED_TRAILER";
    let (ours, theirs) = parse_both(&path);
    assert!(ours.starts_with(
        "HEADER magic=memray version=13 python_version=030b07f0 native_traces=false \
         file_format=AGGREGATED_ALLOCATIONS n_allocations=0 n_frames=0 start_time=1757101101000 \
         end_time=1757105246000 pid=4242 main_tid=1 skipped_frames_on_main_tid=0 \
         command_line=memray test harness python_allocator=pymalloc \
         trace_python_allocators=false track_object_lifetimes=false libdest= site_packages=[] \
         sys.path=[]\n"
    ));
    let expected: Vec<&str> = expected.lines().collect();
    assert_eq!(sorted_runs(&record_lines(&ours)), sorted_runs(&expected));
    assert_eq!(
        sorted_runs(&record_lines(&theirs)),
        sorted_runs(&expected),
        "memray 1.20 reads our aggregated file identically"
    );
}

/// The annotated hex dump of memray-format.md §9, produced by memray's own
/// writer harness: our bytes must be the same.
#[test]
fn streaming_writer_bytes_match_memrays_annotated_dump() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("annotated.bin");
    let header = Header {
        python_version: 0x030b0ff0,
        native_traces: true,
        stats: memray_format::TrackerStats {
            start_time_ms: 0x0000_01a2_0058_19a1,
            ..Default::default()
        },
        command_line: "memray test harness".into(),
        pid: 0x050f,
        main_tid: 1,
        ..Header::default()
    };
    let mut w = StreamingWriter::new(MmapFileSink::create(&path, false).unwrap(), header).unwrap();
    w.write_code_object(1, b"f", b"s.py", 7, b"").unwrap();
    w.write_frame_push(1, 1, 12, true).unwrap();
    w.write_native_trace_index(0x401000, 0).unwrap();
    w.write_allocation(1, 0x1000, 1024, Allocator::Malloc, 1)
        .unwrap();
    w.write_allocation(1, 0x1000, 0, Allocator::Free, 0)
        .unwrap();
    w.write_allocation(1, 0x2000, 4096, Allocator::Valloc, 1)
        .unwrap();
    w.write_frame_pop(1, 17).unwrap();
    w.finish(0x0000_01a2_0058_19a1).unwrap();
    drop(w);

    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len(), 4096, "one fallocated page, zero padded");
    let expected_records: &[u8] = &[
        0x0e, 0x01, b'f', 0, b's', b'.', b'p', b'y', 0, 0x0e, 0x00, // CODE_OBJECT
        0x0c, 1, 0, 0, 0, 0, 0, 0, 0, // CONTEXT_SWITCH
        0x41, 0x01, 0x18, // FRAME_PUSH
        0x05, 0x80, 0xc0, 0x80, 0x04, 0x00, // NATIVE_TRACE_INDEX
        0xfe, 0x80, 0x08, 0x02, 0x80, 0x08, // MALLOC
        0x85, // FREE (cache slot 0)
        0xf8, 0x80, 0x08, 0x0c, 0x00, 0x80, 0x20, // VALLOC
        0x1f, 0x10, // FRAME_POP 16 + 1
        0x01, // TRAILER
    ];
    assert_eq!(&bytes[95..95 + expected_records.len()], expected_records);
    assert!(bytes[95 + expected_records.len()..].iter().all(|&b| b == 0));
    // Header: everything but the stats the harness never rewrites.
    assert_eq!(&bytes[..17], b"memray\0\x0d\0\0\0\xf0\x0f\x0b\x03\x01\x00");
    assert_eq!(
        &bytes[49..95],
        b"memray test harness\0\x0f\x05\0\0\x01\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01\0\0\0\0\0"
    );
}

#[test]
fn object_records_match_memrays_bytes() {
    let header = Header {
        native_traces: true,
        ..harness_header(0x030d03f0)
    };
    let mut w = StreamingWriter::new(memray_format::MemorySink::default(), header).unwrap();
    let start = w.sink().bytes.len();
    w.write_object_record(1, 0x7f0000001230, true, 0).unwrap();
    w.write_object_record(1, 0x7f0000001240, true, 0).unwrap();
    w.write_object_record(1, 0x7f0000001230, false, 0).unwrap();
    w.finish(0).unwrap();
    let bytes = w.into_sink().bytes;
    assert_eq!(
        &bytes[start..],
        &[
            0x0c, 1, 0, 0, 0, 0, 0, 0, 0, 0x3f, 0x8c, 0x89, 0x80, 0x80, 0x80, 0xf8, 0x07, 0x00,
            0x3f, 0x04, 0x00, 0x22, 0x01
        ]
    );

    let native_header = Header {
        native_traces: true,
        ..harness_header(0x030d03f0)
    };
    let mut agg = AggregatingWriter::new(memray_format::MemorySink::default(), native_header);
    agg.write_object_record(1, 0x7f0000001230, true, 0).unwrap();
    agg.write_object_record(1, 0x7f0000001240, true, 0).unwrap();
    agg.write_object_record(1, 0x7f0000001230, false, 0)
        .unwrap();
    agg.finish(0).unwrap();
    let bytes = agg.into_sink().bytes;
    assert!(bytes.ends_with(&[0x0d, 0xc8, 0x84, 0x80, 0x80, 0x80, 0xfc, 0x03, 0x00, 0x0f]));
}
