// eBPF is a feature of the Linux kernel.
#![cfg(target_os = "linux")]

//! `sudo memray run --ebpf` and `memray attach --ebpf`: the probes record
//! from outside the process what the in-process tracker records from inside
//! (same allocators, sizes and Python stacks, read by memray 1.20's
//! FileReader), and attaching leaves the process as it was.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use memray_tests::interpreters::{self, Interpreter};
use memray_tests::reference::check_with_memray;
use memray_tests::run::succeeded;
use memray_tests::tracker_fixtures::{fixtures, test_extension};
use memray_tests::{paths, reference, skip};

fn scenario(name: &str) -> PathBuf {
    fixtures().join("scenarios").join(format!("{name}.py"))
}

/// `memray run [--ebpf] -q -f -o capture scenario run case` with the test
/// extension on the path.
fn memray_run(python: &Interpreter, ebpf: bool, name: &str, case: &str, capture: &Path) -> Output {
    let mut command = Command::new(paths::memray_bin());
    command.arg("run");
    if ebpf {
        command.arg("--ebpf");
    }
    command
        .arg("--python")
        .arg(&python.path)
        .args(["-q", "-f", "-o"])
        .arg(capture)
        .arg(scenario(name))
        .args(["run", case])
        .env(
            "PYTHONPATH",
            std::env::join_paths([test_extension(python), fixtures()]).unwrap(),
        )
        .output()
        .expect("run memray")
}

/// The C test extension's allocations, through `run --ebpf` and through the
/// in-process tracker: the same allocators, sizes and Python stacks
/// (function, file, line), in the same order, on each CPython here.
#[test]
fn run_ebpf_records_what_the_in_process_tracker_records() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let reference = reference::reference_memray();
    let workdir = tempfile::tempdir().expect("tempdir");
    let programs = [
        ("traceback", "default"),
        // A thread that allocates in C without the GIL has its own stack.
        ("threads", "pthread"),
    ];
    for python in interpreters::all_for_tests() {
        for (name, case) in programs {
            let label = format!("{name} [{case}] on Python {}", python.label());
            let ours = workdir.path().join(format!("{name}-ebpf.bin"));
            let inprocess = workdir.path().join(format!("{name}-tracker.bin"));
            succeeded(
                &memray_run(&python, true, name, case, &ours),
                &format!("run --ebpf of {label}"),
            );
            succeeded(
                &memray_run(&python, false, name, case, &inprocess),
                &format!("run of {label}"),
            );
            let compared = Command::new(&reference.python)
                .arg(fixtures().join("compare_captures.py"))
                .arg(&ours)
                .arg(&inprocess)
                .arg(scenario(name))
                .env("PYTHONPATH", fixtures())
                .output()
                .expect("compare");
            succeeded(&compared, &format!("{label}: the captures differ"));
        }
    }
}

/// Threads are named from memray's sources, read from outside: the
/// `threading.Thread` name given before start, set inside the thread, set
/// from outside, then a `prctl` name (S7, paced so that each rename is seen
/// between two allocations), on each CPython here.
#[test]
fn threads_are_named_as_memray_names_them() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let reference = reference::reference_memray();
    let workdir = tempfile::tempdir().expect("tempdir");
    for python in interpreters::all_for_tests() {
        let label = format!("thread names on Python {}", python.label());
        let capture = workdir.path().join("names.bin");
        succeeded(
            &memray_run(&python, true, "threads", "names_paced", &capture),
            &format!("run --ebpf of {label}"),
        );
        let checked = Command::new(&reference.python)
            .arg(scenario("threads"))
            .args([
                "check".as_ref(),
                capture.as_os_str(),
                "names_paced".as_ref(),
            ])
            .env("PYTHONPATH", fixtures())
            .output()
            .expect("check");
        succeeded(&checked, &label);
    }
}

