#![cfg(target_os = "linux")]
//! Live mode end to end: `memray run --live` in a real terminal (tmux) on a
//! workload with two named threads, `memray run --live-remote` with
//! `memray live PORT` and a reader killed mid-run, `memray attach --ebpf
//! --live`, nothing listening, and the refusals memray 1.20 words.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use memray_tests::interpreters::reference_python;
use memray_tests::paths::{fixtures, memray_bin};
use memray_tests::reference::reference_memray;
use memray_tests::skip::{self, Requirement};
use memray_tests::tmux::Terminal;

/// A directory holding the workload (`two_threads.py`, which holds its
/// memory until a file named `stop` appears there).
fn workload_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        fixtures().join("live/two_threads.py"),
        dir.path().join("two_threads.py"),
    )
    .expect("copy the workload");
    dir
}

fn stop(dir: &Path) {
    std::fs::write(dir.join("stop"), "").expect("create the stop file");
}

/// A port nothing listens on (the kernel's pick, released).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// The screen's row holding `text`, if any.
fn row_of(screen: &str, text: &str) -> Option<usize> {
    screen.lines().position(|line| line.contains(text))
}

/// Whether `first` is shown above `second`.
fn above(screen: &str, first: &str, second: &str) -> bool {
    matches!((row_of(screen, first), row_of(screen, second)), (Some(a), Some(b)) if a < b)
}

fn duration_line(screen: &str) -> String {
    screen
        .lines()
        .find(|line| line.starts_with("Duration:"))
        .unwrap_or_default()
        .split("  ")
        .next()
        .unwrap_or_default()
        .to_owned()
}

const HOLD_BIG: &str = "hold_big at two_threads.py:15";
const MANY_SMALL: &str = "many_small at two_threads.py:20";
const WORKER_ALLOC: &str = "worker_alloc at two_threads.py:24";
const FOOTER: &str = "q Quit";

/// `memray run MODE two_threads.py` in an 80x24 terminal, then `exit=<status>`.
fn run_in_terminal(mode: &str) -> Option<(tempfile::TempDir, Terminal)> {
    if !skip::needs(&[Requirement::Tmux]) {
        return None;
    }
    let dir = workload_dir();
    let term = Terminal::start(80, 24, dir.path());
    term.run(&format!(
        "{} run {mode} --python {} two_threads.py; echo exit=$?",
        memray_bin().display(),
        reference_python().path.display()
    ));
    Some((dir, term))
}

#[test]
fn run_live_shows_the_workload_and_follows_the_keys() {
    let Some((dir, term)) = run_in_terminal("--live") else {
        return;
    };
    // The main thread first: both of its functions, with their lines.
    let screen = term.wait_for("the main thread's table", |s| {
        s.contains("Thread 1 of 2") && s.contains(HOLD_BIG) && s.contains(MANY_SMALL)
    });
    assert!(above(&screen, HOLD_BIG, MANY_SMALL), "by total:\n{screen}");
    assert!(
        screen.lines().last().unwrap_or("").starts_with(FOOTER),
        "{screen}"
    );

    term.keys(&["a"]);
    term.wait_for("sorted by allocations", |s| above(s, MANY_SMALL, HOLD_BIG));
    term.keys(&["o"]);
    let screen = term.wait_for("sorted by own memory", |s| {
        s.contains("Own▼") && above(s, HOLD_BIG, MANY_SMALL)
    });
    let first_row = row_of(&screen, "Location").expect("table header") + 1;
    assert!(
        screen.lines().nth(first_row).unwrap().contains(HOLD_BIG),
        "{screen}"
    );
    term.keys(&["t"]);
    term.wait_for("sorted by total again", |s| s.contains("Total▼"));

    term.keys(&["Right"]);
    let screen = term.wait_for("the worker thread", |s| {
        s.contains("Thread 2 of 2: worker-thread") && s.contains(WORKER_ALLOC)
    });
    assert!(!screen.contains(HOLD_BIG), "{screen}");
    term.keys(&["m"]);
    term.wait_for("merged threads", |s| {
        s.contains("Threads: all, merged") && s.contains(WORKER_ALLOC) && s.contains(HOLD_BIG)
    });

    // Paused, the screen keeps its moment; resumed, it shows the latest.
    term.keys(&["Space"]);
    let paused = term.wait_for("the pause", |s| s.contains("PAUSED"));
    std::thread::sleep(Duration::from_millis(2200));
    assert_eq!(duration_line(&term.screen()), duration_line(&paused));
    term.keys(&["Space"]);
    term.wait_for("the resumed view", |s| {
        !s.contains("PAUSED") && duration_line(s) != duration_line(&paused)
    });

    term.resize(100, 30);
    term.wait_for("the wider layout", |s| {
        s.lines().count() >= 30 && s.starts_with("PID:") && s.contains(HOLD_BIG)
    });
    term.resize(80, 24);
    term.wait_for("the first layout again", |s| {
        s.starts_with("PID:")
            && s.lines().nth(23).unwrap_or("").starts_with(FOOTER)
            && s.contains(HOLD_BIG)
    });

    stop(dir.path());
    term.wait_for("the program's end", |s| s.contains("Program ended"));
    term.keys(&["q"]);
    term.wait_for("the shell again", |s| s.contains("exit=0"));
    assert!(!term.alternate_screen());
}

