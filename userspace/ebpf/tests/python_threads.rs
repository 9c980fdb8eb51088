//! A Python process's libc allocations from 8 threads, each seen with the
//! thread's own id.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use memray_ebpf::{Allocator, Options};
use memray_tests::interpreters::reference_python;
use memray_tests::skip;
use support::Recording;

const THREADS: u64 = 8;
const CALLS: usize = 200;
/// Thread i allocates BASE + i bytes: sizes nothing else asks for.
const BASE: u64 = 777_001;

/// Starts the threads, prints their native ids, waits for a line, then each
/// thread mallocs and frees its size CALLS times through ctypes.
const SCRIPT: &str = r#"
import ctypes, sys, threading
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
threads, calls, base = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
go = threading.Event()
started = threading.Barrier(threads + 1)
ids = [None] * threads
def work(i):
    ids[i] = threading.get_native_id()
    started.wait()
    go.wait()
    for _ in range(calls):
        libc.free(libc.malloc(base + i))
workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
for w in workers: w.start()
started.wait()
print(" ".join(map(str, ids)), flush=True)
sys.stdin.readline()
go.set()
for w in workers: w.join()
"#;

#[test]
fn eight_threads_each_with_its_own_tid() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let mut child = Command::new(reference_python().path)
        .args(["-c", SCRIPT])
        .args([THREADS, CALLS as u64, BASE].map(|n| n.to_string()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start python");
    let pid = child.id();
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the thread ids");
    let tids: Vec<u32> = line
        .split_whitespace()
        .map(|id| id.parse().expect("a thread id"))
        .collect();
    assert_eq!(tids.len(), THREADS as usize);

    let mut recording = Recording::start(Options::default());
    recording.session.attach(pid, false).expect("attach");
    writeln!(child.stdin.take().expect("stdin"), "go").expect("let it run");
    assert!(child.wait().expect("wait").success());
    let events = recording.drain();

    for (i, tid) in tids.iter().enumerate() {
        let size = BASE + i as u64;
        let mallocs: Vec<_> = events
            .iter()
            .filter(|e| e.allocator == Allocator::Malloc && e.size == size)
            .collect();
        assert_eq!(mallocs.len(), CALLS, "thread {i}");
        assert!(
            mallocs.iter().all(|e| e.tid == *tid && e.tgid == pid),
            "thread {i}: {mallocs:?}"
        );
        let freed = events
            .iter()
            .filter(|e| {
                e.allocator == Allocator::Free
                    && e.tid == *tid
                    && mallocs.iter().any(|m| m.address == e.address)
            })
            .count();
        assert!(freed >= CALLS, "thread {i}: {freed} frees");
    }
    assert_eq!(recording.session.drops(pid).expect("drops"), 0);
}