/// Threads that end within a millisecond, before their records are taken
/// in, keep their names while their `Thread` objects live
/// (`threading._dangling`).
#[test]
fn threads_that_end_at_once_keep_their_names() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let workdir = tempfile::tempdir().expect("tempdir");
    let program = "import threading, time\n\
        quick = [threading.Thread(target=bytearray, args=(200000 + i,), name=f'quick {i}') for i in range(4)]\n\
        for thread in quick:\n\
        \x20   thread.start()\n\
        \x20   thread.join()\n\
        time.sleep(0.2)\n";
    let output = run_ebpf_code(workdir.path(), &[], &[], program, &[]);
    succeeded(&output, "run --ebpf of threads that end at once");
    let check = "from memray import FileReader\n\
        names = sorted((r.size, r.thread_name) for r in FileReader('out.bin').get_allocation_records() if 200000 < r.size < 200005)\n\
        assert names == [(200001 + i, f'quick {i}') for i in range(4)], names\n";
    check_with_memray(workdir.path(), check, &[], "the quick threads' names");
}

/// A program that imports `threading` late has its main thread named from
/// then on (`sys.modules` is looked through again once it has grown).
#[test]
fn the_main_thread_is_named_once_threading_is_imported() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let workdir = tempfile::tempdir().expect("tempdir");
    let program = "import time\n\
        time.sleep(0.3)\n\
        import threading\n\
        time.sleep(0.3)\n\
        keep = bytearray(123456)\n";
    let output = run_ebpf_code(workdir.path(), &[], &[], program, &[]);
    succeeded(&output, "run --ebpf of a late import of threading");
    let check = "from memray import FileReader\n\
        names = [r.thread_name for r in FileReader('out.bin').get_allocation_records() if r.size == 123457]\n\
        assert names == ['MainThread'], names\n";
    check_with_memray(workdir.path(), check, &[], "the main thread's name");
}

/// The program runs as the user who ran sudo, and the capture is theirs.
#[test]
fn the_program_and_the_capture_belong_to_the_invoking_user() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let Some(python) = interpreters::for_every_user() else {
        skip::skip_part(
            "a python3 other users may run",
            "every python3 on PATH is in a directory only root may enter",
        );
        return;
    };
    let workdir = tempfile::tempdir().expect("tempdir");
    // Readable and writable by the unprivileged user.
    std::fs::set_permissions(
        workdir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .expect("chmod");
    std::fs::write(
        workdir.path().join("ids.py"),
        "import os\nprint(os.getuid(), os.getgid())\n",
    )
    .expect("write the script");
    let capture = workdir.path().join("ids.bin");
    let output = Command::new(paths::memray_bin())
        .args(["run", "--ebpf", "-q", "-o"])
        .arg(&capture)
        .arg("--python")
        .arg(&python)
        .arg("ids.py")
        .env("SUDO_UID", "65534")
        .env("SUDO_GID", "65534")
        .current_dir(workdir.path())
        .output()
        .expect("run memray");
    succeeded(&output, "run --ebpf as nobody");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "65534 65534\n");
    let owner = std::os::unix::fs::MetadataExt::uid(&capture.metadata().expect("the capture"));
    assert_eq!(owner, 65534);
}

/// The program's exit status is memray's.
#[test]
fn the_programs_exit_status_is_passed_on() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let python = interpreters::reference_python();
    let workdir = tempfile::tempdir().expect("tempdir");
    let output = Command::new(paths::memray_bin())
        .args(["run", "--ebpf", "-q", "-o", "out.bin", "--python"])
        .arg(&python.path)
        .args(["-c", "import sys; sys.exit(7)"])
        .current_dir(workdir.path())
        .output()
        .expect("run memray");
    assert_eq!(output.status.code(), Some(7), "{output:?}");
}

