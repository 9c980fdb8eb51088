//! `memray run --native` with our tracker: memray's native scenarios (S15) through a C
//! extension compiled here with `-g`, with and without frame pointers, and a Python stack
//! deeper than the tracker keeps, each capture read by
//! memray 1.20's `FileReader` (which symbolizes our raw return addresses against our memory
//! maps with its own libbacktrace); the same native stacks as memray 1.20's own
//! `run --native`; the segment generations around `dlopen`/`dlclose`; and `memray parse`,
//! ours and memray's, agreeing on the records of our capture.

use std::path::{Path, PathBuf};
use std::process::Command;

use memray_tests::interpreters::{self, Interpreter};
use memray_tests::native_extension::ExtensionTarget;
use memray_tests::native_scenarios::{
    self, assert_loaded_then_gone_last, reference_script, script, segment_generations,
    stacks_to_compare,
};
use memray_tests::{paths, reference};

/// The extension (for `python`) and the plugin library, built into a directory of their
/// own per test and build variant (tests of this binary run at once).
fn build(python: &Path, test: &str, frame_pointers: bool) -> PathBuf {
    let target = ExtensionTarget::of(python);
    let variant = if frame_pointers { "fp" } else { "nofp" };
    let directory = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("tracker-native")
        .join(format!(
            "{test}-{}-{variant}",
            python.to_string_lossy().replace('/', "_")
        ));
    // Captures of an earlier run would be mistaken for this one's.
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).unwrap();
    let frame_pointer_flag = if frame_pointers {
        "-fno-omit-frame-pointer"
    } else {
        "-fomit-frame-pointer"
    };
    let compile = |source: &str, output: String, python_headers: bool| {
        let mut command = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()));
        command.args(["-shared", "-fPIC", "-g", "-O2", frame_pointer_flag]);
        if python_headers {
            command.args(&target.include_flags);
        }
        let status = command
            .arg("-o")
            .arg(directory.join(output))
            .arg(native_scenarios::directory().join(source))
            .arg("-lpthread")
            .status()
            .expect("run cc");
        assert!(status.success(), "compiling {source} failed");
    };
    compile(
        "native_testext.c",
        format!("native_testext{}", target.suffix),
        true,
    );
    compile("native_plugin.c", "native_plugin.so".into(), false);
    directory
}

/// Runs `case` under `memray run --native` (ours) with `flags`; returns the capture.
fn track(python: &Path, built: &Path, case: &str, flags: &[&str]) -> PathBuf {
    let capture = built.join(format!("{case}{}.bin", flags.concat()));
    let output = Command::new(paths::memray_bin())
        .arg("run")
        .arg("--python")
        .arg(python)
        .args(["--native", "-q", "-f", "-o"])
        .arg(&capture)
        .args(flags)
        .arg(script())
        .args(["run", case])
        .env("PYTHONPATH", built)
        .env("NATIVE_PLUGIN", built.join("native_plugin.so"))
        .output()
        .expect("run memray");
    assert!(
        output.status.success(),
        "{case} {flags:?} under {}: {}{}",
        python.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    capture
}

/// Tracks `case` and checks its capture with memray 1.20's reader.
fn passes(python: &Interpreter, built: &Path, case: &str, flags: &[&str]) {
    let capture = track(&python.path, built, case, flags);
    eprintln!("{case} {flags:?} on {}", python.label());
    reference_script("check", &capture, Some(case));
}

/// 3.8, 3.11, 3.12 and 3.14, the frame layouts that differ most (a missing one is skipped).
fn some_pythons() -> Vec<Interpreter> {
    interpreters::these(&[8, 11, 12, 14])
}

#[test]
fn s15_simple_and_inlined_stacks_on_every_python_with_and_without_frame_pointers() {
    for python in interpreters::all_for_tests() {
        let with = build(&python.path, "simple", true);
        passes(&python, &with, "simple", &[]);
        let without = build(&python.path, "simple", false);
        passes(&python, &without, "simple", &[]);
        passes(&python, &without, "inline", &[]);
    }
}

#[test]
fn s15_deep_recursion_threads_python_recursion_and_dlopen_dlclose() {
    for python in some_pythons() {
        let built = build(&python.path, "cases", false);
        for case in ["deep", "threads", "recursion", "dlopen"] {
            passes(&python, &built, case, &[]);
        }
    }
}

/// A Python recursion deeper than the 16 Ki frames the tracker keeps, passing through the C
/// extension every 100 calls: its innermost frames under an outermost `<truncated stack>`,
/// native frames intact. On 3.11 and the newest CPython (from 3.11 Python calls Python without
/// nesting C frames, so the native stack stays a few thousand frames deep).
#[test]
fn a_python_stack_deeper_than_the_kept_frames_ends_in_the_truncation_marker() {
    for python in some_pythons()
        .into_iter()
        .filter(|python| python.version >= (3, 11))
    {
        let built = build(&python.path, "deeper", false);
        passes(&python, &built, "deeper", &[]);
    }
}

#[test]
fn native_stacks_in_aggregated_captures_and_forked_children() {
    for python in some_pythons() {
        let built = build(&python.path, "modes", false);
        for case in ["simple", "deep", "dlopen"] {
            passes(&python, &built, case, &["--aggregate"]);
        }
        passes(&python, &built, "simple", &["--trace-python-allocators"]);
        let parent = track(&python.path, &built, "fork", &["--follow-fork"]);
        let prefix = format!("{}.", parent.file_name().unwrap().to_string_lossy());
        let children: Vec<PathBuf> = std::fs::read_dir(&built)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| {
                path.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(&prefix)
            })
            .collect();
        assert_eq!(children.len(), 1, "one child capture: {children:?}");
        reference_script("check", &children[0], Some("dlopen"));
        std::fs::remove_file(&children[0]).unwrap();
    }
}

