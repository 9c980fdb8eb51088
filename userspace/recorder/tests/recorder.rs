//! The recorder driven directly, its capture read back with memray-format's
//! reader: stack differences, code-object ids and their reuse after a
//! death, pending thread names, and the end of a session.

use std::path::Path;

use memray_format::{CaptureReader, Record};
use memray_recorder::{
    Allocator, CaptureOptions, CaptureSettings, CodeInfo, CodeNamer, Header, Image, Process,
    RawFrame, RecordedThread, Recorder, Segment, Stacks,
};

/// Names code object `A` as function `fA` in `file.py`, first line `A`.
struct Names;

impl CodeNamer for Names {
    fn code(&mut self, address: u64) -> Option<CodeInfo> {
        (address != 0xdead).then(|| CodeInfo {
            name: format!("f{address:x}"),
            qualname: None,
            filename: "file.py".into(),
            firstlineno: address as i32,
            linetable: Vec::new(),
        })
    }
}

fn frame(code: u64, instruction_offset: i64) -> RawFrame {
    RawFrame {
        code,
        instruction_offset,
        is_entry: true,
    }
}

fn python(frames: &[RawFrame]) -> Stacks<'_> {
    Stacks {
        python: frames,
        native: &[],
    }
}

fn settings(output: &Path, compress: bool) -> CaptureSettings {
    CaptureSettings {
        output: output.to_path_buf(),
        live: None,
        options: CaptureOptions {
            compress,
            ..CaptureOptions::default()
        },
        header: Header {
            command_line: "test".into(),
            ..Header::default()
        },
    }
}

/// Every record but memory records, as text.
fn records(path: &Path) -> (Vec<String>, bool) {
    let mut reader = CaptureReader::open(path).expect("open the capture");
    let mut out = Vec::new();
    while let Some(record) = reader.next_record().expect("read a record") {
        let text = match record {
            Record::MemoryRecord { .. } | Record::Trailer => continue,
            Record::CodeObject {
                code_object_id,
                function_name,
                ..
            } => format!(
                "code {code_object_id} {}",
                String::from_utf8_lossy(function_name)
            ),
            Record::ContextSwitch { tid } => format!("thread {tid}"),
            Record::FramePush {
                code_object_id,
                instruction_offset,
                ..
            } => format!("push {code_object_id} {instruction_offset}"),
            Record::FramePop { count } => format!("pop {count}"),
            Record::Allocation(a) => format!("{:?} {:#x} {}", a.allocator, a.address, a.size),
            Record::ThreadRecord { name } => format!("name {}", String::from_utf8_lossy(name)),
            other => format!("{other:?}"),
        };
        out.push(text);
    }
    (out, reader.is_truncated())
}

#[test]
fn stacks_are_written_as_differences_and_dead_code_objects_are_renamed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.bin");
    let mut recorder = Recorder::create(&settings(&path, false), Process::Current, 1, &[]).unwrap();
    let mut main = RecordedThread::new(1, 100);
    let mut other = RecordedThread::new(2, 200);
    // Innermost first.
    let outer_inner = [frame(0xb0, 4), frame(0xa0, 2)];
    recorder
        .allocation(
            &mut main,
            python(&outer_inner),
            &mut Names,
            0x1000,
            10,
            Allocator::Malloc,
        )
        .unwrap();
    // Same outer frame, another line of the inner one: one pop, one push.
    let moved = [frame(0xb0, 6), frame(0xa0, 2)];
    recorder
        .allocation(
            &mut main,
            python(&moved),
            &mut Names,
            0x2000,
            20,
            Allocator::Calloc,
        )
        .unwrap();
    recorder
        .deallocation(&main, 0x1000, 0, Allocator::Free)
        .unwrap();
    // A name given from elsewhere waits for the thread's next record.
    recorder.name_other_thread(200, b"worker");
    recorder
        .allocation(
            &mut other,
            python(&[frame(0xdead, 0)]),
            &mut Names,
            0x3000,
            30,
            Allocator::Malloc,
        )
        .unwrap();
    // 0xb0 dies and a new code object takes its address: a new id, whole stack re-sent.
    recorder.code_object_died(0xb0);
    recorder
        .allocation(
            &mut main,
            python(&moved),
            &mut Names,
            0x4000,
            40,
            Allocator::Malloc,
        )
        .unwrap();
    recorder.finish().unwrap();

    let (records, truncated) = records(&path);
    assert!(!truncated);
    let expected = [
        "code 1 fa0",
        "thread 1",
        "push 1 2",
        "code 2 fb0",
        "push 2 4",
        "Malloc 0x1000 10",
        "pop 1",
        "push 2 6",
        "Calloc 0x2000 20",
        "Free 0x1000 0",
        "thread 2",
        "name worker",
        "code 3 <unknown>",
        "push 3 0",
        "Malloc 0x3000 30",
        "thread 1",
        "pop 2",
        "push 1 2",
        "code 4 fb0",
        "push 4 6",
        "Malloc 0x4000 40",
    ];
    assert_eq!(records, expected);
}