/// In process, and `--native` through the probes (whose stack copies
/// cannot keep up with every pymalloc call at start-up: they are counted
/// as lost, see `ebpf_native.rs`).
#[test]
fn native_stacks_and_pymalloc_work_with_live() {
    for flags in [
        "--live --native --trace-python-allocators",
        "--ebpf --live --native",
    ] {
        if flags.starts_with("--ebpf") && !skip::needs_built_ebpf(memray_ebpf::is_built()) {
            continue;
        }
        let Some((dir, term)) = run_in_terminal(flags) else {
            return;
        };
        // Room for the rows of the interpreter's own frames above them.
        term.resize(120, 100);
        // Hybrid stacks: the workload's Python frames among C ones.
        term.wait_for("Python and native frames", |s| {
            s.contains("hold_big at ") && s.lines().any(|line| line.contains(".c:"))
        });
        stop(dir.path());
        term.wait_for("the program's end", |s| s.contains("Program ended"));
        term.keys(&["q"]);
        term.wait_for("the shell again", |s| s.contains("exit=0"));
    }
}

/// `run FLAGS --live-remote`'s program, started by the test, and the first
/// line it printed.
fn start_remote(dir: &Path, port: u16, flags: &[&str]) -> (std::process::Child, String) {
    let mut program = Command::new(memray_bin())
        .arg("run")
        .args(flags)
        .args([
            "--live-remote",
            "--live-port",
            &port.to_string(),
            "--python",
        ])
        .arg(reference_python().path)
        .arg("two_threads.py")
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start memray run --live-remote");
    let mut first = String::new();
    BufReader::new(program.stdout.as_mut().unwrap())
        .read_line(&mut first)
        .expect("read the first line");
    (program, first)
}

