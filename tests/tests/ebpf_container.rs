#![cfg(target_os = "linux")]
//! The eBPF mode on processes in containers: a CPython in its own mount and
//! pid namespaces, whose root is a directory built here holding its own
//! copies of libc, the dynamic loader and libpython (other files than the
//! host's: the probes must be placed on the container's) and the
//! interpreter's prefix bind-mounted read-only at `/opt/py`. Its root is made as container
//! runtimes make it (`pivot_root`: `/proc/PID/maps` names its files as it
//! sees them) and as `chroot` makes it (the maps name them as the host
//! sees the directory, where the bind mount is not). Its pid is 1 inside
//! and another outside: the captures are of the host pid.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

use memray_tests::ebpf_captures::{capture_of, out_bin_captures, run_following_execs};
use memray_tests::interpreters::{self, Interpreter};
use memray_tests::reference::check_with_memray;
use memray_tests::run::{memray_in, succeeded};
use memray_tests::{paths, skip};

/// The workload: prints `ready` and its pid (as it sees it), waits for the
/// file `go` beside it, allocates three blocks of `sys.argv[1]` bytes in
/// `work` (line 3), prints `done`, waits for `stop`, prints `bye`.
/// `sys.argv[2]` tags its command line for `--name`.
const WORKER: &str = "import os, sys, time\n\
    def work(size):\n\
    \x20   return [bytearray(size - 1) for _ in range(3)]\n\
    here = os.path.dirname(os.path.abspath(__file__))\n\
    def wait_for(name):\n\
    \x20   while not os.path.exists(os.path.join(here, name)): time.sleep(0.01)\n\
    print('ready', os.getpid(), flush=True)\n\
    wait_for('go')\n\
    kept = work(int(sys.argv[1]))\n\
    print('done', flush=True)\n\
    wait_for('stop')\n\
    print('bye', flush=True)\n";

/// memray 1.20 reads `sys.argv[1]` (a capture) of pid `sys.argv[2]`: three
/// blocks of `sys.argv[3]` bytes at line 3 of `worker.py`, in `work`, and
/// no block of the sizes after it (the other workers').
const CHECK_WORKER: &str = "import sys\n\
    from memray import FileReader\n\
    reader = FileReader(sys.argv[1])\n\
    assert reader.metadata.pid == int(sys.argv[2]), reader.metadata.pid\n\
    records = list(reader.get_allocation_records())\n\
    found = [r.stack_trace() for r in records if r.size == int(sys.argv[3])]\n\
    assert len(found) == 3, found\n\
    for stack in found:\n\
    \x20   assert stack[0][1].endswith('worker.py') and stack[0][2] == 3, stack\n\
    \x20   assert 'work' in [f[0] for f in stack], stack\n\
    others = [r.size for r in records if str(r.size) in sys.argv[4:]]\n\
    assert others == [], others\n";

/// memray 1.20 names the native frames of the three blocks of
/// `sys.argv[2]` bytes in capture `sys.argv[1]` from the files the process
/// ran (the container's libpython), not from files at the same paths here.
const CHECK_NATIVE_NAMES: &str = "import sys\n\
    from memray import FileReader\n\
    reader = FileReader(sys.argv[1])\n\
    found = [r.native_stack_trace() for r in reader.get_allocation_records() if r.size == int(sys.argv[2])]\n\
    assert len(found) == 3, found\n\
    for stack in found:\n\
    \x20   assert any('bytearray' in f[0].lower() for f in stack), stack\n";

/// How the container's root is made.
#[derive(Clone, Copy, Debug)]
enum Root {
    /// As container runtimes do: the old root unmounted.
    PivotRoot,
    Chroot,
}

