//! Interoperability with the memray releases that wrote each capture format
//! we read: 1.18 (format 11), 1.19 (format 12) and 1.20 (format 13). Captures
//! recorded by each release are dumped identically by our `memray parse` and
//! that release's, and replayed into the same records, stacks, peak and
//! leaks as that release's `FileReader`; 1.20 captures are also re-encoded
//! by our writer into the very same bytes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use memray_format::{
    AllocatorKind, CaptureReader, CaptureWriter, Event, FileFormat, MemorySink, Replay,
    StreamingWriter,
};
use memray_tests::paths::{fixtures, memray_bin};
use memray_tests::reference::{reference_memray, reference_memray_version, REFERENCE_VERSION};
use memray_tests::run::stdout_of;
use serde_json::{json, Value};

/// A memray release and the format version it writes.
#[derive(Clone, Copy)]
struct Release {
    version: &'static str,
    format: i32,
}

const RELEASES: [Release; 3] = [
    Release {
        version: "1.18.0",
        format: 11,
    },
    Release {
        version: "1.19.3",
        format: 12,
    },
    Release {
        version: REFERENCE_VERSION,
        format: 13,
    },
];

fn script() -> PathBuf {
    fixtures().join("captures").join("alloc_script.py")
}

/// Records `alloc_script.py` with `release` and `flags`.
fn capture(release: Release, dir: &Path, name: &str, flags: &[&str]) -> PathBuf {
    let out = dir.join(format!("{name}-{}.bin", release.version));
    let mut args: Vec<String> = vec!["run".into(), "-q".into(), "-f".into(), "-o".into()];
    args.push(out.display().to_string());
    args.extend(flags.iter().map(|f| f.to_string()));
    args.push(script().display().to_string());
    stdout_of(reference_memray_version(release.version).memray, &args);
    let header = CaptureReader::open(&out).unwrap().header().clone();
    assert_eq!(
        header.version, release.format,
        "{name}: memray {}",
        release.version
    );
    out
}

#[test]
fn our_parse_equals_each_releases_parse_on_its_captures() {
    let dir = tempfile::tempdir().unwrap();
    let variants: &[(&str, &[&str])] = &[
        ("plain", &["--no-compress"]),
        ("compressed", &[]),
        ("native", &["--native"]),
        (
            "python_allocators",
            &["--trace-python-allocators", "--no-compress"],
        ),
        ("aggregated", &["--aggregate"]),
        (
            "aggregated_native",
            &["--aggregate", "--native", "--no-compress"],
        ),
    ];
    for release in RELEASES {
        let theirs_bin = reference_memray_version(release.version).memray;
        for &(name, flags) in variants {
            let path = capture(release, dir.path(), name, flags);
            let ours = stdout_of(memray_bin(), [Path::new("parse"), &path]);
            let theirs = stdout_of(&theirs_bin, [Path::new("parse"), &path]);
            let what = format!("{name} by memray {}", release.version);
            assert!(
                ours.lines().count() > 100,
                "{what}: only {} lines",
                ours.lines().count()
            );
            assert_eq!(
                ours.lines().count(),
                theirs.lines().count(),
                "{what}: line counts differ"
            );
            for (i, (a, b)) in ours.lines().zip(theirs.lines()).enumerate() {
                assert_eq!(a, b, "{what}: line {i} differs");
            }
            assert_eq!(ours, theirs, "{what}: same bytes");
        }
    }
}

fn file_reader_view(release: Release, capture: &Path) -> Value {
    let helper = fixtures().join("captures").join("file_reader_dump.py");
    let python = reference_memray_version(release.version).python;
    let out = stdout_of(python, [helper.as_path(), capture]);
    serde_json::from_str(&out).unwrap()
}

fn stack_json(replay: &mut Replay, node: u32, tid: u64) -> Value {
    let frames = replay.python_stack(node, tid);
    Value::Array(
        frames
            .iter()
            .map(|f| json!([&*f.function, &*f.filename, f.lineno]))
            .collect(),
    )
}

/// The heap as memray's high-water-mark finder sees it: live simple
/// allocations by address, and mapped ranges that munmap can split.
#[derive(Default)]
struct Heap {
    live: BTreeMap<u64, u64>,
    mapped: Vec<(u64, u64)>,
    current: u64,
    peak: u64,
}

impl Heap {
    fn apply(&mut self, address: u64, size: u64, kind: AllocatorKind) {
        match kind {
            AllocatorKind::SimpleAllocator => {
                if let Some(old) = self.live.insert(address, size) {
                    self.current -= old;
                }
                self.current += size;
            }
            AllocatorKind::SimpleDeallocator => {
                self.current -= self.live.remove(&address).unwrap_or(0);
            }
            AllocatorKind::RangedAllocator => {
                self.mapped.push((address, address + size));
                self.current += size;
            }
            AllocatorKind::RangedDeallocator => {
                let (start, end) = (address, address + size);
                let mut kept = Vec::new();
                for &(a, b) in &self.mapped {
                    let (cut_a, cut_b) = (a.max(start), b.min(end));
                    if cut_a >= cut_b {
                        kept.push((a, b));
                        continue;
                    }
                    self.current -= cut_b - cut_a;
                    kept.extend([(a, cut_a), (cut_b, b)].into_iter().filter(|(x, y)| x < y));
                }
                self.mapped = kept;
            }
        }
        self.peak = self.peak.max(self.current);
    }

    fn leaked(&self) -> u64 {
        self.current
    }
}

