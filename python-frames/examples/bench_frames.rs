//! Benchmarks for python-frames, run against every installed CPython:
//! * remote: median time to read all threads (5 threads, 50 frames each) of a
//!   live process with `PythonProcess::snapshot`;
//! * in-process: median time of one walk of a 50-frame stack, alone and with
//!   a cached code-object lookup per frame, measured inside Python through the ctypes
//!   test library, which must be built next to this example
//!   (`cargo build --release -p python-frames-testlib`).
//!
//! Run: `cargo run --release -p python-frames --example bench_frames`

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use memray_tests::{interpreters, paths};
use python_frames::PythonProcess;

const ROUNDS: usize = 2000;

fn main() {
    let script = paths::fixtures().join("python-frames/bench_stacks.py");
    let testlib = testlib_path();
    println!(
        "{:<6} {:>20} {:>18} {:>24}",
        "python", "remote all threads", "in-process walk", "walk + cached lookups"
    );
    for python in interpreters::supported() {
        let remote = remote_median(&python.path, &script);
        let local = testlib
            .as_deref()
            .and_then(|lib| inprocess_median(&python.path, &script, lib));
        let (walk, with_lookups) = match local {
            Some((walk, with_lookups)) => {
                (format!("{walk:.0} ns"), format!("{with_lookups:.0} ns"))
            }
            None => ("n/a".to_owned(), "n/a".to_owned()),
        };
        println!(
            "{:<6} {:>17.1} µs {:>18} {:>24}",
            python.label(),
            remote,
            walk,
            with_lookups
        );
    }
    if testlib.is_none() {
        println!("(in-process: build python-frames-testlib in the same profile first)");
    }
}

/// The test cdylib next to this example's profile directory.
fn testlib_path() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let lib = exe.parent()?.parent()?.join("libpython_frames_testlib.so");
    lib.exists().then_some(lib)
}

fn remote_median(python: &Path, script: &Path) -> f64 {
    let mut child = Command::new(python)
        .arg(script)
        .arg("4")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the benchmark target");
    let mut ready = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut ready)
        .expect("ready line");
    // Give the threads time to reach the bottom of their stacks.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let process = PythonProcess::attach(child.id() as i32).expect("attach");
    let mut samples: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            let stacks = process.snapshot(128).expect("snapshot");
            std::hint::black_box(stacks);
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// `(walk alone, walk with cached lookups)` medians in ns.
fn inprocess_median(python: &Path, script: &Path, lib: &Path) -> Option<(f64, f64)> {
    let out = Command::new(python)
        .arg(script)
        .arg("0")
        .arg(lib)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut numbers = text.split_whitespace().map(|n| n.parse().ok());
    Some((numbers.next()??, numbers.next()??))
}
