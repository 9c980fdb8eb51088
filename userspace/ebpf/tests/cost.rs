//! What the probes add to an allocator call pair made by 1, 2 and 4 threads
//! at once: in the recorded process (a C loop, then a Python one whose stack
//! the probes walk) and in a process outside the pid set. Informative, not a
//! benchmark: run on a quiet machine with
//! `cargo test -p memray-ebpf --test cost -- --ignored --nocapture --test-threads=1`.
//!
//! The loops run on a private copy of libc: uprobes belong to a file, so
//! probes that other recordings on the machine placed for every process on
//! the system's libc do not trap in them.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use memray_ebpf::{LibcImage, Options};
use memray_tests::interpreters::reference_python;
use memray_tests::skip;
use python_frames::PythonProcess;
use support::{workload_binary, Recording, Workload};

/// Pairs of one round, shared by its threads. The records of a round fit in
/// the default ring buffer: nothing drains during it.
const PAIRS: usize = 100_000;
const THREADS: [usize; 3] = [1, 2, 4];
const ROUNDS: usize = 7;

/// `allocators.c`'s `loop` in Python: each round, the main thread and
/// THREADS - 1 others make PAIRS calloc/free pairs each (`bytes(4242)`,
/// above pymalloc's limit), four Python frames deep.
const PYTHON_LOOP: &str = r#"
import sys, threading
pairs, threads = int(sys.argv[1]), int(sys.argv[2])
start, end = threading.Barrier(threads), threading.Barrier(threads)
def allocate():
    for _ in range(pairs):
        bytes(4242)
def one_round():
    start.wait()
    allocate()
    end.wait()
def worker():
    while True:
        one_round()
for _ in range(threads - 1):
    threading.Thread(target=worker, daemon=True).start()
print("ready", flush=True)
while sys.stdin.buffer.read(1):
    one_round()
    print("done", flush=True)
"#;

/// A directory holding a copy of the libc this test runs on, for
/// `LD_LIBRARY_PATH`.
fn private_libc() -> &'static Path {
    static DIRECTORY: OnceLock<PathBuf> = OnceLock::new();
    DIRECTORY.get_or_init(|| {
        let libc = LibcImage::of_process(std::process::id()).expect("our own libc");
        let directory = tempfile::tempdir().expect("tempdir").keep();
        std::fs::copy(&libc.path, directory.join("libc.so.6")).expect("copy libc");
        directory
    })
}

/// CPU time of all the workload's threads, in nanoseconds: the machine may
/// be shared, so wall time would count other processes' turns too. Its
/// threads live as long as it does, so none of their time is missed.
fn cpu_ns(pid: u32) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("tasks");
    tasks
        .map(|task| {
            let schedstat = std::fs::read_to_string(task.expect("task").path().join("schedstat"))
                .expect("schedstat");
            schedstat
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .expect("run time")
        })
        .sum()
}

/// CPU nanoseconds per pair of one round of the loop.
fn round(workload: &mut Workload, pairs: usize) -> f64 {
    let before = cpu_ns(workload.pid());
    workload.allocate();
    (cpu_ns(workload.pid()) - before) as f64 / pairs as f64
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Which loop makes the pairs.
#[derive(Clone, Copy)]
enum Program<'a> {
    C,
    Python(&'a Path),
}

/// The loop of `PAIRS` pairs a round on `threads` threads, ready.
fn looping(program: Program, threads: usize) -> Workload {
    looping_pairs(program, threads, PAIRS)
}

/// The loop of `pairs` pairs a round on `threads` threads, ready.
fn looping_pairs(program: Program, threads: usize, pairs: usize) -> Workload {
    let counts = [(pairs / threads).to_string(), threads.to_string()];
    let mut command = match program {
        Program::C => {
            let mut command = Command::new(workload_binary());
            command.arg("loop");
            command
        }
        Program::Python(python) => {
            let mut command = Command::new(python);
            command.args(["-c", PYTHON_LOOP]);
            command
        }
    };
    command.args(counts).env("LD_LIBRARY_PATH", private_libc());
    Workload::spawn(&mut command)
}

/// Prints the median cost per pair of each side, and what each adds to the first.
fn report(what: &str, sides: Vec<(&str, Vec<f64>)>) {
    let medians: Vec<(&str, f64)> = sides
        .into_iter()
        .map(|(name, costs)| (name, median(costs)))
        .collect();
    let base = medians[0].1;
    let figures: Vec<String> = medians
        .iter()
        .enumerate()
        .map(|(i, (name, cost))| match i {
            0 => format!("{cost:.0} ns {name}"),
            _ => format!("{cost:.0} ns {name} (+{:.2} µs)", (cost - base) / 1000.0),
        })
        .collect();
    eprintln!("{what}: {}", figures.join(", "));
}

/// `ROUNDS` rounds of the attached `workload`, each one's records drained;
/// then detached.
fn recorded_rounds(recording: &mut Recording, workload: &mut Workload) -> Vec<f64> {
    let costs = (0..ROUNDS)
        .map(|_| {
            let cost = round(workload, PAIRS);
            assert_eq!(recording.drain().len(), 2 * PAIRS);
            cost
        })
        .collect();
    recording.session.detach(workload.pid()).expect("detach");
    costs
}

/// A twin never probed (the probes are scoped to the recorded process: the
/// twin does not trap), then the recorded process.
#[test]
#[ignore = "a measurement"]
fn cost_per_malloc_free_pair() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let mut recording = Recording::start(Options::default());
    for threads in THREADS {
        let mut twin = looping(Program::C, threads);
        let mut workload = looping(Program::C, threads);
        let pid = workload.pid();
        let off: Vec<f64> = (0..ROUNDS).map(|_| round(&mut twin, PAIRS)).collect();
        recording.session.attach(pid, false).expect("attach");
        let on = recorded_rounds(&mut recording, &mut workload);
        report(
            &format!("malloc+free pair, {threads} threads"),
            vec![("without probes", off), ("with them", on)],
        );
        workload.finish();
        twin.finish();
    }
}

