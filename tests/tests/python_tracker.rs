//! `memray.Tracker` from the source tree's package, in a plain interpreter
//! (no `LD_PRELOAD`) on every CPython: allocations inside the block are
//! tracked with their exact Python stacks, through C extensions loaded before
//! and during the block too, and nothing outside it; the extension's GOT slot
//! points at the hook inside the block and back at libc's malloc after it;
//! memray's rules and messages (a second tracker, a tracker used twice, an
//! existing file); and memray 1.20's `FileReader` reads the capture; a later
//! capture of the same process is sound; `memory_interval_ms` is honoured.

use std::path::{Path, PathBuf};
use std::process::Command;

use memray_tests::interpreters::{self, Interpreter};
use memray_tests::native_extension;
use memray_tests::paths;
use memray_tests::python_package::{path_with_build_first, python_path, source_package};
use memray_tests::reference::file_reader_dump;
use serde_json::{json, Value};

fn fixture(name: &str) -> PathBuf {
    paths::fixtures().join("python-api").join(name)
}

/// `slotprobe.c` for `python` as the modules `earlyprobe` and `lateprobe`,
/// in a directory of their own.
fn build_extensions(python: &Interpreter) -> PathBuf {
    let directory = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("python-tracker")
        .join(python.path.to_string_lossy().replace('/', "_"));
    let _ = std::fs::remove_dir_all(&directory);
    for module in ["earlyprobe", "lateprobe"] {
        let define = format!("-DMODULE={module}");
        native_extension::compile(
            &python.path,
            &fixture("slotprobe.c"),
            module,
            &directory,
            &[&define],
        );
    }
    directory
}

/// Runs python with the source tree's `memray` package (`package`) and the
/// built extensions importable, and the tracker library found next to the
/// `memray` command on PATH (the build's), as an installed package finds it.
fn python_with_package(python: &Interpreter, package: &Path, extensions: &Path) -> Command {
    let mut command = Command::new(&python.path);
    command
        .env("PYTHONPATH", python_path(&[extensions, package]))
        .env("PATH", path_with_build_first())
        .env_remove("LD_PRELOAD");
    command
}

/// The 1-based line of `script` that contains `text`.
fn line_of(script: &str, text: &str) -> u64 {
    script
        .lines()
        .position(|line| line.contains(text))
        .unwrap_or_else(|| panic!("no line with {text:?}")) as u64
        + 1
}

