//! The probes' Python stack walk on real interpreters: a script calls
//! `fsync` (through `os.fsync`, which releases the GIL) at known Python
//! stacks, a sampling uprobe walks the calling thread's stack in BPF, and
//! every stack, named from the process by `RemoteCodes`, must equal what
//! the script's own `traceback` saw at that call. Every CPython 3.8-3.14 on
//! the machine. Needs root (uprobes), like the eBPF mode itself.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use memray_ebpf::python::{RemoteCodes, Sample, StackSampler};
use memray_ebpf_common::python_stack::{StackFrame, WalkCounter, MAX_FRAMES, STATUS_TRUNCATED};
use memray_recorder::CodeNamer;
use memray_tests::interpreters::{all_for_tests, Interpreter};
use memray_tests::skip;
use python_frames::PythonProcess;

const SCRIPT: &str = include_str!("scripts/stack_scenarios.py");
const CODE_REUSE_ROUNDS: usize = 400;

/// `(function, file, line)`, innermost first.
type Named = Vec<(String, String, i32)>;

struct Expected {
    wait: bool,
    tid: u32,
    stack: Named,
}

fn parse_line(line: &str) -> Option<Expected> {
    let rest = line.strip_prefix("STACK ")?;
    let mut fields = rest.trim_end_matches('\n').split('\t');
    let mut head = fields.next()?.split(' ');
    let wait = head.next()? == "1";
    let tid = head.next()?.parse().ok()?;
    let mut stack: Named = fields
        .map(|frame| {
            let mut parts = frame.split('\x1f');
            let name = parts.next().unwrap_or_default().to_string();
            let file = parts.next().unwrap_or_default().to_string();
            let line = parts.next().and_then(|l| l.parse().ok()).unwrap_or(-1);
            (name, file, line)
        })
        .collect();
    stack.reverse();
    Some(Expected { wait, tid, stack })
}

/// Names stacks as a capture does: their code objects noted first
/// (counting the addresses that now hold another code object), then each
/// named through the recorder's `CodeNamer`.
struct StackNamer {
    codes: RemoteCodes,
    replaced: usize,
}

impl StackNamer {
    fn name(
        &mut self,
        sampler: &mut StackSampler,
        process: &PythonProcess,
        frames: &[StackFrame],
    ) -> Named {
        let pid = process.pid() as u32;
        let replaced = self.codes.note(frames, pid, sampler.code_snapshots());
        self.replaced += replaced.len();
        frames
            .iter()
            .map(|f| match self.codes.code(f.code) {
                Some(info) => (
                    info.name.clone(),
                    info.filename.clone(),
                    info.line(process.layout(), i64::from(f.instruction_offset)),
                ),
                None => ("<unnamed>".into(), String::new(), 0),
            })
            .collect()
    }
}

/// The samples received, per thread in call order.
struct Samples {
    label: String,
    pending: HashMap<u32, VecDeque<Sample>>,
}

impl Samples {
    /// The oldest unchecked sample of thread `tid`, with its stack's frames.
    fn next(&mut self, sampler: &mut StackSampler, tid: u32) -> (Sample, Vec<StackFrame>) {
        for sample in sampler.samples() {
            self.pending
                .entry(sample.tid)
                .or_default()
                .push_back(sample);
        }
        let label = &self.label;
        let sample = self
            .pending
            .get_mut(&tid)
            .and_then(VecDeque::pop_front)
            .unwrap_or_else(|| panic!("{label}: no sample from thread {tid}"));
        let stack = sampler
            .stacks()
            .get(sample.stack_id)
            .unwrap_or_else(|| panic!("{label}: stack {:#x} not received", sample.stack_id));
        (sample, stack.frames.clone())
    }
}