/// A multiprocessing pool forked by the program: with `--follow-fork` each
/// worker gets its own capture, named as in-process memray names it
/// (`<output>.<child pid>`), holding the allocations of the tasks it ran
/// with their Python stacks; the parent's capture has none of them.
#[test]
fn follow_fork_writes_a_capture_per_pool_worker() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let workdir = tempfile::tempdir().expect("tempdir");
    let program = "import multiprocessing, os, time\n\
        def work(n):\n\
        \x20   blobs = [bytearray(123457) for _ in range(5)]\n\
        \x20   time.sleep(0.1)\n\
        \x20   return os.getpid()\n\
        with multiprocessing.get_context('fork').Pool(2) as pool:\n\
        \x20   workers = sorted(set(pool.map(work, range(8), chunksize=1)))\n\
        \x20   pool.close()\n\
        \x20   pool.join()\n\
        print(' '.join(map(str, workers)))\n";
    let output = run_ebpf_code(workdir.path(), &[], &["--follow-fork"], program, &[]);
    succeeded(&output, "run --ebpf --follow-fork of a pool");
    let workers = printed_words(&output);
    assert!(!workers.is_empty(), "{output:?}");
    let check = "import sys\n\
        from memray import FileReader\n\
        def blobs(path):\n\
        \x20   return [[f[0] for f in r.stack_trace()] for r in FileReader(path).get_allocation_records() if r.size == 123458]\n\
        assert blobs('out.bin') == [], 'the parent has the workers allocations'\n\
        for pid in sys.argv[1:]:\n\
        \x20   reader = FileReader(f'out.bin.{pid}')\n\
        \x20   assert reader.metadata.pid == int(pid), reader.metadata.pid\n\
        \x20   found = blobs(f'out.bin.{pid}')\n\
        \x20   assert found and len(found) % 5 == 0 and all('work' in stack for stack in found), (pid, found)\n";
    let workers: Vec<&str> = workers.iter().map(String::as_str).collect();
    check_with_memray(workdir.path(), check, &workers, "the workers' captures");
}

/// Forked children that allocate and exit at once (`os._exit`, well within
/// the 10 ms between drains) still get their captures, with their stacks:
/// each is held at `_exit` until its records are taken in.
#[test]
fn follow_fork_captures_children_that_exit_at_once() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let workdir = tempfile::tempdir().expect("tempdir");
    let program = "import os\n\
        def child():\n\
        \x20   keep = bytearray(77777)\n\
        \x20   os._exit(0)\n\
        children = []\n\
        for _ in range(5):\n\
        \x20   pid = os.fork()\n\
        \x20   if pid == 0:\n\
        \x20       child()\n\
        \x20   children.append(pid)\n\
        \x20   os.waitpid(pid, 0)\n\
        print(' '.join(map(str, children)))\n";
    let output = run_ebpf_code(workdir.path(), &[], &["--follow-fork"], program, &[]);
    succeeded(&output, "run --ebpf --follow-fork of short-lived children");
    let children = printed_words(&output);
    assert_eq!(children.len(), 5, "{output:?}");
    let check = "import sys\n\
        from memray import FileReader\n\
        for pid in sys.argv[1:]:\n\
        \x20   stacks = [[f[0] for f in r.stack_trace()] for r in FileReader(f'out.bin.{pid}').get_allocation_records() if r.size == 77778]\n\
        \x20   assert len(stacks) == 1 and stacks[0][0] == 'child', (pid, stacks)\n";
    let children: Vec<&str> = children.iter().map(String::as_str).collect();
    check_with_memray(workdir.path(), check, &children, "the children's captures");
}

