#![cfg(target_os = "linux")]
//! The eBPF mode beyond one process: `run --ebpf --follow-exec` records
//! every Python program the script starts through exec, each into its own
//! capture, checked with memray 1.20's FileReader.

use std::path::Path;
use std::process::Command;

use memray_tests::ebpf_captures::{capture_of, out_bin_captures, run_following_execs};
use memray_tests::interpreters::{self, Interpreter};
use memray_tests::reference::check_with_memray;
use memray_tests::run::succeeded;
use memray_tests::{paths, skip};

/// The child program: four blocks of 222,222 bytes at line 3, in `child_work`.
const CHILD: &str = "import os\n\
    def child_work():\n\
    \x20   return [bytearray(222221) for _ in range(4)]\n\
    blobs = child_work()\n\
    print(os.getpid())\n";

/// memray 1.20 reads `out.bin.<pid>` for each pid given: the capture is that
/// process's and holds the child's four blocks at line 3 of `child.py`, in
/// `child_work` (the comprehension is a frame of its own before 3.12); the
/// parent's `out.bin` has its own three blocks and none of the children's.
const CHECK_CHILDREN: &str = "import sys\n\
    from memray import FileReader\n\
    def blocks(path, size):\n\
    \x20   return [r.stack_trace() for r in FileReader(path).get_allocation_records() if r.size == size]\n\
    assert blocks('out.bin', 222222) == [], 'the parent has the children allocations'\n\
    parent = blocks('out.bin', 111111)\n\
    assert len(parent) == 3 and all('parent_work' in [f[0] for f in s] for s in parent), parent\n\
    for pid in sys.argv[1:]:\n\
    \x20   reader = FileReader(f'out.bin.{pid}')\n\
    \x20   assert reader.metadata.pid == int(pid), reader.metadata.pid\n\
    \x20   found = blocks(f'out.bin.{pid}', 222222)\n\
    \x20   assert len(found) == 4, (pid, found)\n\
    \x20   for stack in found:\n\
    \x20       assert stack[0][1].endswith('child.py') and stack[0][2] == 3, (pid, stack)\n\
    \x20       assert 'child_work' in [f[0] for f in stack], (pid, stack)\n";

/// A script that runs `child.py` with `sys.executable`, with another CPython
/// (3.14 from the project's cache maps its own libc: the probes are placed
/// on it too), and through `sh` (not Python: no capture of its own, but its
/// Python child is followed): each Python child's capture holds its own
/// allocations at the right lines, and there is no other capture.
#[test]
fn follow_exec_records_each_python_child_in_its_own_capture() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let python = interpreters::reference_python();
    let other = interpreters::find(3, 14).filter(|other| other.version != python.version);
    if other.is_none() {
        skip::skip_part(
            "another CPython with its own libc",
            "CPython 3.14 is not installed (cargo xtask setup)",
        );
    }
    let workdir = tempfile::tempdir().expect("tempdir");
    std::fs::write(workdir.path().join("child.py"), CHILD).expect("write child.py");
    let parent = "import subprocess, sys\n\
        def parent_work():\n\
        \x20   return [bytearray(111110) for _ in range(3)]\n\
        kept = parent_work()\n\
        def run(command):\n\
        \x20   return subprocess.run(command, check=True, capture_output=True, text=True).stdout.split()\n\
        pids = run([sys.executable, 'child.py'])\n\
        pids += run(['sh', '-c', sys.executable + ' child.py; true'])\n\
        for other in sys.argv[1:]:\n\
        \x20   pids += run([other, 'child.py'])\n\
        print(' '.join(pids))\n";
    let others: Vec<&Path> = other
        .iter()
        .map(|i: &Interpreter| i.path.as_path())
        .collect();
    let others: Vec<&std::ffi::OsStr> = others.iter().map(|p| p.as_os_str()).collect();
    let output = run_following_execs(&python.path, workdir.path(), parent, &others);
    succeeded(&output, "run --ebpf --follow-exec");
    let children: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(children.len(), 2 + others.len(), "{output:?}");
    let captures = out_bin_captures(workdir.path());
    let mut expected: Vec<String> = std::iter::once("out.bin".to_string())
        .chain(children.iter().map(|pid| format!("out.bin.{pid}")))
        .collect();
    expected.sort();
    assert_eq!(
        captures, expected,
        "one capture per Python process, none for sh"
    );
    let children: Vec<&str> = children.iter().map(String::as_str).collect();
    check_with_memray(workdir.path(), CHECK_CHILDREN, &children, "the captures");
}

