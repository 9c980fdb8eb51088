//! Reading every thread of a live CPython (each installed version) from the
//! outside, compared frame for frame with what the process reports itself;
//! and the human-readable dump built on it.

use memray_tests::interpreters::{self, Interpreter};
use memray_tests::parked_python::ParkedPython;
use python_frames::{dump_stacks, CodeCache, Error, PythonProcess, ThreadNameReader};

#[test]
fn remote_stacks_match_the_interpreters_own_view() {
    let all = interpreters::all_for_tests();
    for python in all.iter().chain(&system_pythons(&all)) {
        let parked = ParkedPython::start(&python.path);
        let process = PythonProcess::attach(parked.pid())
            .unwrap_or_else(|e| panic!("{}: attach: {e}", python.label()));
        assert_eq!(
            (process.layout().major, process.layout().minor),
            python.version,
            "{}: detected version",
            python.label()
        );
        let snapshot = process.snapshot(1024).expect("snapshot");
        let mut cache = CodeCache::new();
        for (native_id, want) in parked.expected_threads() {
            let stack = snapshot
                .iter()
                .find(|s| s.native_thread_id == Some(native_id))
                .unwrap_or_else(|| panic!("{}: no thread {native_id} read", python.label()));
            assert!(!stack.walk.truncated && !stack.walk.broken);
            assert!(
                stack.frames.last().is_some_and(|f| f.is_entry),
                "outermost frame is an entry frame"
            );
            let got: Vec<(String, String, i64, String)> = stack
                .frames
                .iter()
                .map(|frame| {
                    let code = process.code(&mut cache, frame.code).expect("code object");
                    let line = code.line(process.layout(), frame.instruction_offset);
                    let qualname = code.qualname.clone().unwrap_or_else(|| code.name.clone());
                    (
                        code.name.clone(),
                        code.filename.clone(),
                        i64::from(line),
                        qualname,
                    )
                })
                .collect();
            let want: Vec<(String, String, i64, String)> = want
                .into_iter()
                .map(|f| (f.name, f.file, f.line, f.qualname))
                .collect();
            assert_eq!(got, want, "{}: thread {native_id}", python.label());
        }
        check_truncation_keeps_innermost(&process, &parked, &mut cache);
        let mut names: Vec<(u32, String)> =
            ThreadNameReader::new().read(&process).into_iter().collect();
        names.sort();
        let mut want = parked.expected_names();
        want.sort();
        assert_eq!(names, want, "{}: thread names", python.label());
        eprintln!(
            "{}: {} threads match ({})",
            python.label(),
            parked.expected_threads().len(),
            process.binary().display()
        );
    }
}

/// `python3.X` executables on PATH that `supported()` left out because it keeps
/// one per version: e.g. Debian's stripped, statically linked, LTO-built
/// /usr/bin/python3.11 next to pyenv's shared 3.11.
fn system_pythons(supported: &[Interpreter]) -> Vec<Interpreter> {
    let known: Vec<_> = supported
        .iter()
        .filter_map(|i| i.path.canonicalize().ok())
        .collect();
    let mut found: Vec<Interpreter> = Vec::new();
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for minor in 8..=14 {
            let candidate = dir.join(format!("python3.{minor}"));
            let Ok(real) = candidate.canonicalize() else {
                continue;
            };
            let shim = real.to_string_lossy().contains("shims");
            let seen = known.contains(&real)
                || found
                    .iter()
                    .any(|f| f.path.canonicalize().ok() == Some(real.clone()));
            if !shim && !seen {
                found.push(Interpreter {
                    version: (3, minor),
                    path: real,
                });
            }
        }
    }
    found
}

/// With a 50-frame cap, the 500-deep recursion keeps its 50 innermost frames.
fn check_truncation_keeps_innermost(
    process: &PythonProcess,
    parked: &ParkedPython,
    cache: &mut CodeCache,
) {
    let (native_id, want) = parked
        .expected_threads()
        .into_iter()
        .max_by_key(|(_, frames)| frames.len())
        .expect("threads");
    let snapshot = process.snapshot(50).expect("snapshot");
    let stack = snapshot
        .iter()
        .find(|s| s.native_thread_id == Some(native_id))
        .expect("the deep thread");
    assert!(stack.walk.truncated);
    let names: Vec<String> = stack
        .frames
        .iter()
        .map(|f| process.code(cache, f.code).expect("code").name.clone())
        .collect();
    let want: Vec<String> = want[..50].iter().map(|f| f.name.clone()).collect();
    assert_eq!(names, want);
}

#[test]
fn dump_lists_every_thread_and_frame() {
    let python = interpreters::reference_python();
    let parked = ParkedPython::start(&python.path);
    let text = dump_stacks(parked.pid(), 1024).expect("dump");
    assert!(text.starts_with(&format!(
        "Process {}: CPython {}",
        parked.pid(),
        python.label()
    )));
    for (native_id, frames) in parked.expected_threads() {
        let header = format!("\nThread {native_id} (");
        let at = text
            .find(&header)
            .unwrap_or_else(|| panic!("{header:?} in\n{text}"));
        let body: Vec<&str> = text[at + 1..].lines().skip(1).collect();
        for (i, frame) in frames.iter().enumerate() {
            let want = format!("    {} ({}:{})", frame.qualname, frame.file, frame.line);
            assert_eq!(body[i], want, "frame {i} of thread {native_id}");
        }
    }
}

#[test]
fn clear_errors_for_missing_and_non_python_processes() {
    let missing = dump_stacks(i32::MAX, 10).unwrap_err();
    assert!(matches!(missing, Error::NoSuchProcess { .. }), "{missing}");
    let own = dump_stacks(std::process::id() as i32, 10).unwrap_err();
    assert!(matches!(own, Error::NotPython { .. }), "{own}");
    assert!(own.to_string().contains("is not a CPython process"));
}