/// A followed child's lost records are counted like its parent's: printed
/// with its capture's name, and noted in that capture.
#[test]
fn records_a_followed_child_lost_are_counted_in_its_capture() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let workdir = tempfile::tempdir().expect("tempdir");
    let program = "import os\n\
        pid = os.fork()\n\
        if pid == 0:\n\
        \x20   for _ in range(200000):\n\
        \x20       bytearray(5000)\n\
        \x20   os._exit(0)\n\
        os.waitpid(pid, 0)\n\
        print(pid)\n";
    let output = run_ebpf_code(
        workdir.path(),
        &[("MEMRAY_EBPF_RING_BYTES", "4096")],
        &["--follow-fork"],
        program,
        &[],
    );
    succeeded(&output, "run --ebpf --follow-fork with a tiny ring buffer");
    let child = printed_words(&output).concat();
    let capture = format!("out.bin.{child}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lost: u64 = stderr
        .lines()
        .find(|line| line.ends_with(&format!("; {capture} misses them")))
        .and_then(|line| line.split_once("warning: "))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("no lost-records warning for {capture}: {stderr}"));
    assert!(lost > 0, "{stderr}");
    let mut reader =
        memray_format::CaptureReader::open(workdir.path().join(&capture)).expect("our reader");
    while reader.next_record().expect("records").is_some() {}
    assert_eq!(reader.lost_records(), Some(lost), "{stderr}");
}

/// The words the program printed (the pids of its children).
fn printed_words(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// `run --ebpf -q -f -o out.bin flags… -c program args…` in `dir`, with `env`.
fn run_ebpf_code(
    dir: &Path,
    env: &[(&str, &str)],
    flags: &[&str],
    program: &str,
    args: &[&str],
) -> Output {
    let python = interpreters::reference_python();
    Command::new(paths::memray_bin())
        .args(["run", "--ebpf", "-q", "-f", "-o", "out.bin"])
        .args(flags)
        .arg("--python")
        .arg(&python.path)
        .args(["-c", program])
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .output()
        .expect("run memray")
}

/// Where nothing mounted tracefs (a container, a minimal VM), `run --ebpf`
/// mounts it itself, as systemd would, and records. Run in a mount
/// namespace of its own (util-linux's `unshare`) so that no other process
/// loses its tracefs.
#[test]
fn tracefs_is_mounted_where_nothing_mounted_it() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let workdir = tempfile::tempdir().expect("tempdir");
    let python = interpreters::reference_python();
    let script = "while umount /sys/kernel/tracing 2>/dev/null; do :; done\n\
        umount -l /sys/kernel/debug 2>/dev/null\n\
        test -e /sys/kernel/tracing/events && { echo 'tracefs is still mounted'; exit 3; }\n\
        \"$@\" || exit\n\
        test -e /sys/kernel/tracing/events/sched/sched_process_fork/format\n";
    let output = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(paths::memray_bin())
        .args(["run", "--ebpf", "-q", "-f", "-o", "out.bin", "--python"])
        .arg(&python.path)
        .args(["-c", "keep = bytearray(515151)"])
        .current_dir(workdir.path())
        .output()
        .expect("run unshare (util-linux)");
    succeeded(&output, "run --ebpf without tracefs");
    check_with_memray(
        workdir.path(),
        "from memray import FileReader\n\
        assert [r.size for r in FileReader('out.bin').get_allocation_records() if r.size == 515152]\n",
        &[],
        "the capture made without tracefs",
    );
}

/// `--python` (or the `python3` found in `PATH`) may be a launcher script,
/// as pyenv's shims are: the interpreter it runs is held and probed from its
/// first line, so even a program that ends at once has its allocation.
#[test]
fn a_launcher_script_runs_the_interpreter_behind_it_from_its_first_line() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let workdir = tempfile::tempdir().expect("tempdir");
    let launcher = workdir.path().join("python-launcher");
    let python = interpreters::reference_python();
    std::fs::write(
        &launcher,
        format!("#!/bin/sh\nexec '{}' \"$@\"\n", python.path.display()),
    )
    .unwrap();
    std::fs::set_permissions(
        &launcher,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let output = Command::new(paths::memray_bin())
        .args(["run", "--ebpf", "-q", "-f", "-o", "out.bin", "--python"])
        .arg(&launcher)
        .args(["-c", "keep = bytearray(765431)"])
        .current_dir(workdir.path())
        .output()
        .expect("run memray");
    succeeded(&output, "run --ebpf through a launcher script");
    let check = "from memray import FileReader\n\
        [record] = [r for r in FileReader('out.bin').get_allocation_records() if r.size == 765432]\n\
        assert [f[0] for f in record.stack_trace()] == ['<module>'], record.stack_trace()\n";
    check_with_memray(workdir.path(), check, &[], "the first line's allocation");
}

