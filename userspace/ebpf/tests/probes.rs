//! The allocation probes on real processes: a Python interpreter calls libc
//! `malloc`/`free` directly (through ctypes) a known number of times with a
//! known size, and the counters read back through the eBPF map must cover them.
//! Needs root (uprobes), like the eBPF mode itself.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use memray_ebpf::{AllocationCounters, MallocProbes};
use memray_tests::interpreters::reference_python;

const CALLS: u64 = 2_000;
/// An odd size, so the bytes cannot come from anything but this loop by chance.
const SIZE: u64 = 1_048_576 + 17;

/// Prints `ready` once everything it needs is loaded, then waits for a line on
/// stdin before it allocates: the probes are attached in between.
const WORKLOAD: &str = r#"
import ctypes, sys
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
calls, size = int(sys.argv[1]), int(sys.argv[2])
libc.free(libc.malloc(size))
print("ready", flush=True)
sys.stdin.readline()
for _ in range(calls):
    libc.free(libc.malloc(size))
"#;

struct Workload {
    child: Child,
    stdin: ChildStdin,
}

impl Workload {
    /// Starts the workload and waits until it is ready.
    fn start() -> Workload {
        let mut child = Command::new(reference_python().path)
            .args(["-c", WORKLOAD, &CALLS.to_string(), &SIZE.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start python");
        let stdin = child.stdin.take().expect("stdin");
        let stdout: ChildStdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read");
        assert_eq!(line.trim(), "ready", "the workload did not start");
        Workload { child, stdin }
    }

    fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid fits i32")
    }

    /// Lets it allocate and waits for it to exit.
    fn run_to_end(mut self) {
        writeln!(self.stdin, "go").expect("write to the workload");
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "the workload failed: {status}");
    }
}

/// Why these tests cannot run here, if they cannot.
fn unavailable() -> Option<&'static str> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("uprobes need root");
    }
    if !memray_ebpf::is_built() {
        return Some("built with MEMRAY_SKIP_EBPF (no eBPF toolchain)");
    }
    None
}

fn counters_after_run(attach_to: impl FnOnce(&Workload) -> i32) -> AllocationCounters {
    let workload = Workload::start();
    let probes = MallocProbes::attach(attach_to(&workload)).expect("attach the probes");
    workload.run_to_end();
    probes.counters().expect("read the counters")
}

#[test]
fn counts_every_malloc_and_free_of_the_attached_process() {
    if let Some(why) = unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    let counters = counters_after_run(Workload::pid);
    eprintln!("{CALLS} calls of {SIZE} bytes counted as {counters:?}");
    assert!(counters.malloc_calls >= CALLS, "{counters:?}");
    assert!(counters.free_calls >= CALLS, "{counters:?}");
    assert!(counters.malloc_bytes >= CALLS * SIZE, "{counters:?}");
    // The interpreter's own allocations around the loop are few and small.
    assert!(counters.malloc_calls < CALLS * 10, "{counters:?}");
    assert!(
        counters.malloc_bytes < CALLS * SIZE + (64 << 20),
        "{counters:?}"
    );
}

#[test]
fn ignores_other_processes() {
    if let Some(why) = unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    let bystander = Workload::start();
    let counters = counters_after_run(|_| bystander.pid());
    assert!(counters.malloc_bytes < SIZE, "{counters:?}");
    bystander.run_to_end();
}
