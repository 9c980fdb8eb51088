//! The allocation probes on real processes: a small C program, compiled here
//! with `cc`, makes exactly `CALLS` `malloc`/`free` pairs of `SIZE` bytes
//! between two sync points and nothing else, so the counters read before and
//! after that window must differ by exactly those numbers, and by nothing for
//! a process the probes are not attached to. Needs root (uprobes), like the
//! eBPF mode itself.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use memray_ebpf::{AllocationCounters, MallocProbes};
use memray_tests::skip;

const CALLS: u64 = 2_000;
/// An odd size, so the bytes cannot come from anything but this loop by chance.
const SIZE: u64 = 1_048_576 + 17;

/// Says `ready`, waits for a byte on stdin, makes `calls` malloc/free pairs
/// of `size` bytes, says `done` and waits for another byte. Only `read` and
/// `write` (no stdio, which allocates its buffers) around the loop; built
/// with -O0 -fno-builtin so that the compiler keeps every call.
const WORKLOAD: &str = r#"
#include <stdlib.h>
#include <unistd.h>

static void say(const char *line, size_t length) {
    if (write(1, line, length) != (ssize_t)length) _exit(3);
}

static void wait_for_go(void) {
    char byte;
    if (read(0, &byte, 1) != 1) _exit(4);
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    long calls = atol(argv[1]);
    size_t size = (size_t)atol(argv[2]);
    say("ready\n", 6);
    wait_for_go();
    for (long i = 0; i < calls; i++) {
        volatile char *block = malloc(size);
        if (block == NULL) _exit(5);
        block[0] = 1;
        free((void *)block);
    }
    say("done\n", 5);
    wait_for_go();
    return 0;
}
"#;

/// Compiles [`WORKLOAD`] into `dir`.
fn compile_workload(dir: &Path) -> PathBuf {
    let source = dir.join("workload.c");
    let program = dir.join("workload");
    std::fs::write(&source, WORKLOAD).expect("write the workload's source");
    let status = Command::new("cc")
        .args(["-O0", "-fno-builtin", "-Wall", "-Werror", "-o"])
        .arg(&program)
        .arg(&source)
        .status()
        .expect("run cc");
    assert!(status.success(), "compiling the workload failed: {status}");
    program
}

struct Workload {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Workload {
    /// Starts the workload and waits until it is ready.
    fn start(program: &Path) -> Workload {
        let mut child = Command::new(program)
            .args([CALLS.to_string(), SIZE.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the workload");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut workload = Workload {
            child,
            stdin,
            stdout,
        };
        workload.expect_line("ready");
        workload
    }

    fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid fits i32")
    }

    fn expect_line(&mut self, expected: &str) {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read the workload");
        assert_eq!(line.trim(), expected, "the workload's progress");
    }

    fn go(&mut self) {
        self.stdin.write_all(b"g").expect("write to the workload");
        self.stdin.flush().expect("flush");
    }

    /// Lets it make its allocations and waits until they are done.
    fn allocate(&mut self) {
        self.go();
        self.expect_line("done");
    }

    /// Lets it exit and checks that it succeeded.
    fn finish(mut self) {
        self.go();
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "the workload failed: {status}");
    }
}

/// What the probes counted while `during` ran.
fn counted(probes: &MallocProbes, during: impl FnOnce()) -> AllocationCounters {
    let before = probes.counters().expect("read the counters");
    during();
    let after = probes.counters().expect("read the counters");
    AllocationCounters {
        malloc_calls: after.malloc_calls - before.malloc_calls,
        malloc_bytes: after.malloc_bytes - before.malloc_bytes,
        free_calls: after.free_calls - before.free_calls,
    }
}

/// What one workload's window must count: every call, byte and free.
const EXACTLY_THE_WORKLOAD: AllocationCounters = AllocationCounters {
    malloc_calls: CALLS,
    malloc_bytes: CALLS * SIZE,
    free_calls: CALLS,
};

#[test]
fn counts_every_malloc_and_free_of_the_attached_process() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut workload = Workload::start(&compile_workload(dir.path()));
    let probes = MallocProbes::attach(workload.pid()).expect("attach the probes");
    let counters = counted(&probes, || workload.allocate());
    assert_eq!(counters, EXACTLY_THE_WORKLOAD);
    workload.finish();
}

#[test]
fn ignores_other_processes() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let program = compile_workload(dir.path());
    let mut attached = Workload::start(&program);
    let mut other = Workload::start(&program);
    let probes = MallocProbes::attach(attached.pid()).expect("attach the probes");
    let counters = counted(&probes, || other.allocate());
    assert_eq!(counters, AllocationCounters::default(), "another process");
    // The same probes do count the process they are attached to.
    let counters = counted(&probes, || attached.allocate());
    assert_eq!(counters, EXACTLY_THE_WORKLOAD, "the attached process");
    other.finish();
    attached.finish();
}