/// Without `--follow-exec`, a recorded process that execs leaves the
/// recording there, as memray's tracker leaves it: neither the program the
/// script execs nor the one its subprocess execs (a `--follow-fork` child)
/// is recorded, under no stack, and a line says so.
#[test]
fn a_process_that_execs_leaves_the_recording() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let workdir = tempfile::tempdir().expect("tempdir");
    let program = "import os, subprocess, sys\n\
        keep = bytearray(666666)\n\
        subprocess.run([sys.executable, '-c', 'x = bytearray(555555)'], check=True)\n\
        os.execv(sys.executable, [sys.executable, '-c', 'x = bytearray(777777)'])\n";
    let check = "import glob\n\
        from memray import FileReader\n\
        sizes = sorted(r.size for f in glob.glob('out.bin*') for r in FileReader(f).get_allocation_records() if r.size in (555556, 666667, 777778))\n\
        assert sizes == [666667], sizes\n";
    for (flags, left) in [(&[][..], 1), (&["--follow-fork"][..], 2)] {
        let output = run_ebpf_code(workdir.path(), &[], flags, program, &[]);
        succeeded(
            &output,
            &format!("run --ebpf {flags:?} of a program that execs"),
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!(
                "{left} recorded process(es) ran exec, where their recording ends"
            )),
            "{flags:?}: {stderr}"
        );
        check_with_memray(
            workdir.path(),
            check,
            &[],
            &format!("{flags:?}: what was recorded"),
        );
    }
}

/// A module's code object is freed once the module is imported, before
/// its records are taken in, and its memory is at once reused (thousands of
/// compiled snippets): its frames keep their names and lines, from the copy
/// the probe made as it was freed. A module body with a line table of 24–60
/// KiB (a module of data, such as `html.entities`) too. On every CPython here.
#[test]
fn code_objects_freed_before_their_records_are_read_keep_their_names() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let workdir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        workdir.path().join("freed_module.py"),
        "import sys\nkeep = bytearray(424242)\n",
    )
    .expect("write the module");
    let data: String = (0..12_000).map(|i| format!("v_{i} = {i}\n")).collect();
    std::fs::write(
        workdir.path().join("big_module.py"),
        format!("{data}keep = bytearray(434343)\n"),
    )
    .expect("write the big module");
    let program = "import sys\n\
        sys.path.insert(0, '.')\n\
        import freed_module, big_module\n\
        junk = [compile(f'name_{i} = {i}', f'junk_{i}.py', 'exec') for i in range(3000)]\n";
    let check = "from memray import FileReader\n\
        records = list(FileReader('out.bin').get_allocation_records())\n\
        for size, module, line in [(424243, 'freed_module.py', 2), (434344, 'big_module.py', 12001)]:\n\
        \x20   [record] = [r for r in records if r.size == size]\n\
        \x20   function, filename, found = record.stack_trace()[0]\n\
        \x20   assert (function, filename.rsplit('/', 1)[-1], found) == ('<module>', module, line), record.stack_trace()\n";
    for python in interpreters::all_for_tests() {
        let output = Command::new(paths::memray_bin())
            .args(["run", "--ebpf", "-q", "-f", "-o", "out.bin", "--python"])
            .arg(&python.path)
            .args(["-c", program])
            .current_dir(workdir.path())
            .output()
            .expect("run memray");
        let label = format!("Python {}", python.label());
        succeeded(&output, &format!("run --ebpf on {label}"));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("<unknown>"), "{label}: {stderr}");
        check_with_memray(workdir.path(), check, &[], &label);
    }
}

