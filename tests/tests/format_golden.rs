//! S18: our v13 writers against memray 1.20: the golden dumps of memray's
//! own writer tests (`tests/integration/test_record_writer.py` in memray's
//! repository), checked with our `memray parse` and with memray's; and byte
//! for byte against files memray 1.20's writer writes in the same test run.

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

/// Writes, with memray 1.20's own writer (`RecordWriterTestHarness`, the
/// C++ RecordWriter behind a Python wrapper), the records of one case below
/// into `sys.argv[2]`: the truth our writers' bytes are compared with.
const MEMRAY_WRITER: &str = r#"
import sys
from memray import AllocatorType, FileFormat
from memray._memray import RecordWriterTestHarness

case, path = sys.argv[1], sys.argv[2]
if case == "allocations":
    w = RecordWriterTestHarness(path, native_traces=True)
    w.write_code_object(1, "f", "s.py", b"", 7)
    w.write_frame_push(1, 1, 12, True)
    w.write_unresolved_native_frame(0x401000, 0)
    w.write_allocation_record(1, 0x1000, 1024, AllocatorType.MALLOC.value, 1)
    w.write_allocation_record(1, 0x1000, 0, AllocatorType.FREE.value, 0)
    w.write_allocation_record(1, 0x2000, 4096, AllocatorType.VALLOC.value, 1)
    w.write_frame_pop(1, 17)
else:
    file_format = FileFormat.AGGREGATED_ALLOCATIONS if case == "objects-aggregated" else FileFormat.ALL_ALLOCATIONS
    w = RecordWriterTestHarness(path, native_traces=True, file_format=file_format)
    w.write_object_record(1, 0x7f0000001230, True, 0)
    w.write_object_record(1, 0x7f0000001240, True, 0)
    w.write_object_record(1, 0x7f0000001230, False, 0)
w.write_trailer()
"#;

/// The header fields memray's harness fills from its run (the interpreter
/// it was built for, the clock, its pid), read from the file it wrote: every
/// other header byte is compared.
struct HarnessRun {
    python_version: u32,
    start_time_ms: u64,
    end_time_ms: u64,
    pid: i32,
}

/// memray's bytes for `case`, and the header fields of that run.
fn memray_writes(dir: &Path, case: &str) -> (Vec<u8>, HarnessRun) {
    let path = dir.join(format!("memray-{case}.bin"));
    stdout_of(
        reference_memray().python,
        [
            "-c",
            MEMRAY_WRITER,
            case,
            path.to_str().expect("utf-8 path"),
        ],
    );
    let bytes = std::fs::read(&path).unwrap();
    let field = |at: usize, len: usize| {
        let mut raw = [0u8; 8];
        raw[..len].copy_from_slice(&bytes[at..at + len]);
        u64::from_le_bytes(raw)
    };
    // Fixed offsets: magic, version, python_version, flags, stats; the pid
    // follows the harness's command line, "memray test harness\0".
    let pid_at = 49 + "memray test harness".len() + 1;
    let run = HarnessRun {
        python_version: field(11, 4) as u32,
        start_time_ms: field(33, 8),
        end_time_ms: field(41, 8),
        pid: field(pid_at, 4) as i32,
    };
    (bytes, run)
}

/// The header our writers get to reproduce memray's harness run.
fn header_of(run: &HarnessRun) -> Header {
    Header {
        python_version: run.python_version,
        native_traces: true,
        stats: memray_format::TrackerStats {
            start_time_ms: run.start_time_ms as i64,
            ..Default::default()
        },
        command_line: "memray test harness".into(),
        pid: run.pid,
        main_tid: 1,
        ..Header::default()
    }
}

#[test]
fn streaming_writer_bytes_are_memrays() {
    let dir = tempfile::tempdir().unwrap();
    let (theirs, run) = memray_writes(dir.path(), "allocations");
    let path = dir.path().join("ours.bin");
    let mut w =
        StreamingWriter::new(MmapFileSink::create(&path, false).unwrap(), header_of(&run)).unwrap();
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
    w.finish(run.end_time_ms).unwrap();
    drop(w);

    let mut ours = std::fs::read(&path).unwrap();
    assert_eq!(ours.len(), 4096, "one fallocated page, zero padded");
    // stats.n_allocations: memray's tracker counts allocations and writes the
    // count at exit, the bare writer in its harness leaves 0; ours counts.
    assert_eq!(
        &ours[N_ALLOCATIONS],
        3u64.to_le_bytes(),
        "three allocations"
    );
    assert_eq!(&theirs[N_ALLOCATIONS], [0; 8], "the harness counts none");
    ours[N_ALLOCATIONS].fill(0);
    assert_eq!(ours, theirs);
}

/// Where the header keeps stats.n_allocations.
const N_ALLOCATIONS: std::ops::Range<usize> = 17..25;

#[test]
fn object_records_bytes_are_memrays() {
    let dir = tempfile::tempdir().unwrap();
    for case in ["objects", "objects-aggregated"] {
        let (theirs, run) = memray_writes(dir.path(), case);
        let path = dir.path().join(format!("ours-{case}.bin"));
        let sink = MmapFileSink::create(&path, false).unwrap();
        let mut w: Box<dyn CaptureWriter> = if case == "objects" {
            Box::new(StreamingWriter::new(sink, header_of(&run)).unwrap())
        } else {
            Box::new(AggregatingWriter::new(sink, header_of(&run)))
        };
        w.write_object_record(1, 0x7f0000001230, true, 0).unwrap();
        w.write_object_record(1, 0x7f0000001240, true, 0).unwrap();
        w.write_object_record(1, 0x7f0000001230, false, 0).unwrap();
        w.finish(run.end_time_ms).unwrap();
        drop(w);
        assert_eq!(std::fs::read(&path).unwrap(), theirs, "{case}");
    }
}