/// In process and through the probes.
#[test]
fn a_killed_reader_leaves_the_program_to_finish() {
    if !skip::needs(&[Requirement::Tmux]) {
        return;
    }
    for flags in [&[][..], &["--ebpf"]] {
        if !flags.is_empty() && !skip::needs_built_ebpf(memray_ebpf::is_built()) {
            continue;
        }
        let dir = workload_dir();
        let port = free_port();
        let (program, first) = start_remote(dir.path(), port, flags);
        assert_eq!(
            first,
            format!("Run 'memray live {port}' in another shell to see live results\n")
        );
        let term = Terminal::start(80, 24, dir.path());
        term.run(&format!(
            "sh -c 'echo $$ > reader.pid; exec {} live {port}'",
            memray_bin().display()
        ));
        term.wait_for("the reader's table", |s| s.contains("hold_big at "));
        let reader: i32 = std::fs::read_to_string(dir.path().join("reader.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // SAFETY: signalling a process this test started.
        assert_eq!(unsafe { libc::kill(reader, libc::SIGKILL) }, 0);
        std::thread::sleep(Duration::from_millis(300));
        stop(dir.path());
        let output = program.wait_with_output().expect("wait for the program");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{flags:?}: {stderr}");
        assert_eq!(stdout, "workload done\n", "{flags:?}");
        assert!(
            stderr.ends_with(
                "the live reader disconnected\nFailed to write output, deactivating tracking\n"
            ),
            "{flags:?}: {stderr}"
        );
    }
}

/// In process and through the probes (whose program never runs then).
#[test]
fn ctrl_c_while_waiting_for_the_reader_ends_the_run_quietly() {
    for flags in ["--live-remote", "--ebpf --live-remote"] {
        if flags.starts_with("--ebpf") && !skip::needs_built_ebpf(memray_ebpf::is_built()) {
            continue;
        }
        let Some((dir, term)) = run_in_terminal(flags) else {
            return;
        };
        term.wait_for("the invitation", |s| s.contains("in another shell"));
        term.keys(&["C-c"]);
        let screen = term.wait_for("the shell again", |s| s.contains("exit=0"));
        assert!(!screen.contains("Traceback"), "{flags}: {screen}");
        assert!(!screen.contains("workload done"), "{flags}: {screen}");
        drop(dir);
    }
}

/// `run --ebpf --live`: the same view over the probes' recording, the
/// program's output held back; its end is shown, and `q` then ends memray
/// with the program's status.
#[test]
fn run_ebpf_live_shows_the_workload_to_its_end() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let Some((dir, term)) = run_in_terminal("--ebpf --live") else {
        return;
    };
    // The program runs as plain `python two_threads.py`, whose code
    // objects name the script by its absolute path (cut in the column).
    term.wait_for("the main thread's table", |s| {
        s.contains("hold_big at ") && s.contains("many_small at ")
    });
    term.keys(&["Right"]);
    // Its threads' Python names are the interpreter's own: not seen from outside.
    term.wait_for("the worker thread", |s| {
        s.contains("Thread 2 of 2") && s.contains("worker_alloc at ")
    });
    stop(dir.path());
    term.wait_for("the program's end", |s| s.contains("Program ended"));
    term.keys(&["q"]);
    let screen = term.wait_for("the shell again", |s| s.contains("exit=0"));
    assert!(!screen.contains("workload done"), "{screen}");
}

/// `run --ebpf --live` left while the program runs ends it (as memray
/// does); a program that fails has its error output shown and its status
/// passed on.
#[test]
fn run_ebpf_live_left_early_ends_the_program_and_failures_are_shown() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let Some((dir, term)) = run_in_terminal("--ebpf --live") else {
        return;
    };
    let screen = term.wait_for("the workload's allocations", |s| s.contains("hold_big at "));
    // The header shows the program's pid.
    let pid: u32 = screen
        .strip_prefix("PID: ")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no pid in the header:\n{screen}"));
    term.keys(&["q"]);
    term.wait_for("the shell again", |s| s.contains("exit=0"));
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "the program {pid} still runs"
    );
    std::fs::write(
        dir.path().join("fails.py"),
        "import sys\nprint('about to fail', file=sys.stderr)\nsys.exit(3)\n",
    )
    .expect("write the failing program");
    term.run(&format!(
        "{} run --ebpf --live --python {} fails.py; echo exit=$?",
        memray_bin().display(),
        reference_python().path.display()
    ));
    term.wait_for("the program's end", |s| s.contains("Program ended"));
    term.keys(&["q"]);
    term.wait_for("the failure", |s| {
        s.contains("about to fail") && s.contains("exit=3")
    });
}

/// `attach --ebpf PID --live` on a running program: the view shows its
/// allocations from the attach on; leaving it detaches and the program goes on.
#[test]
fn attach_ebpf_live_then_quit_leaves_the_process_running() {
    if !skip::needs(&[Requirement::Tmux]) || !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let dir = workload_dir();
    // The workload starts once the view shows the attached process.
    let program = Command::new(reference_python().path)
        .args([
            "-c",
            "import os, time\n\
             while not os.path.exists('go'): time.sleep(0.01)\n\
             exec(compile(open('two_threads.py').read(), 'two_threads.py', 'exec'))",
        ])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the workload");
    let program = Workload(Some(program));
    let pid = program.0.as_ref().unwrap().id();
    let term = Terminal::start(80, 24, dir.path());
    term.run(&format!(
        "{} attach --ebpf {pid} --live; echo exit=$?",
        memray_bin().display()
    ));
    term.wait_for("the attached process", |s| {
        s.contains(&format!("PID: {pid}"))
    });
    std::fs::write(dir.path().join("go"), "").unwrap();
    term.wait_for("the workload's allocations", |s| s.contains(HOLD_BIG));
    term.keys(&["q"]);
    term.wait_for("the shell again", |s| s.contains("exit=0"));
    stop(dir.path());
    let output = program.finish();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "workload done\n");
}