/// A 300-deep recursion's allocation has its whole stack; a 700-deep one
/// (beyond the walk's 512 frames) keeps its innermost 512, and `-v` says
/// that stacks were cut.
#[test]
fn deep_stacks_are_whole_up_to_512_frames_then_cut_and_counted() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let workdir = tempfile::tempdir().expect("tempdir");
    let program = "import sys\n\
        sys.setrecursionlimit(5000)\n\
        def deep(n):\n\
        \x20   return bytearray(99991) if n == 0 else deep(n - 1)\n\
        keep = deep(int(sys.argv[1]))\n";
    let check = "import sys\n\
        from memray import FileReader\n\
        [record] = [r for r in FileReader('out.bin').get_allocation_records() if r.size == 99992]\n\
        names = [f[0] for f in record.stack_trace()]\n\
        print(len(names), names.count('deep'))\n\
        assert names.count('deep') == int(sys.argv[1]), (len(names), names.count('deep'))\n\
        assert (names[-1] == '<truncated stack>') == (sys.argv[2] == 'cut'), names[-3:]\n";
    for (depth, kept, cut) in [("300", "301", false), ("700", "512", true)] {
        let marked = if cut { "cut" } else { "whole" };
        let output = run_ebpf_code(workdir.path(), &[], &["-v"], program, &[depth]);
        succeeded(&output, &format!("run --ebpf of a {depth}-deep recursion"));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            stderr.contains("stack walks gave up: the stack was cut"),
            cut,
            "{depth} deep: {stderr}"
        );
        check_with_memray(
            workdir.path(),
            check,
            &[kept, marked],
            &format!("the {depth}-deep stack"),
        );
    }
}

/// A ring buffer of one page overflows under a fast allocation loop: the
/// count printed is what the capture misses (recorded + lost covers every
/// allocation the loop made), the capture notes it after its trailer (plain
/// or LZ4, every record or aggregated), our reporters warn with the same
/// count, and memray 1.20 reports exactly what it reports without the note.
#[test]
fn records_lost_to_a_tiny_ring_buffer_are_counted() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let program = "for _ in range(200000):\n\x20   bytearray(5000)\n";
    let recorded_check = "import sys\n\
        from memray import FileReader\n\
        recorded = sum(1 for r in FileReader('out.bin').get_allocation_records() if r.size == 5001)\n\
        lost = int(sys.argv[1])\n\
        assert recorded < 200000 <= recorded + lost, (recorded, lost)\n";
    for flags in [
        &[][..],
        &["--no-compress"],
        &["--aggregate"],
        &["--aggregate", "--no-compress"],
    ] {
        let workdir = tempfile::tempdir().expect("tempdir");
        let output = run_ebpf_code(
            workdir.path(),
            &[("MEMRAY_EBPF_RING_BYTES", "4096")],
            flags,
            program,
            &[],
        );
        succeeded(
            &output,
            &format!("run --ebpf {flags:?} with a tiny ring buffer"),
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lost: u64 = stderr
            .split_once("warning: ")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .and_then(|count| count.parse().ok())
            .unwrap_or_else(|| panic!("no lost-records warning: {stderr}"));
        assert!(lost > 0, "{stderr}");
        let capture = workdir.path().join("out.bin");
        let mut reader = memray_format::CaptureReader::open(&capture).expect("our reader");
        while reader.next_record().expect("records").is_some() {}
        assert_eq!(reader.lost_records(), Some(lost), "{flags:?}");
        let summary = Command::new(paths::memray_bin())
            .args(["summary", "out.bin"])
            .current_dir(workdir.path())
            .output()
            .expect("memray summary");
        succeeded(&summary, "our summary");
        let warning = format!("out.bin misses {lost} allocation records");
        let summary_stderr = String::from_utf8_lossy(&summary.stderr);
        assert!(summary_stderr.contains(&warning), "{summary_stderr}");
        if !flags.contains(&"--aggregate") {
            check_with_memray(
                workdir.path(),
                recorded_check,
                &[&lost.to_string()],
                "the capture and the lost count",
            );
        }
        // The same name in both: the reports name the capture.
        for (dir, bytes) in [
            ("with", std::fs::read(&capture).expect("read")),
            ("without", without_lost_note(&capture)),
        ] {
            std::fs::create_dir(workdir.path().join(dir)).expect("mkdir");
            std::fs::write(workdir.path().join(dir).join("out.bin"), bytes).expect("write");
        }
        check_with_memray(
            workdir.path(),
            SAME_REPORTS,
            &["with/out.bin", "without/out.bin"],
            &format!("memray 1.20 on {flags:?} with and without the note"),
        );
    }
}