#[test]
fn a_finished_session_is_compressed_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.bin");
    let mut recorder = Recorder::create(&settings(&path, true), Process::Current, 1, &[]).unwrap();
    let mut main = RecordedThread::new(1, 1);
    recorder
        .allocation(
            &mut main,
            Stacks::default(),
            &mut Names,
            0x10,
            1,
            Allocator::Malloc,
        )
        .unwrap();
    recorder.thread_name(&main, b"main").unwrap();
    recorder.memory_sample(4096).unwrap();
    recorder.finish().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes[..4], memray_format::LZ4_MAGIC);
    let (records, truncated) = records(&path);
    assert!(!truncated);
    assert_eq!(records, ["thread 1", "Malloc 0x10 1", "name main"]);
}

#[test]
fn native_stacks_share_a_trie_written_outermost_first_with_the_loaded_objects() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("native.bin");
    let mut settings = settings(&path, false);
    settings.options.native_traces = true;
    let image = |name: &str| Image {
        filename: name.into(),
        load_address: 0x1000,
        segments: vec![Segment {
            vaddr: 0,
            memsz: 0x100,
        }],
    };
    let mut recorder = Recorder::create(&settings, Process::Current, 1, &[image("/a.so")]).unwrap();
    let mut main = RecordedThread::new(1, 1);
    let not_entry = RawFrame {
        is_entry: false,
        ..frame(0xa0, 2)
    };
    let mut allocate = |recorder: &mut Recorder, native: &[u64], address, allocator| {
        let stacks = Stacks {
            python: &[not_entry],
            native,
        };
        recorder
            .allocation(&mut main, stacks, &mut Names, address, 1, allocator)
            .unwrap();
    };
    // Innermost first: 0x30 was called by 0x20, called by 0x10.
    allocate(&mut recorder, &[0x30, 0x20, 0x10], 0x100, Allocator::Malloc);
    recorder
        .loaded_objects_changed(&[image("/a.so"), image("/b.so")])
        .unwrap();
    allocate(&mut recorder, &[0x31, 0x20, 0x10], 0x200, Allocator::Valloc);
    allocate(&mut recorder, &[0x30, 0x20, 0x10], 0x300, Allocator::Malloc);
    recorder
        .deallocation(&main, 0x100, 0, Allocator::Free)
        .unwrap();
    recorder.finish().unwrap();

    let mut reader = CaptureReader::open(&path).unwrap();
    assert!(reader.header().native_traces);
    let mut out = Vec::new();
    while let Some(record) = reader.next_record().unwrap() {
        out.push(match record {
            Record::MemoryMapStart => "maps".to_string(),
            Record::SegmentHeader { filename, .. } => String::from_utf8_lossy(filename).into(),
            Record::NativeTraceIndex { ip, parent } => format!("node {ip:#x} {parent}"),
            Record::FramePush { is_entry_frame, .. } => format!("push entry={is_entry_frame}"),
            Record::Allocation(a) => format!("{:#x} native {}", a.address, a.native_frame_id),
            _ => continue,
        });
    }
    let expected = [
        "maps",
        "/a.so",
        "push entry=false",
        "node 0x10 0",
        "node 0x20 1",
        "node 0x30 2",
        "0x100 native 3",
        "maps",
        "/a.so",
        "/b.so",
        "node 0x31 2",
        "0x200 native 4",
        "0x300 native 3",
        "0x100 native 0",
    ];
    assert_eq!(out, expected);
}