#[test]
fn a_tracker_block_records_its_allocations_and_only_those() {
    let script_path = fixture("tracker_block.py");
    let script = std::fs::read_to_string(&script_path).unwrap();
    let file = script_path.to_string_lossy().into_owned();
    let in_work = line_of(&script, "earlyprobe.alloc(222222)");
    let arrays = line_of(&script, "bytearray(100000 + i)");
    let block = line_of(&script, "kept = tracked_work()");
    let probe = line_of(&script, "lateprobe.alloc(444444)");
    let again_line = line_of(&script, "again = tracked_work()");
    paths::memray_bin(); // the tracker library is built beside it
    let package = source_package();
    for python in interpreters::all_for_tests() {
        let label = format!("CPython {}", python.label());
        let extensions = build_extensions(&python);
        let capture = extensions.join("block.bin");
        let output = python_with_package(&python, package.path(), &extensions)
            .arg(&script_path)
            .arg(&capture)
            .output()
            .expect("run python");
        assert!(
            output.status.success(),
            "{label}: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let mut seen: Value = serde_json::from_slice(&output.stdout).expect("the script's JSON");
        let snapshots = seen["slow_snapshots"].take().as_u64().unwrap_or(0);
        // About 5 samples, with the capture's first and last (at 10 ms: ~100).
        assert!(
            (3..=10).contains(&snapshots),
            "{label}: {snapshots} memory snapshots in 1 s at memory_interval_ms=200"
        );
        seen.as_object_mut().unwrap().remove("slow_snapshots");
        assert_eq!(
            seen,
            json!({
                "slots_inside_are_the_hook": [true, true],
                "second": "No more than one Tracker instance can be active at the same time",
                "slots_after_are_libcs": [true, true],
                "reused": "Attempting to use stale output handle",
                "exists": format!(
                    "Output file {} already exists. Memray can overwrite it with the \
                     --force CLI argument or the overwrite=True API argument.",
                    capture.display()
                ),
                "neither": "Exactly one of 'file_name' or 'destination' argument must be specified",
            }),
            "{label}"
        );

        let dump = file_reader_dump(&capture);
        let records = dump["records"].as_array().expect("records");
        let with_size = |size: u64| -> Vec<&Value> {
            records
                .iter()
                .filter(|r| r[2] == size && r[3] != "free" && r[3] != "munmap")
                .collect()
        };
        for outside in [111111, 333333, 555555] {
            assert!(
                with_size(outside).is_empty(),
                "{label}: the allocation of {outside} bytes outside the block was recorded"
            );
        }
        let frame = |function: &str, line: u64| json!([function, file, line]);
        let chain = with_size(222222);
        assert_eq!(
            chain.len(),
            1,
            "{label}: the extension's malloc in the block"
        );
        assert_eq!(chain[0][3], "malloc", "{label}");
        assert_eq!(
            chain[0][6],
            json!([frame("tracked_work", in_work), frame("<module>", block)]),
            "{label}: the stack of the extension's malloc"
        );
        for size in 100001..=100003 {
            let array = with_size(size);
            assert_eq!(array.len(), 1, "{label}: the bytearray of {size} bytes");
            assert_eq!(
                array[0][6],
                json!([frame("tracked_work", arrays), frame("<module>", block)]),
                "{label}: bytearray({size})"
            );
        }
        let probed = with_size(444444);
        assert_eq!(
            probed.len(),
            1,
            "{label}: the malloc of an extension imported in the block"
        );
        assert_eq!(probed[0][6], json!([frame("<module>", probe)]), "{label}");

        let again = file_reader_dump(&capture.with_extension("bin.again"));
        let chain: Vec<&Value> = again["records"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r[2] == 222222)
            .collect();
        assert_eq!(chain.len(), 1, "{label}: the second capture");
        assert_eq!(
            chain[0][6],
            json!([
                frame("tracked_work", in_work),
                frame("<module>", again_line)
            ]),
            "{label}: a stack in the second capture of the process"
        );
    }
}

/// `Tracker(destination=SocketDestination(port))` waits for a reader at the
/// block's start and streams the capture to it: what the reader receives is
/// a capture our reports read, with the block's allocation at its line.
#[test]
fn a_socket_destination_streams_the_block_to_its_reader() {
    let script_path = fixture("socket_destination.py");
    let script = std::fs::read_to_string(&script_path).unwrap();
    let line = line_of(&script, "bytearray(654321)");
    paths::memray_bin(); // the tracker library is built beside it
    let package = source_package();
    for python in interpreters::all_for_tests() {
        let label = format!("CPython {}", python.label());
        let directory = Path::new(env!("CARGO_TARGET_TMPDIR")).join("socket-destination");
        std::fs::create_dir_all(&directory).unwrap();
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))
            .and_then(|free| free.local_addr())
            .unwrap()
            .port();
        let program = python_with_package(&python, package.path(), &directory)
            .arg(&script_path)
            .arg(port.to_string())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run python");
        let mut reader = (0..200)
            .find_map(|_| {
                std::net::TcpStream::connect(("127.0.0.1", port))
                    .inspect_err(|_| std::thread::sleep(std::time::Duration::from_millis(50)))
                    .ok()
            })
            .unwrap_or_else(|| panic!("{label}: nothing listens on port {port}"));
        let mut stream = Vec::new();
        std::io::Read::read_to_end(&mut reader, &mut stream).unwrap();
        let output = program.wait_with_output().unwrap();
        assert!(
            output.status.success() && output.stdout == b"done\n",
            "{label}: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let capture = directory.join(format!("stream-{}.bin", python.label()));
        std::fs::write(&capture, &stream).unwrap();
        let stats = Command::new(paths::memray_bin())
            .args(["stats", "--json", "-f", "-o"])
            .arg(directory.join("stats.json"))
            .arg(&capture)
            .output()
            .unwrap();
        assert!(stats.status.success(), "{label}: {stats:?}");
        let stats: Value =
            serde_json::from_slice(&std::fs::read(directory.join("stats.json")).unwrap()).unwrap();
        let location = format!("<module>:{}:{line}", script_path.display());
        let top = &stats["top_allocations_by_size"][0];
        assert_eq!(top["location"], location.as_str(), "{label}: {stats}");
        assert!(top["size"].as_u64() >= Some(654321), "{label}: {stats}");
    }
}