/// The capture's data (decompressed) with the note after its trailer
/// zeroed, as if it had none.
fn without_lost_note(capture: &Path) -> Vec<u8> {
    let bytes = std::fs::read(capture).expect("read the capture");
    let mut data = if bytes.starts_with(&memray_format::LZ4_MAGIC) {
        let mut data = Vec::new();
        std::io::Read::read_to_end(
            &mut lz4_flex::frame::FrameDecoder::new(&bytes[..]),
            &mut data,
        )
        .expect("decompress");
        data
    } else {
        bytes
    };
    let prefix = b"\nmemray-rs lost records: ";
    let at = data
        .windows(prefix.len())
        .rposition(|window| window == prefix)
        .expect("the note");
    let end = at
        + prefix.len()
        + data[at + prefix.len()..]
            .iter()
            .position(|&b| b == b'\n')
            .unwrap();
    data[at..=end].fill(0);
    data
}

/// memray 1.20's reader and reporters give the same on two captures
/// (`sys.argv[1:]`): records, and each report's output.
const SAME_REPORTS: &str = r#"
import os, subprocess, sys, tempfile
from memray import FileReader, FileFormat

def records(path):
    reader = FileReader(path)
    meta = reader.metadata
    if meta.file_format == FileFormat.AGGREGATED_ALLOCATIONS:
        found = [reader.get_high_watermark_allocation_records(), reader.get_leaked_allocation_records()]
    else:
        found = [reader.get_allocation_records()]
    return [sorted((r.allocator, r.size, r.n_allocations, stack(r)) for r in rs) for rs in found]

def stack(record):
    try:
        return tuple(record.stack_trace())
    except NotImplementedError:  # deallocations have none
        return ()

def reports(path):
    memray = [sys.executable, "-m", "memray"]
    aggregated = FileReader(path).metadata.file_format == FileFormat.AGGREGATED_ALLOCATIONS
    out = {}
    # `tree` is left out: in 1.20 it is an interactive (textual) app.
    commands = [["summary"], ["flamegraph"], ["table"], ["transform", "gprof2dot"], ["transform", "csv"]]
    if not aggregated:
        commands.append(["stats", "--json"])
    for command in commands:
        with tempfile.TemporaryDirectory() as tmp:
            target = os.path.join(tmp, "report")
            extra = ["-o", target] if command[0] in ("flamegraph", "table", "transform", "stats") else []
            done = subprocess.run(memray + command + extra + [path], capture_output=True, text=True)
            produced = [open(os.path.join(tmp, f), "rb").read() for f in sorted(os.listdir(tmp))]
            same = lambda text: text.replace(tmp, "TMP").replace(path, "CAPTURE")
            produced = [p.replace(tmp.encode(), b"TMP").replace(path.encode(), b"CAPTURE") for p in produced]
            out[" ".join(command)] = (done.returncode, same(done.stdout), same(done.stderr), produced)
    return out

first, second = sys.argv[1:]
assert records(first) == records(second), "records differ"
a, b = reports(first), reports(second)
for name in a:
    assert a[name] == b[name], (name, a[name][:3], b[name][:3])
    assert a[name][0] == 0, (name, a[name][1:3])
"#;