/// Copies of one round fit in the native stacks' ring: nothing drains during it.
const NATIVE_PAIRS: usize = 2_000;

/// `--native`: each allocation also copies its stack (a shallow one: the
/// C loop on the main thread).
#[test]
#[ignore = "a measurement"]
fn cost_per_malloc_free_pair_with_native_stacks() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let mut recording = Recording::start(Options {
        native_stacks: true,
        ..Options::default()
    });
    let mut copies = recording.session.native_copies().expect("the copies' ring");
    let mut twin = looping_pairs(Program::C, 1, NATIVE_PAIRS);
    let mut workload = looping_pairs(Program::C, 1, NATIVE_PAIRS);
    let pid = workload.pid();
    recording.session.attach(pid, false).expect("attach");
    recording.session.record_native_stacks(pid).expect("flag");
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        off.push(round(&mut twin, NATIVE_PAIRS));
        on.push(round(&mut workload, NATIVE_PAIRS));
        assert_eq!(recording.drain().len(), 2 * NATIVE_PAIRS);
        assert_eq!(copies.drain(), NATIVE_PAIRS, "every malloc's copy");
    }
    report(
        "malloc+free pair, --native",
        vec![("without probes", off), ("with them", on)],
    );
    workload.finish();
    twin.finish();
}

/// The same in Python, recorded with and without its stack walked (a
/// process whose interpreter is not registered has none).
#[test]
#[ignore = "a measurement"]
fn cost_per_python_calloc_free_pair() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let python = reference_python().path;
    let mut recording = Recording::start(Options::default());
    for threads in THREADS {
        let mut twin = looping(Program::Python(&python), threads);
        let mut unwalked = looping(Program::Python(&python), threads);
        let mut walked = looping(Program::Python(&python), threads);
        let session = &mut recording.session;
        session.attach(unwalked.pid(), false).expect("attach");
        session.attach(walked.pid(), false).expect("attach");
        let process = PythonProcess::attach(walked.pid() as i32).expect("read the interpreter");
        session.register_python(&process).expect("register");
        let (mut off, mut on, mut with_stacks) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            off.push(round(&mut twin, PAIRS));
            on.push(round(&mut unwalked, PAIRS));
            recording.drain();
            with_stacks.push(round(&mut walked, PAIRS));
            recording.drain();
        }
        let session = &mut recording.session;
        session.detach(unwalked.pid()).expect("detach");
        session.detach(walked.pid()).expect("detach");
        report(
            &format!("Python calloc+free pair, {threads} threads"),
            vec![
                ("without probes", off),
                ("with them, no stack", on),
                ("with the Python stack", with_stacks),
            ],
        );
        for workload in [walked, unwalked, twin] {
            workload.finish();
        }
    }
}

/// A process outside the pid set, on the libc of one recorded following
/// its forks: what the probes placed for that one cost it.
#[test]
#[ignore = "a measurement"]
fn cost_outside_the_pid_set() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let mut outside: Vec<Workload> = THREADS
        .into_iter()
        .map(|threads| looping(Program::C, threads))
        .collect();
    let recorded = looping(Program::C, 1);
    let rounds = |outside: &mut Vec<Workload>| -> Vec<Vec<f64>> {
        let mut costs = vec![Vec::new(); THREADS.len()];
        for _ in 0..ROUNDS {
            for (workload, costs) in outside.iter_mut().zip(&mut costs) {
                costs.push(round(workload, PAIRS));
            }
        }
        costs
    };
    // Before any attach: a detached process's probes stay placed, inert.
    let off = rounds(&mut outside);
    let mut recording = Recording::start(Options::default());
    recording
        .session
        .attach(recorded.pid(), true)
        .expect("attach following forks");
    let on = rounds(&mut outside);
    assert!(recording.drain().is_empty(), "the outside process recorded");
    for ((threads, off), on) in THREADS.into_iter().zip(off).zip(on) {
        report(
            &format!("malloc+free pair outside the pid set, {threads} threads"),
            vec![("alone", off), ("beside a recording following forks", on)],
        );
    }
    outside.into_iter().for_each(Workload::finish);
    recorded.finish();
}
