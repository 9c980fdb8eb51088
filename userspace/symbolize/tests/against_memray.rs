//! Native and hybrid stacks of a capture recorded by memray 1.20 `run --native`, read by
//! memray's own `FileReader` and by us (memray-format's reader for the raw records, our
//! symbolizer and hybrid rule), through a C extension compiled here with `-g`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use memray_format::{CaptureReader, Event, Record, Replay};
use memray_symbolize::{hybrid_stack, HybridFrame, NativeFrame, NativeSymbolizer};
use memray_tests::native_extension;
use memray_tests::reference::{reference_memray, ReferenceMemray};
use serde_json::Value;

/// (function, file, line), as memray's reader gives every frame.
type Location = (String, String, u32);

const SIZES: [u64; 2] = [123456, 123457];

/// Records the script with memray 1.20 `run --native`.
fn record(memray: &ReferenceMemray, directory: &Path) -> PathBuf {
    let capture = directory.join("native.bin");
    let status = Command::new(&memray.python)
        .args(["-m", "memray", "run", "--native", "-q", "-f", "-o"])
        .arg(&capture)
        .arg(native_extension::script())
        .env("PYTHONPATH", directory)
        .status()
        .expect("run memray");
    assert!(status.success());
    capture
}

fn location(frame: &Value) -> Location {
    (
        frame[0].as_str().unwrap().to_owned(),
        frame[1].as_str().unwrap().to_owned(),
        frame[2].as_u64().unwrap() as u32,
    )
}

/// memray's native and hybrid stacks of each allocation of one of `SIZES`, by size.
fn memrays_stacks(
    memray: &ReferenceMemray,
    capture: &Path,
) -> HashMap<u64, (Vec<Location>, Vec<Location>)> {
    let output = Command::new(&memray.python)
        .arg(native_extension::fixture("memray_stacks.py"))
        .arg(capture)
        .output()
        .expect("run memray's reader");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let record: Value = serde_json::from_str(line).unwrap();
            let stack = |key: &str| {
                record[key]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(location)
                    .collect()
            };
            (
                record["size"].as_u64().unwrap(),
                (stack("native"), stack("hybrid")),
            )
        })
        .collect()
}

/// The entry bits of the Python stack (innermost first) at each allocation of one of
/// `SIZES`, from the raw FRAME_PUSH / FRAME_POP records (the script has one thread).
fn entry_bits(capture: &Path) -> HashMap<u64, Vec<bool>> {
    let mut reader = CaptureReader::open(capture).unwrap();
    let mut stack = Vec::new();
    let mut found = HashMap::new();
    while let Some(record) = reader.next_record().unwrap() {
        match record {
            Record::FramePush { is_entry_frame, .. } => stack.push(is_entry_frame),
            Record::FramePop { count } => {
                stack.truncate(stack.len().saturating_sub(count as usize))
            }
            Record::Allocation(allocation) if SIZES.contains(&allocation.size) => {
                found.insert(allocation.size, stack.iter().rev().copied().collect());
            }
            _ => {}
        }
    }
    found
}

fn as_location(frame: &NativeFrame) -> Location {
    (
        frame.function.to_string(),
        frame.file.to_string(),
        frame.line,
    )
}

#[test]
fn native_and_hybrid_stacks_as_memray_reads_them() {
    let memray = reference_memray();
    let directory = Path::new(env!("CARGO_TARGET_TMPDIR")).join("against-memray");
    std::fs::create_dir_all(&directory).unwrap();
    native_extension::build(&memray.python, &directory);
    let capture = record(&memray, &directory);
    let theirs = memrays_stacks(&memray, &capture);
    let entries = entry_bits(&capture);
    assert_eq!(theirs.len(), 2, "one allocation of each size");

    let mut replay = Replay::open(&capture).unwrap();
    let header = replay.header().clone();
    let mut allocations = Vec::new();
    while let Some(event) = replay.next_event().unwrap() {
        if let Event::Allocation(allocation) = event {
            if SIZES.contains(&allocation.size) {
                allocations.push(allocation);
            }
        }
    }
    let mut symbolizer = NativeSymbolizer::new(replay.generations().to_vec(), None);
    for allocation in allocations {
        let (their_native, their_hybrid) = &theirs[&allocation.size];
        let generation = allocation.native_segment_generation as usize;
        let native: Vec<NativeFrame> = replay
            .native_stack(allocation.native_frame_id)
            .collect::<Vec<_>>()
            .into_iter()
            .flat_map(|ip| symbolizer.frames(ip, generation).to_vec())
            .collect();
        let ours: Vec<Location> = native.iter().map(as_location).collect();
        assert_eq!(
            &ours, their_native,
            "native stack of the {}-byte allocation",
            allocation.size
        );

        // Every Python frame with its entry bit, the main thread's hidden ones too: the
        // hybrid rule drops them itself.
        let (python, is_entry): (Vec<Location>, Vec<bool>) = replay
            .python_frames_with_entries(allocation.python_node)
            .into_iter()
            .map(|(frame, is_entry)| {
                let location = (
                    frame.function.to_string(),
                    frame.filename.to_string(),
                    frame.lineno as u32,
                );
                (location, is_entry)
            })
            .unzip();
        assert_eq!(
            is_entry, entries[&allocation.size],
            "the replay's entry bits are the FRAME_PUSH records'"
        );
        let skip = if allocation.tid == header.main_tid {
            header.skipped_frames_on_main_tid as usize
        } else {
            0
        };
        let hybrid: Vec<Location> =
            hybrid_stack(&native, |frame| &frame.function, &python, &is_entry, skip)
                .into_iter()
                .map(|frame| match frame {
                    HybridFrame::Native(frame) => as_location(&frame),
                    HybridFrame::Python(frame) => frame,
                })
                .collect();
        assert_eq!(
            &hybrid, their_hybrid,
            "hybrid stack of the {}-byte allocation",
            allocation.size
        );
    }
}