/// The commands run in the new namespaces before the workload, as `sh -c`
/// with `$1` the root, `$2` the interpreter's prefix and `$3…` the
/// workload's arguments.
fn enter(root: Root) -> &'static str {
    match root {
        Root::PivotRoot => {
            "mount --bind \"$1\" \"$1\" && mount --bind -o ro \"$2\" \"$1/opt/py\" \
             && mount -t proc proc \"$1/proc\" && cd \"$1\" && pivot_root . .old \
             && umount -l /.old && shift 2 \
             && exec /opt/py/bin/python3 -I /work/worker.py \"$@\""
        }
        Root::Chroot => {
            "mount --bind -o ro \"$2\" \"$1/opt/py\" && root=\"$1\" && shift 2 \
             && exec chroot \"$root\" /opt/py/bin/python3 -I /work/worker.py \"$@\""
        }
    }
}

/// A CPython in a container, started by `unshare --mount --pid
/// --kill-child` (which forks it); killed with unshare if the test fails
/// before it ends.
struct Container {
    /// The root directory (its `work/` holds the workload and its files).
    root: tempfile::TempDir,
    unshare: Running,
    stdout: BufReader<ChildStdout>,
    /// The interpreter's pid, as the host sees it.
    pid: u32,
    size: u64,
}

impl Container {
    fn start(python: &Interpreter, kind: Root, size: u64, tag: &str) -> Container {
        let root = container_root(python);
        let mut unshare = Running::spawn(
            Command::new("unshare")
                .args(container_command(python, kind, root.path(), size, tag))
                .stdout(Stdio::piped()),
        );
        let mut stdout = BufReader::new(unshare.0.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read the container");
        assert_eq!(
            line, "ready 1\n",
            "{kind:?}: pid 1 in its own pid namespace"
        );
        let pid = only_child(unshare.0.id());
        let container = Container {
            root,
            unshare,
            stdout,
            pid,
            size,
        };
        assert_ne!(
            file_id(&mapped_file(pid, "libc.so.6").expect("its libc")),
            file_id(&host_libc()),
            "{kind:?}: the container runs its own copy of libc"
        );
        container
    }

    fn work(&self) -> PathBuf {
        self.root.path().join("work")
    }

    fn expect(&mut self, wanted: &str) {
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("read the container");
        assert_eq!(line.trim_end(), wanted, "container process {}", self.pid);
    }

    /// Lets it allocate and waits until it has.
    fn go(&mut self) {
        std::fs::write(self.work().join("go"), "").expect("go");
        self.expect("done");
    }

    /// Lets it end; it must end well. Returns its root, deleted when dropped.
    fn stop(mut self) -> tempfile::TempDir {
        std::fs::write(self.work().join("stop"), "").expect("stop");
        self.expect("bye");
        assert!(self.unshare.0.wait().expect("wait").success());
        self.root
    }
}

/// unshare's arguments that run the workload in a container of `kind`
/// whose root is `root`.
fn container_command(
    python: &Interpreter,
    kind: Root,
    root: &Path,
    size: u64,
    tag: &str,
) -> Vec<String> {
    let arguments = [
        "--mount",
        "--pid",
        "--kill-child",
        "sh",
        "-c",
        enter(kind),
        "sh",
    ];
    arguments
        .into_iter()
        .map(str::to_string)
        .chain([root, &prefix(python)].map(|path| path.to_string_lossy().into_owned()))
        .chain([size.to_string(), tag.to_string()])
        .collect()
}

/// A process of the test's, killed if the test fails while it runs.
struct Running(Child);

impl Running {
    fn spawn(command: &mut Command) -> Running {
        Running(command.spawn().expect("start a process"))
    }