#[test]
fn replay_agrees_with_each_releases_file_reader() {
    let dir = tempfile::tempdir().unwrap();
    for release in RELEASES {
        for (name, flags) in [
            ("stream", &["--native"][..]),
            ("pyalloc", &["--trace-python-allocators"][..]),
            ("plain", &["--no-compress"][..]),
        ] {
            let what = format!("{name} by memray {}", release.version);
            let path = capture(release, dir.path(), name, flags);
            let expected = file_reader_view(release, &path);
            let mut replay = Replay::open(&path).unwrap();
            let mut events = Vec::new();
            let mut heap = Heap::default();
            while let Some(event) = replay.next_event().unwrap() {
                if let Event::Allocation(a) = event {
                    heap.apply(a.address, a.size, a.allocator.kind());
                    events.push(a);
                }
            }
            assert!(!replay.is_truncated(), "{what}");
            let ours: Vec<Value> = events
                .iter()
                .map(|a| {
                    let stack = if a.allocator.is_deallocator() {
                        Value::Null
                    } else {
                        stack_json(&mut replay, a.python_node, a.tid)
                    };
                    json!([
                        a.tid,
                        a.address,
                        a.size,
                        a.allocator.name(),
                        a.native_frame_id,
                        a.native_segment_generation,
                        stack
                    ])
                })
                .collect();
            let theirs = expected["records"].as_array().unwrap();
            assert_eq!(ours.len(), theirs.len(), "{what}: record counts");
            for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
                assert_eq!(a, b, "{what}: allocation record {i}");
            }
            assert!(
                ours.iter()
                    .any(|r| r[6].as_array().is_some_and(|s| s.len() >= 2)),
                "{what}: some stacks are deep (a meaningful comparison)"
            );
            assert_eq!(json!(heap.peak), expected["peak_memory"], "{what}: peak");
            assert_eq!(
                json!(heap.leaked()),
                expected["leaked_bytes"],
                "{what}: leaks"
            );
        }
    }
}

#[test]
fn aggregated_replay_agrees_with_each_releases_high_water_mark() {
    let dir = tempfile::tempdir().unwrap();
    for release in RELEASES {
        for (name, flags) in [
            ("agg", &["--aggregate"][..]),
            ("agg_native", &["--aggregate", "--native"][..]),
        ] {
            let what = format!("{name} by memray {}", release.version);
            let path = capture(release, dir.path(), name, flags);
            let expected = file_reader_view(release, &path);
            let mut replay = Replay::open(&path).unwrap();
            let mut aggregated = Vec::new();
            while let Some(event) = replay.next_event().unwrap() {
                if let Event::AggregatedAllocation(a) = event {
                    aggregated.push(a);
                }
            }
            // memray groups by (tid, python node, native id); so do we.
            let mut groups: BTreeMap<(u64, u32, u64), u64> = BTreeMap::new();
            let mut leaked = 0;
            for a in &aggregated {
                *groups
                    .entry((a.tid, a.python_node, a.native_frame_id))
                    .or_default() += a.bytes_in_high_water_mark;
                leaked += a.bytes_leaked;
            }
            let mut ours: Vec<Value> = groups
                .into_iter()
                .filter(|&(_, size)| size > 0)
                .map(|((tid, node, _), size)| {
                    json!([tid, size, stack_json(&mut replay, node, tid)])
                })
                .collect();
            ours.sort_by_key(|v| v.to_string());
            let mut theirs = expected["high_water_mark"].as_array().unwrap().clone();
            theirs.sort_by_key(|v| v.to_string());
            assert_eq!(ours, theirs, "{what}: high-water mark");
            assert_eq!(json!(leaked), expected["leaked_bytes"], "{what}: leaks");
            let peak: u64 = aggregated.iter().map(|a| a.bytes_in_high_water_mark).sum();
            assert_eq!(json!(peak), expected["peak_memory"], "{what}: peak");
        }
    }
}

/// Feeds every record of `capture` to our writer, as the tracker would.
fn rewrite(capture: &Path) -> Vec<u8> {
    let mut reader = CaptureReader::open(capture).unwrap();
    assert_eq!(reader.header().file_format, FileFormat::AllAllocations);
    let header = reader.header().clone();
    let end_time = header.stats.end_time_ms as u64;
    let mut w = StreamingWriter::new(MemorySink::default(), header).unwrap();
    memray_format::rewrite(&mut reader, &mut w).unwrap();
    w.finish(end_time).unwrap();
    w.into_sink().bytes
}

#[test]
fn our_writer_reencodes_real_captures_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    for (name, flags) in [
        ("native", &["--native", "--no-compress"][..]),
        (
            "pyalloc",
            &["--trace-python-allocators", "--no-compress"][..],
        ),
    ] {
        let path = capture(RELEASES[2], dir.path(), name, flags);
        let original = std::fs::read(&path).unwrap();
        let end = original.iter().rposition(|&b| b != 0).unwrap() + 1;
        let rewritten = rewrite(&path);
        assert_eq!(rewritten.len(), end, "{name}: same length");
        assert!(rewritten == original[..end], "{name}: same bytes");

        // And memray reads what we wrote (compressed, as `memray run` leaves it).
        let ours = dir.path().join(format!("{name}-ours.bin"));
        std::fs::write(&ours, &rewritten).unwrap();
        memray_format::compress_file(&ours).unwrap();
        let stats = |capture: &Path| {
            let json_out = capture.with_extension("json");
            stdout_of(
                reference_memray().memray,
                [
                    "stats".as_ref(),
                    "--json".as_ref(),
                    "-f".as_ref(),
                    "-o".as_ref(),
                    json_out.as_os_str(),
                    capture.as_os_str(),
                ],
            );
            let mut v: Value =
                serde_json::from_str(&std::fs::read_to_string(&json_out).unwrap()).unwrap();
            v["metadata"]["file_name"] = Value::Null;
            v
        };
        assert_eq!(stats(&ours), stats(&path), "{name}: memray stats --json");
    }
}