/// A Python process for `attach --all`: prints `ready`, waits for the file
/// `go`, allocates three blocks of `size` bytes in `work` (line 3), prints
/// `done`, and exits once the file `stop` exists. `role` is in its command
/// line for `--name`.
const WORKER: &str = "import os, sys, time\n\
    def work(size):\n\
    \x20   return [bytearray(size - 1) for _ in range(3)]\n\
    print('ready', flush=True)\n\
    while not os.path.exists('go'): time.sleep(0.01)\n\
    kept = work(int(sys.argv[2]))\n\
    print('done', flush=True)\n\
    while not os.path.exists('stop'): time.sleep(0.01)\n";

/// memray 1.20 reads `sys.argv[1]` (a capture) of pid `sys.argv[2]`: three
/// blocks of `sys.argv[3]` bytes at line 3 of `worker.py`, in `work`.
const CHECK_WORKER: &str = "import sys\n\
    from memray import FileReader\n\
    reader = FileReader(sys.argv[1])\n\
    assert reader.metadata.pid == int(sys.argv[2]), reader.metadata.pid\n\
    found = [r.stack_trace() for r in reader.get_allocation_records() if r.size == int(sys.argv[3])]\n\
    assert len(found) == 3, found\n\
    for stack in found:\n\
    \x20   assert stack[0][1].endswith('worker.py') and stack[0][2] == 3, stack\n\
    \x20   assert 'work' in [f[0] for f in stack], stack\n";

struct Worker {
    child: std::process::Child,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    size: u64,
}

impl Worker {
    fn start(python: &Interpreter, dir: &Path, role: &str, size: u64) -> Worker {
        let mut child = Command::new(&python.path)
            .args(["worker.py", role, &size.to_string()])
            .current_dir(dir)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start a worker");
        let stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut worker = Worker {
            child,
            stdout,
            size,
        };
        worker.expect("ready");
        worker
    }