/// A running process, attached twice in a row for a while: each capture
/// holds its allocations with their stacks, the process goes on and its
/// output is what it would have been; our reporters read the captures.
#[test]
fn attach_twice_then_the_process_goes_on_unchanged() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let python = interpreters::reference_python();
    let workdir = tempfile::tempdir().expect("tempdir");
    let script = workdir.path().join("loop.py");
    std::fs::write(
        &script,
        "import sys, time\n\
         def work():\n    return [bytearray(100003) for _ in range(3)]\n\
         print('ready', flush=True)\n\
         for i in range(int(sys.argv[1])):\n    work()\n    time.sleep(0.02)\n\
         print('sum', sum(range(1000)), flush=True)\n",
    )
    .expect("write the script");
    let mut child = Command::new(&python.path)
        .arg(&script)
        .arg("800")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start python");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("ready");
    assert_eq!(line, "ready\n");
    let pid = child.id().to_string();
    let memray = |args: &[&str], what: &str| {
        let output = Command::new(paths::memray_bin())
            .args(args)
            .current_dir(workdir.path())
            .output()
            .expect("run memray");
        succeeded(&output, what);
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    for capture in ["first.bin", "second.bin"] {
        let attach = ["attach", "--ebpf", &pid, "-f", "-o", capture];
        memray(
            &[&attach[..], &["--duration", "1"]].concat(),
            "attach --ebpf",
        );
        memray(&["stats", capture], "stats");
        let summary = memray(&["summary", capture], "summary");
        assert!(summary.contains("work at "), "{summary}");
        memray(&["flamegraph", "-f", capture], "flamegraph");
    }
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).expect("the rest");
    assert!(child.wait().expect("wait").success());
    assert_eq!(rest, "sum 499500\n");
}

/// A process that exits or execs while attached ends the recording: the
/// capture is finished and holds what it allocated, none of what the
/// program it execs allocates.
#[test]
fn attach_ends_when_the_process_exits_or_execs() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let python = interpreters::reference_python();
    let workdir = tempfile::tempdir().expect("tempdir");
    // The program it execs allocates 7 more blocks.
    let exec = "import sys\n\
        os.execv(sys.executable, [sys.executable, '-c', \
        'import time; x = [bytearray(200003) for _ in range(7)]; time.sleep(0.5)'])\n";
    for (ending, said) in [("time.sleep(0.5)\n", "exited"), (exec, "ran exec")] {
        // Runs until memray has attached (the file appears), then a little more.
        let mut child = Command::new(&python.path)
            .arg("-c")
            .arg(format!(
                "import os, time\n\
                 while not os.path.exists('attached.bin'): time.sleep(0.01)\n\
                 blocks = [bytearray(200003) for _ in range(5)]\n\
                 time.sleep(0.5)\n\
                 {ending}"
            ))
            .current_dir(workdir.path())
            .spawn()
            .expect("start python");
        let output = Command::new(paths::memray_bin())
            .args([
                "attach",
                "--ebpf",
                "-f",
                &child.id().to_string(),
                "-o",
                "attached.bin",
            ])
            .current_dir(workdir.path())
            .output()
            .expect("run memray attach");
        succeeded(&output, &format!("attach --ebpf until the process {said}"));
        assert!(child.wait().expect("wait").success());
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains(said), "{stdout}");
        let allocations = Command::new(paths::memray_bin())
            .args(["parse", "attached.bin"])
            .current_dir(workdir.path())
            .output()
            .expect("memray parse");
        let parsed = String::from_utf8_lossy(&allocations.stdout);
        let blocks = parsed
            .lines()
            // bytearray(n) asks for n + 1 bytes.
            .filter(|line| line.contains("size=200004 allocator=malloc"))
            .count();
        assert_eq!(blocks, 5, "{said}: {parsed}");
        // The last memory record is the process's last size, not the
        // nothing left of it once it is gone.
        let memory: Vec<&str> = parsed
            .lines()
            .filter(|line| line.starts_with("MEMORY_RECORD"))
            .collect();
        assert!(
            memory.iter().all(|line| !line.ends_with(" memory=0")),
            "{said}: {:?}",
            &memory[memory.len().saturating_sub(3)..]
        );
        std::fs::remove_file(workdir.path().join("attached.bin")).expect("remove the capture");
    }
}