    /// Interrupts it (SIGINT) and waits for its end and its output.
    fn interrupt(mut self) -> Output {
        // SAFETY: kill has no memory arguments; the pid is our child's.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGINT) };
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        if let Some(mut pipe) = self.0.stdout.take() {
            pipe.read_to_end(&mut stdout).expect("read stdout");
        }
        if let Some(mut pipe) = self.0.stderr.take() {
            pipe.read_to_end(&mut stderr).expect("read stderr");
        }
        let status = self.0.wait().expect("wait");
        Output {
            status,
            stdout,
            stderr,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The interpreter's installation prefix (`PREFIX/bin/python3`).
fn prefix(python: &Interpreter) -> PathBuf {
    let executable = python.path.canonicalize().expect("the interpreter");
    executable
        .parent()
        .and_then(Path::parent)
        .expect("PREFIX/bin/python")
        .to_path_buf()
}

/// A root directory for the container: the workload in `work/`, mount
/// points for the interpreter's prefix and `/proc`, copies of the files
/// the interpreter needs (libc, libm, the loader: `ldd` says which; its
/// libpython in `/usr/lib`, as a distribution installs it: another file
/// than the one in the prefix), and of `umount` and what it needs (the old
/// root is unmounted from inside).
fn container_root(python: &Interpreter) -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("tempdir");
    // Entered by the unprivileged users the container might run as.
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    for dir in ["opt/py", "proc", "work", ".old"] {
        std::fs::create_dir_all(root.path().join(dir)).expect("mkdir");
    }
    std::fs::write(root.path().join("work/worker.py"), WORKER).expect("write worker.py");
    let prefix = prefix(python);
    let umount = skip::on_path("umount").expect("umount is not on PATH");
    let mut files = needed_libraries(&python.path);
    files.extend(needed_libraries(&umount));
    files.push(umount);
    for file in &files {
        let copy = match file.strip_prefix(&prefix) {
            // libpython: where the loader looks by default (the
            // interpreter's RUNPATH names the host's prefix).
            Ok(_) => root
                .path()
                .join("usr/lib")
                .join(file.file_name().expect("a name")),
            Err(_) => root.path().join(file.strip_prefix("/").expect("absolute")),
        };
        std::fs::create_dir_all(copy.parent().expect("a directory")).expect("mkdir");
        std::fs::copy(file, &copy).unwrap_or_else(|e| panic!("copy {}: {e}", file.display()));
    }
    root
}

/// The shared libraries and the loader `ldd` lists for `executable`.
fn needed_libraries(executable: &Path) -> Vec<PathBuf> {
    let output = Command::new("ldd")
        .arg(executable)
        .output()
        .expect("run ldd");
    succeeded(&output, "ldd");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let path = line.split("=>").last()?.split_whitespace().next()?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// The host's libc, as this process maps it.
fn host_libc() -> PathBuf {
    mapped_file(std::process::id(), "libc.so.6").expect("our libc")
}

/// The file process `pid` maps whose name is `name`, through
/// `/proc/PID/map_files` (whatever its mount namespace).
fn mapped_file(pid: u32, name: &str) -> Option<PathBuf> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    let range = maps
        .lines()
        .find(|line| line.ends_with(&format!("/{name}")))?
        .split_whitespace()
        .next()?;
    Some(PathBuf::from(format!("/proc/{pid}/map_files/{range}")))
}

fn file_id(path: &Path) -> (u64, u64) {
    let metadata = std::fs::metadata(path).expect("stat");
    use std::os::unix::fs::MetadataExt;
    (metadata.dev(), metadata.ino())
}

/// The one child of process `parent` (unshare's forked one, which runs the
/// interpreter).
fn only_child(parent: u32) -> u32 {
    let children = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
        .expect("the children of unshare");
    let children: Vec<u32> = children
        .split_whitespace()
        .map(|pid| pid.parse().expect("a pid"))
        .collect();
    assert_eq!(children.len(), 1, "{children:?}");
    children[0]
}

/// Waits until `done` while `memray` runs (its error output if it ends).
fn wait_for(memray: &mut Running, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        if let Some(status) = memray.0.try_wait().expect("memray's status") {
            let mut stderr = String::new();
            if let Some(mut pipe) = memray.0.stderr.take() {
                let _ = pipe.read_to_string(&mut stderr);
            }
            panic!("memray ended ({status}) before {what}: {stderr}");
        }
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A command-line tag no other test's process has, for `--name`.
fn tag(test: &str) -> String {
    format!("memray-container-{test}-{}", std::process::id())
}

/// `memray attach --ebpf --native HOSTPID -o out.bin` on the process of
/// each kind of container: the capture is of its host pid and holds its
/// three blocks at the right line (memray 1.20's FileReader and our `stats
/// --json` read it) with their native stacks (unwound over the container's
/// files, and named from them once the container is gone), and the process
/// goes on once memray has detached.
#[test]
fn attach_records_a_process_in_a_container() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let python = interpreters::reference_python();
    for kind in [Root::PivotRoot, Root::Chroot] {
        let mut container = Container::start(&python, kind, 300_011, &tag("attach"));
        let workdir = tempfile::tempdir().expect("tempdir");
        let capture = workdir.path().join("out.bin");
        let mut memray = Running::spawn(
            Command::new(paths::memray_bin())
                .args([
                    "attach",
                    "--ebpf",
                    "--native",
                    &container.pid.to_string(),
                    "-o",
                ])
                .arg(&capture)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        );
        wait_for(&mut memray, "the capture", || capture.exists());
        container.go();
        let output = memray.interrupt();
        succeeded(&output, &format!("attach --ebpf ({kind:?})"));
        let pid = container.pid;
        // The process is gone, its files are not.
        let _root = container.stop();
        check_with_memray(
            workdir.path(),
            CHECK_WORKER,
            &["out.bin", &pid.to_string(), "300011"],
            &format!("the capture ({kind:?})"),
        );
        check_with_memray(
            workdir.path(),
            CHECK_NATIVE_NAMES,
            &["out.bin", "300011"],
            &format!("the native frames' names ({kind:?})"),
        );
        let stats = memray_in(
            workdir.path(),
            ["stats", "--json", "-o", "stats.json", "out.bin"],
        );
        succeeded(&stats, "memray stats --json");
        let stats: serde_json::Value = serde_json::from_slice(
            &std::fs::read(workdir.path().join("stats.json")).expect("stats.json"),
        )
        .expect("JSON");
        let top = &stats["top_allocations_by_size"][0];
        assert!(
            top["location"]
                .as_str()
                .is_some_and(|location| location.ends_with(":/work/worker.py:3")),
            "{kind:?}: {top}"
        );
        assert_eq!(top["size"], 3 * 300_011, "{kind:?}: {top}");
        let parsed = memray_in(workdir.path(), ["parse", "out.bin"]);
        succeeded(&parsed, "memray parse");
        let blocks: Vec<String> = String::from_utf8_lossy(&parsed.stdout)
            .lines()
            .filter(|line| line.contains(" size=300011 allocator=malloc "))
            .map(str::to_string)
            .collect();
        assert_eq!(blocks.len(), 3, "{kind:?}: {blocks:?}");
        assert!(
            blocks
                .iter()
                .all(|line| !line.ends_with(" native_frame_id=0")),
            "{kind:?}: the blocks have native stacks: {blocks:?}"
        );
    }
}

/// `memray attach --ebpf --all --name TAG -o DIR` while a process runs in
/// each kind of container and a host process runs the same interpreter:
/// each gets its own capture (named after its host pid) holding its own
/// blocks and none of the others'.
#[test]
fn attach_all_records_container_and_host_processes() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let python = interpreters::reference_python();
    let tag = tag("all");
    let mut containers = vec![
        Container::start(&python, Root::PivotRoot, 300_017, &tag),
        Container::start(&python, Root::Chroot, 300_029, &tag),
    ];
    let host_dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(host_dir.path().join("worker.py"), WORKER).expect("write worker.py");
    let host_size = 300_041u64;
    let mut host = Running::spawn(
        Command::new(&python.path)
            .arg(host_dir.path().join("worker.py"))
            .args([&host_size.to_string(), tag.as_str()])
            .stdout(Stdio::piped()),
    );
    let host_pid = host.0.id();
    let mut host_stdout = BufReader::new(host.0.stdout.take().expect("stdout"));
    let mut line = String::new();
    host_stdout.read_line(&mut line).expect("ready");
    assert_eq!(line, format!("ready {host_pid}\n"));

    let workdir = tempfile::tempdir().expect("tempdir");
    let captures = workdir.path().join("captures");
    let mut memray = Running::spawn(
        Command::new(paths::memray_bin())
            .args(["attach", "--ebpf", "--all", "--name", &tag, "-o"])
            .arg(&captures)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let pids: Vec<u32> = containers.iter().map(|c| c.pid).chain([host_pid]).collect();
    wait_for(&mut memray, "every worker's capture", || {
        pids.iter().all(|&pid| capture_of(&captures, pid).is_some())
    });
    for container in &mut containers {
        container.go();
    }
    std::fs::write(host_dir.path().join("go"), "").expect("go");
    line.clear();
    host_stdout.read_line(&mut line).expect("done");
    assert_eq!(line, "done\n");
    let output = memray.interrupt();
    succeeded(&output, "attach --ebpf --all");
    std::fs::write(host_dir.path().join("stop"), "").expect("stop");
    assert!(host.0.wait().expect("wait").success());
    let sizes: Vec<(u32, u64)> = containers
        .iter()
        .map(|c| (c.pid, c.size))
        .chain([(host_pid, host_size)])
        .collect();
    for container in containers {
        container.stop();
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    for &(pid, size) in &sizes {
        let capture = capture_of(&captures, pid).expect("a capture");
        let others: Vec<String> = sizes
            .iter()
            .filter(|&&(other, _)| other != pid)
            .map(|(_, size)| size.to_string())
            .collect();
        let args: Vec<String> = [
            capture.to_string_lossy().into_owned(),
            pid.to_string(),
            size.to_string(),
        ]
        .into_iter()
        .chain(others)
        .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        check_with_memray(
            workdir.path(),
            CHECK_WORKER,
            &args,
            &format!("the capture of {pid} ({size} bytes): {stdout}"),
        );
    }
}

/// `run --ebpf --follow-exec` of a host script that starts a container
/// (`unshare`, `sh`, `mount`, `pivot_root` or `chroot`, then the container's
/// CPython, exec'd onto its own libc and libpython): the container's
/// process gets its capture (`out.bin.<host pid>`) holding its three blocks
/// at the right line; the programs that are not Python get none.
#[test]
fn follow_exec_records_a_python_started_in_a_container() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let python = interpreters::reference_python();
    let parent = "import json, subprocess\n\
        command = json.load(open('command.json'))\n\
        print(subprocess.run(command, check=True, capture_output=True, text=True).stdout, end='')\n";
    for kind in [Root::PivotRoot, Root::Chroot] {
        let root = container_root(&python);
        for name in ["go", "stop"] {
            std::fs::write(root.path().join("work").join(name), "").expect("write");
        }
        let workdir = tempfile::tempdir().expect("tempdir");
        let command: Vec<String> = ["unshare".to_string()]
            .into_iter()
            .chain(container_command(
                &python,
                kind,
                root.path(),
                300_043,
                "exec",
            ))
            .collect();
        std::fs::write(
            workdir.path().join("command.json"),
            serde_json::to_vec(&command).expect("JSON"),
        )
        .expect("write command.json");
        let output = run_following_execs(&python.path, workdir.path(), parent, &[]);
        succeeded(&output, &format!("run --ebpf --follow-exec ({kind:?})"));
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "ready 1\ndone\nbye\n",
            "{kind:?}"
        );
        let captures = out_bin_captures(workdir.path());
        assert_eq!(captures.len(), 2, "{kind:?}: {captures:?}");
        let child = captures[1].strip_prefix("out.bin.").expect("out.bin.<pid>");
        check_with_memray(
            workdir.path(),
            CHECK_WORKER,
            &[&captures[1], child, "300043"],
            &format!("the container's capture ({kind:?})"),
        );
    }
}