    fn expect(&mut self, line: &str) {
        let mut read = String::new();
        std::io::BufRead::read_line(&mut self.stdout, &mut read).expect("read the worker");
        assert_eq!(read.trim_end(), line, "worker {}", self.child.id());
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// `attach --ebpf --all --name role=target -o captures`: three running
/// Python processes of two versions and one started after the attach each
/// get a capture holding their own blocks at the right line; a process whose
/// command line does not match gets none; Ctrl-C ends it with one line per
/// process, and the processes go on.
#[test]
fn attach_all_records_every_matching_python_process() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let pythons = interpreters::supported();
    let first = interpreters::reference_python();
    let Some(second) = pythons.iter().rev().find(|i| i.version != first.version) else {
        skip::skip_part("a second CPython version", "only one CPython is installed");
        return;
    };
    let workdir = tempfile::tempdir().expect("tempdir");
    let dir = workdir.path();
    std::fs::write(dir.join("worker.py"), WORKER).expect("write worker.py");
    let mut workers = vec![
        Worker::start(&first, dir, "role=target", 300_011),
        Worker::start(second, dir, "role=target", 300_023),
        Worker::start(&first, dir, "role=target", 300_037),
    ];
    let mut other = Worker::start(&first, dir, "role=other", 300_041);
    let memray = attach_all(dir, "role=target");
    let captures = dir.join("captures");
    wait_for("the running workers' captures", || {
        workers
            .iter()
            .all(|w| capture_of(&captures, w.pid()).is_some())
    });
    let late = Worker::start(second, dir, "role=target", 300_053);
    wait_for("the late worker's capture", || {
        capture_of(&captures, late.pid()).is_some()
    });
    workers.push(late);
    std::fs::write(dir.join("go"), "").expect("go");
    for worker in workers.iter_mut().chain([&mut other]) {
        worker.expect("done");
    }
    // SAFETY: kill has no memory arguments; the pid is our child's.
    unsafe { libc::kill(memray.id() as i32, libc::SIGINT) };
    let output = memray.wait_with_output().expect("memray attach --all");
    std::fs::write(dir.join("stop"), "").expect("stop");
    succeeded(&output, "attach --ebpf --all");
    for worker in workers.iter_mut().chain([&mut other]) {
        assert!(worker.child.wait().expect("wait").success());
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(capture_of(&captures, other.pid()).is_none(), "{stdout}");
    for worker in &workers {
        let capture = capture_of(&captures, worker.pid()).expect("a capture");
        let line = stdout
            .lines()
            .find(|line| line.split_whitespace().next() == Some(&worker.pid().to_string()))
            .unwrap_or_else(|| panic!("no summary line for {}: {stdout}", worker.pid()));
        assert!(line.contains("worker.py role=target"), "{line}");
        check_with_memray(
            dir,
            CHECK_WORKER,
            &[
                &capture.to_string_lossy(),
                &worker.pid().to_string(),
                &worker.size.to_string(),
            ],
            &format!(
                "the capture of worker {} ({} bytes; {line})",
                worker.pid(),
                worker.size
            ),
        );
    }
}

/// Debian's jemalloc and mimalloc preloaded under a Python script: with
/// `--allocator jemalloc` / `mimalloc` the probes on their `malloc` record
/// the script's four blocks with their size and Python stack, once each
/// (memray 1.20 reads them); glibc's probes alone see none of them.
#[test]
fn allocator_shorthands_record_jemalloc_and_mimalloc() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built())
        || !skip::needs(&[skip::Requirement::ThirdPartyAllocators])
    {
        return;
    }
    let python = interpreters::reference_python();
    let workdir = tempfile::tempdir().expect("tempdir");
    let dir = workdir.path();
    std::fs::write(
        dir.join("blocks.py"),
        "def blocks():\n    return [bytearray(333332) for _ in range(4)]\nkept = blocks()\n",
    )
    .expect("write blocks.py");
    let check = "import sys\n\
        from memray import AllocatorType, FileReader\n\
        found = [(r.allocator, r.stack_trace()) for r in FileReader(sys.argv[1]).get_allocation_records() if r.size == 333333]\n\
        assert len(found) == int(sys.argv[2]), found\n\
        for allocator, stack in found:\n\
        \x20   assert int(allocator) == int(AllocatorType.MALLOC), allocator\n\
        \x20   assert stack[0][1].endswith('blocks.py') and stack[0][2] == 2, stack\n\
        \x20   assert 'blocks' in [f[0] for f in stack], stack\n";
    let record = |library: &Path, flags: &[&str], capture: &str| {
        let output = Command::new(paths::memray_bin())
            .args(["run", "--ebpf", "-q", "-f", "-o", capture])
            .args(flags)
            .arg("--python")
            .arg(&python.path)
            .arg("blocks.py")
            .env("LD_PRELOAD", library)
            .current_dir(dir)
            .output()
            .expect("run memray");
        succeeded(&output, capture);
    };
    for (shorthand, soname) in [
        ("jemalloc", skip::THIRD_PARTY_ALLOCATORS[0]),
        ("mimalloc", skip::THIRD_PARTY_ALLOCATORS[1]),
    ] {
        let library = skip::shared_library(soname).expect("installed");
        let capture = format!("{shorthand}.bin");
        record(&library, &["--allocator", shorthand], &capture);
        check_with_memray(dir, check, &[&capture, "4"], shorthand);
    }
    let jemalloc = skip::shared_library(skip::THIRD_PARTY_ALLOCATORS[0]).expect("installed");
    record(&jemalloc, &[], "glibc-only.bin");
    check_with_memray(dir, check, &["glibc-only.bin", "0"], "without --allocator");
}