#[test]
fn a_new_segment_generation_after_each_dlopen_and_dlclose() {
    let python = interpreters::reference_python();
    let built = build(&python.path, "generations", false);
    let capture = track(&python.path, &built, "dlopen", &["--no-compress"]);
    let generations = segment_generations(&capture);
    let has =
        |generation: &Vec<String>, name: &str| generation.iter().any(|file| file.ends_with(name));
    let executable = std::fs::canonicalize(&python.path).unwrap();
    assert!(
        has(&generations[0], &executable.to_string_lossy()),
        "the executable by its path: {:?}",
        generations[0]
    );
    assert!(generations
        .iter()
        .flatten()
        .all(|file| !file.contains("vdso")));
    assert_loaded_then_gone_last(&generations, "native_plugin.so");
}

#[test]
fn the_same_native_and_hybrid_stacks_as_memray_1_20_records() {
    let memray = reference::reference_memray();
    let built = build(&memray.python, "differential", false);
    for case in ["simple", "inline", "deep", "recursion", "dlopen"] {
        let ours = track(&memray.python, &built, case, &[]);
        let theirs = built.join(format!("{case}-memray.bin"));
        let status = Command::new(&memray.python)
            .args(["-m", "memray", "run", "--native", "-q", "-f", "-o"])
            .arg(&theirs)
            .arg(script())
            .args(["run", case])
            .env("PYTHONPATH", &built)
            .env("NATIVE_PLUGIN", built.join("native_plugin.so"))
            .status()
            .expect("run memray 1.20");
        assert!(status.success(), "memray 1.20 run --native {case}");
        let (ours, theirs) = (stacks_to_compare(&ours), stacks_to_compare(&theirs));
        assert!(
            !theirs.is_empty(),
            "{case}: memray recorded the allocations"
        );
        assert_eq!(ours, theirs, "{case}");
    }
}

/// The kind of each record `memray` (`program`, with `args` first) parses from `capture`.
fn parsed_kinds(program: &Path, args: &[&str], capture: &Path) -> Vec<String> {
    let output = Command::new(program)
        .args(args)
        .arg("parse")
        .arg(capture)
        .output()
        .expect("run memray parse");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| line.split_whitespace().next().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn memray_parse_reads_our_native_capture_as_ours_does() {
    let python = interpreters::reference_python();
    let memray = reference::reference_memray();
    let built = build(&python.path, "parse", false);
    for case in ["simple", "dlopen"] {
        let capture = track(&python.path, &built, case, &["--no-compress"]);
        let ours = parsed_kinds(&paths::memray_bin(), &[], &capture);
        let theirs = parsed_kinds(&memray.python, &["-m", "memray"], &capture);
        assert!(
            ours.iter().any(|kind| kind == "NATIVE_FRAME_ID"),
            "{ours:?}"
        );
        assert_eq!(ours, theirs, "{case}");
    }
}
