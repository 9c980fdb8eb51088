//! What the eBPF tests share: whether they can run here, the C workload
//! compiled at test time, and draining the records.

#![allow(dead_code)] // each test file uses its own part

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use memray_ebpf::{Event, EventStream, ExecKind, ExecStream, Options, Session};

/// `allocators.c`, compiled once per test binary with the machine's `cc`.
pub fn workload_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("tempdir").keep();
            let binary = dir.join("allocators");
            let source = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/allocators.c");
            let status = Command::new("cc")
                .args(["-O1", "-fno-builtin", "-pthread", "-o"])
                .arg(&binary)
                .arg(source)
                .status()
                .expect("run cc");
            assert!(status.success(), "cc failed: {status}");
            binary
        })
        .clone()
}

/// A running `allocators.c` (or a program speaking its protocol), between
/// its sync points.
pub struct Workload {
    pub child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Workload {
    /// Starts `allocators.c` with `args` and waits for "ready".
    pub fn start(args: &[&str]) -> Workload {
        Workload::spawn(Command::new(workload_binary()).args(args))
    }

    /// Starts `command` and waits for "ready".
    pub fn spawn(command: &mut Command) -> Workload {
        let mut child = command
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
        assert_eq!(workload.line(), "ready");
        workload
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read the workload");
        line.trim().to_string()
    }

    /// Lets it allocate; returns the values it printed, by name, once it is done.
    pub fn allocate(&mut self) -> HashMap<String, u64> {
        self.go();
        let mut values = HashMap::new();
        loop {
            let line = self.line();
            if line == "done" {
                return values;
            }
            let (name, value) = line.split_once(' ').expect("name value");
            values.insert(
                name.to_string(),
                u64::from_str_radix(value, 16).expect("hex"),
            );
        }
    }

    /// Lets it allocate, without waiting.
    pub fn go(&mut self) {
        self.stdin.write_all(b"g").expect("write to the workload");
    }

    /// Lets it exit (end of its stdin) and checks that it succeeded.
    pub fn finish(self) {
        let Workload {
            mut child, stdin, ..
        } = self;
        drop(stdin);
        let status = child.wait().expect("wait");
        assert!(status.success(), "the workload failed: {status}");
    }
}

/// Loaded probes and their records, drained on a current-thread runtime.
pub struct Recording {
    // Dropped in this order: the streams' registrations before their runtime.
    pub stream: EventStream,
    /// Where the children of processes attached following forks are announced.
    execs: ExecStream,
    pub session: Session,
    pub runtime: tokio::runtime::Runtime,
}

impl Recording {
    pub fn start(options: Options) -> Recording {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let mut session = Session::load(options).expect("load the probes");
        let (stream, execs) = {
            let _entered = runtime.enter();
            let stream = session.events(1024).expect("the ring buffer");
            (stream, session.execs().expect("the exec notices"))
        };
        Recording {
            stream,
            execs,
            session,
            runtime,
        }
    }

    /// Lets `workload` allocate, releasing the children it forks (stopped
    /// until their probes are placed) meanwhile; its values.
    pub fn allocate(&mut self, workload: &mut Workload) -> HashMap<String, u64> {
        std::thread::scope(|scope| {
            let values = scope.spawn(|| workload.allocate());
            while !values.is_finished() {
                let notices = self.runtime.block_on(async {
                    tokio::time::timeout(Duration::from_millis(10), self.execs.next()).await
                });
                for exec in notices.into_iter().flatten().flatten() {
                    if exec.kind == ExecKind::Forked {
                        self.session
                            .release_forked(exec.pid)
                            .expect("place the child's probes");
                    }
                }
            }
            values.join().expect("the workload's values")
        })
    }

    /// Every record there after the probes had time to fire: drains until
    /// 100 ms pass without records.
    pub fn drain(&mut self) -> Vec<Event> {
        let stream = &mut self.stream;
        self.runtime.block_on(async {
            let mut events = Vec::new();
            loop {
                let mut batch = Vec::new();
                let waited =
                    tokio::time::timeout(Duration::from_millis(100), stream.next_batch(&mut batch))
                        .await;
                match waited {
                    Ok(result) => {
                        result.expect("drain the ring buffer");
                        events.extend(batch);
                    }
                    Err(_) => return events,
                }
            }
        })
    }
}