/// A pre-fork server under `attach --all`: a matching Python process forks
/// a pool of four workers after the attach; each worker's capture
/// (`memray-<name>.<worker pid>.bin`) holds the blocks of the tasks it ran,
/// at their line in `work`.
#[test]
fn attach_all_records_the_workers_a_server_forks() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let python = interpreters::reference_python();
    let workdir = tempfile::tempdir().expect("tempdir");
    let dir = workdir.path();
    let server = "import multiprocessing, os, sys, time\n\
        def work(n):\n\
        \x20   blocks = [bytearray(123456) for _ in range(2)]\n\
        \x20   time.sleep(0.2)\n\
        \x20   return os.getpid()\n\
        print('ready', flush=True)\n\
        while not os.path.exists('go'): time.sleep(0.01)\n\
        with multiprocessing.get_context('fork').Pool(4) as pool:\n\
        \x20   pids = sorted(set(pool.map(work, range(8), chunksize=1)))\n\
        print(' '.join(map(str, pids)), flush=True)\n\
        while not os.path.exists('stop'): time.sleep(0.01)\n";
    std::fs::write(dir.join("server.py"), server).expect("write server.py");
    let mut child = Command::new(&python.path)
        .args(["server.py", "role=server"])
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the server");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).expect("ready");
    assert_eq!(line, "ready\n");
    let memray = attach_all(dir, "role=server");
    let captures = dir.join("captures");
    wait_for("the server's capture", || {
        capture_of(&captures, child.id()).is_some()
    });
    std::fs::write(dir.join("go"), "").expect("go");
    line.clear();
    std::io::BufRead::read_line(&mut stdout, &mut line).expect("the workers");
    let workers: Vec<u32> = line
        .split_whitespace()
        .map(|pid| pid.parse().expect("a pid"))
        .collect();
    assert!(!workers.is_empty() && workers.len() <= 4, "{line}");
    // Each capture ends at its worker's exit, or with the recording.
    wait_for("the workers' captures", || {
        workers.iter().all(|&w| capture_of(&captures, w).is_some())
    });
    // SAFETY: kill has no memory arguments; the pid is our child's.
    unsafe { libc::kill(memray.id() as i32, libc::SIGINT) };
    let output = memray.wait_with_output().expect("memray attach --all");
    std::fs::write(dir.join("stop"), "").expect("stop");
    assert!(child.wait().expect("wait").success());
    succeeded(&output, "attach --ebpf --all");
    let check = "import sys\n\
        from memray import FileReader\n\
        reader = FileReader(sys.argv[1])\n\
        assert reader.metadata.pid == int(sys.argv[2]), reader.metadata.pid\n\
        found = [r.stack_trace() for r in reader.get_allocation_records() if r.size == 123457]\n\
        assert found and len(found) % 2 == 0, found\n\
        for stack in found:\n\
        \x20   assert stack[0][1].endswith('server.py') and stack[0][2] == 3, stack\n\
        \x20   assert 'work' in [f[0] for f in stack], stack\n";
    for worker in workers {
        let capture = capture_of(&captures, worker).expect("a capture");
        check_with_memray(
            dir,
            check,
            &[&capture.to_string_lossy(), &worker.to_string()],
            "a worker's capture",
        );
    }
}

/// `memray attach --ebpf --all --name NAME -o captures`, run in `dir`.
fn attach_all(dir: &Path, name: &str) -> std::process::Child {
    Command::new(paths::memray_bin())
        .args([
            "attach", "--ebpf", "--all", "--name", name, "-o", "captures",
        ])
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start memray attach --all")
}