/// Checks the walk on `python`; true if it remembered stacks there (the
/// interpreter's code object deallocation could be probed).
fn check_interpreter(python: &Interpreter) -> bool {
    let label = python.label();
    let mut child = Command::new(&python.path)
        .args(["-c", SCRIPT, &CODE_REUSE_ROUNDS.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start python");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read");
    assert_eq!(line.trim(), "ready", "{label}: the script did not start");

    let pid = i32::try_from(child.id()).expect("pid");
    let process = PythonProcess::attach(pid).expect("attach python-frames");
    let mut sampler =
        StackSampler::attach(&process, "libc", "fsync").unwrap_or_else(|e| panic!("{label}: {e}"));
    let mut namer = StackNamer {
        codes: RemoteCodes::new(*process.memory(), *process.layout()),
        replaced: 0,
    };
    writeln!(stdin, "go").expect("write");

    let mut samples = Samples {
        label: label.clone(),
        pending: HashMap::new(),
    };
    let mut later: Vec<Expected> = Vec::new();
    let mut checked = 0usize;
    let mut generated_addresses = Vec::new();
    loop {
        line.clear();
        if stdout.read_line(&mut line).expect("read") == 0 || line.trim() == "done" {
            break;
        }
        let expected = parse_line(&line).unwrap_or_else(|| panic!("{label}: bad line {line:?}"));
        if expected.wait {
            let (sample, frames) = samples.next(&mut sampler, expected.tid);
            let named = namer.name(&mut sampler, &process, &frames);
            if expected.stack.len() <= MAX_FRAMES {
                assert_eq!(sample.status, 0, "{label}: walk status");
                assert_eq!(
                    named, expected.stack,
                    "{label}: stack of thread {}",
                    expected.tid
                );
            } else {
                // Cut: the innermost frames, marked.
                assert_eq!(sample.status, STATUS_TRUNCATED, "{label}: deep walk status");
                assert_eq!(named, expected.stack[..MAX_FRAMES], "{label}: deep stack");
            }
            if expected.stack[1].1 == "<template>" {
                generated_addresses.push(frames[1].code);
            }
            checked += 1;
            writeln!(stdin).expect("write");
        } else {
            later.push(expected);
        }
    }
    // The eight threads' stacks name module-level functions, alive till the end.
    let threads: HashSet<u32> = later.iter().map(|e| e.tid).collect();
    assert_eq!(threads.len(), 8, "{label}: eight threads reported");
    for expected in &later {
        let (_, frames) = samples.next(&mut sampler, expected.tid);
        let named = namer.name(&mut sampler, &process, &frames);
        assert_eq!(
            named, expected.stack,
            "{label}: stack of thread {}",
            expected.tid
        );
        checked += 1;
    }
    let counters = sampler.counters().expect("counters");
    let remembers = sampler.remembers_stacks();
    drop(sampler);
    writeln!(stdin).expect("write");
    let status = child.wait().expect("wait");
    assert!(status.success(), "{label}: the script failed: {status}");

    let walks = 1 + 1 + 8 * 5 + 2 + CODE_REUSE_ROUNDS;
    assert_eq!(checked, walks, "{label}: stacks checked");
    let count = |counter: WalkCounter| counters[counter as usize];
    assert_eq!(
        count(WalkCounter::Walks),
        walks as u64,
        "{label}: {counters:?}"
    );
    assert_eq!(count(WalkCounter::DepthCut), 1, "{label}: {counters:?}");
    for reason in [
        WalkCounter::NoTarget,
        WalkCounter::NoThreadState,
        WalkCounter::UnreadableFrame,
        WalkCounter::StackLost,
    ] {
        assert_eq!(count(reason), 0, "{label}: {reason:?} in {counters:?}");
    }
    let distinct: HashSet<u64> = generated_addresses.iter().copied().collect();
    assert!(
        distinct.len() < generated_addresses.len(),
        "{label}: no code-object address was reused, the reuse case went untested"
    );
    let replaced = namer.replaced;
    assert!(replaced > 0, "{label}: no reused address was noticed");
    if remembers {
        // The eight threads walk each of their stacks five times.
        assert!(
            count(WalkCounter::Remembered) >= 8,
            "{label}: stacks walked again were not remembered: {counters:?}"
        );
    }
    eprintln!(
        "{label}: {checked} stacks equal; {} generated code objects at {} addresses, {replaced} replacements noticed; counters {counters:?}",
        generated_addresses.len(),
        distinct.len()
    );
    remembers
}

#[test]
fn probe_walked_stacks_equal_the_interpreters_own() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let mut remembered = Vec::new();
    for python in all_for_tests() {
        if check_interpreter(&python) {
            remembered.push(python.label());
        }
    }
    // Where a PGO build may inline code_dealloc the walk remembers nothing,
    // but pyenv's builds do not.
    assert!(
        !remembered.is_empty(),
        "no interpreter had stacks remembered"
    );
    eprintln!("stacks remembered on {remembered:?}");
}