/// A process the test started, killed if the test fails before it ends.
struct Workload(Option<std::process::Child>);

impl Workload {
    fn finish(mut self) -> Output {
        let child = self.0.take().unwrap();
        child.wait_with_output().expect("wait for the workload")
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn a_port_in_use_is_one_line() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    let dir = workload_dir();
    let port = port.to_string();
    // In process and through the probes: before anything runs.
    for run in [&["run"][..], &["run", "--ebpf"]] {
        let args = [
            run,
            &["--live-remote", "--live-port", &port, "two_threads.py"],
        ]
        .concat();
        let output = memray(dir.path(), &args);
        assert_eq!(output.status.code(), Some(1), "{run:?}");
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            format!("memray run: cannot listen on 127.0.0.1:{port}: Address already in use\n")
        );
        assert!(output.stdout.is_empty(), "{run:?}");
    }
}

#[test]
fn memray_live_with_nothing_listening_says_so_quickly() {
    let port = free_port();
    let start = Instant::now();
    let output = memray(Path::new("."), &["live", &port.to_string()]);
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!("Could not connect to a live session on port {port}: Connection refused\n")
    );
}

fn memray(dir: &Path, args: &[&str]) -> Output {
    Command::new(memray_bin())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run memray")
}

#[test]
fn refusals_are_memrays() {
    if !skip::needs(&[Requirement::ReferenceMemray]) {
        return;
    }
    let dir = workload_dir();
    let refused: [&[&str]; 12] = [
        &["--live-port", "5000"],
        &["--live", "--live-port", "5000"],
        &["--live", "--follow-fork"],
        &["--live-remote", "--follow-fork"],
        &["--live", "--aggregate"],
        &["--live-remote", "--aggregate"],
        &["--live", "--buffered-file-io"],
        &["--live-remote", "--buffered-file-io"],
        &["--live-remote", "--live-port", "0"],
        &["--live-remote", "--live-port", "65536"],
        &["--live-remote", "--live-port", "1000000"],
        &["--live", "--live-remote"],
    ];
    let last_line = |out: &Output| {
        String::from_utf8_lossy(&out.stderr)
            .trim_end()
            .lines()
            .last()
            .unwrap_or("")
            .to_owned()
    };
    for flags in refused {
        let args: Vec<&str> = [&["run"], flags, &["two_threads.py"]].concat();
        let theirs = Command::new(reference_memray().memray)
            .args(&args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("run memray 1.20");
        // The same with --ebpf, refused before anything is loaded.
        let with_ebpf: Vec<&str> = [&["run", "--ebpf"], flags, &["two_threads.py"]].concat();
        for args in [&args, &with_ebpf] {
            let ours = memray(dir.path(), args);
            assert_eq!(last_line(&ours), last_line(&theirs), "{args:?}");
            assert_eq!(ours.status.code(), theirs.status.code(), "{args:?}");
            assert_eq!(
                String::from_utf8_lossy(&ours.stderr).lines().count(),
                1,
                "{args:?}"
            );
        }
    }
    // A program that cannot start: its error, and no view.
    let args = ["run", "--live", "missing.py"];
    let ours = memray(dir.path(), &args);
    let theirs = Command::new(reference_memray().memray)
        .args(args)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("run memray 1.20");
    assert_eq!(last_line(&ours), last_line(&theirs));
    assert_eq!(ours.status.code(), theirs.status.code());
    assert!(ours.stdout.is_empty());
    for port in ["0", "65536"] {
        let ours = memray(dir.path(), &["live", port]);
        assert_eq!(ours.status.code(), Some(1));
        assert_eq!(last_line(&ours), format!("Invalid port: {port}"));
    }
}

#[test]
fn the_live_options_are_in_the_help() {
    let help = memray(Path::new("."), &["run", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in ["--live ", "--live-remote", "--live-port"] {
        let line = help
            .lines()
            .find(|line| line.contains(flag))
            .unwrap_or_else(|| panic!("no {flag} in:\n{help}"));
        assert!(!line.contains("not available"), "{line}");
    }
}
