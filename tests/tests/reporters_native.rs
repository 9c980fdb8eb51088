//! Reports of captures with native traces: our flame graph shows the same hybrid
//! Python+native stacks as memray 1.20's (node by node, files named alike), on a
//! capture memray recorded with `run --native` and on one we recorded, through the C
//! extension of tests/fixtures/native; and a mapped file gone since the capture is
//! warned about once.

use std::path::{Path, PathBuf};
use std::process::Command;

use memray_tests::captures::record_with_reference;
use memray_tests::html_pages::{memray_packed_data, memray_tree, our_payload, our_tree};
use memray_tests::native_extension;
use memray_tests::paths::memray_bin;
use memray_tests::reference::reference_memray;
use memray_tests::run::{output, stdout_of};

/// A directory of the test's own, with the extension built for memray 1.20's interpreter.
fn built(test: &str) -> PathBuf {
    let directory = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("reporters-native")
        .join(test);
    let _ = std::fs::remove_dir_all(&directory);
    native_extension::build(&reference_memray().python, &directory);
    directory
}

fn recorded_by_memray(directory: &Path) -> PathBuf {
    let pythonpath = directory.to_str().unwrap();
    record_with_reference(
        directory,
        "memray",
        &["--native"],
        &[("PYTHONPATH", pythonpath)],
        &native_extension::script(),
    )
}

fn recorded_by_us(directory: &Path) -> PathBuf {
    let capture = directory.join("ours.bin");
    let out = Command::new(memray_bin())
        .arg("run")
        .arg("--python")
        .arg(&reference_memray().python)
        .args(["--native", "-q", "-f", "-o"])
        .arg(&capture)
        .arg(native_extension::script())
        .env("PYTHONPATH", directory)
        .output()
        .expect("run our memray");
    assert!(
        out.status.success(),
        "memray run --native: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    capture
}

/// Our flame graph of `capture` and memray's, with `flags`, as flat trees.
fn compare_flamegraphs(capture: &Path, flags: &[&str]) {
    let directory = capture.parent().unwrap();
    let tag = flags.concat();
    let ours = directory.join(format!("ours{tag}.html"));
    let theirs = directory.join(format!("memray{tag}.html"));
    for (program, page) in [(memray_bin(), &ours), (reference_memray().memray, &theirs)] {
        let mut args = vec!["flamegraph", "-f", "-o", page.to_str().unwrap()];
        args.extend_from_slice(flags);
        args.push(capture.to_str().unwrap());
        stdout_of(program, args);
    }
    let (tree, _) = our_tree(&our_payload(&ours));
    let (memray, _) = memray_tree(&memray_packed_data(&theirs));
    let what = format!("flamegraph {flags:?} of {}", capture.display());
    // The extension's frames sit under the Python function that called it.
    let extension_under_python = memray.keys().any(|path| {
        let functions: Vec<&str> = path.iter().map(|f| f.1.as_str()).collect();
        let caller = functions.iter().position(|&f| f == "middle");
        let allocator = functions.iter().position(|&f| f == "baz");
        matches!((caller, allocator), (Some(c), Some(a)) if c < a)
            && path.iter().any(|f| f.2.ends_with("nativeext.c"))
    });
    assert!(extension_under_python, "{what}: memray's hybrid stacks");
    assert_eq!(tree, memray, "{what}");
}

#[test]
fn flamegraph_of_memrays_native_capture_is_memrays() {
    let capture = recorded_by_memray(&built("memray-capture"));
    compare_flamegraphs(&capture, &[]);
    compare_flamegraphs(&capture, &["--leaks"]);
}

#[test]
fn flamegraph_of_our_native_capture_is_memrays() {
    let capture = recorded_by_us(&built("our-capture"));
    compare_flamegraphs(&capture, &[]);
    compare_flamegraphs(&capture, &["--leaks"]);
}

#[test]
fn a_mapped_file_gone_since_the_capture_is_warned_about_once() {
    let directory = built("missing-file");
    let capture = recorded_by_memray(&directory);
    let extension = std::fs::read_dir(&directory)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.to_string_lossy().ends_with(".so"))
        .expect("the built extension");
    std::fs::remove_file(&extension).unwrap();
    let out = output(memray_bin(), ["summary", capture.to_str().unwrap()]);
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let warning = format!(
        "warning: {} is missing: its native frames are shown as <unknown>",
        extension.display()
    );
    assert_eq!(
        stderr.lines().filter(|line| *line == warning).count(),
        1,
        "stderr: {stderr}"
    );
    assert!(
        String::from_utf8(out.stdout).unwrap().contains("<unknown>"),
        "the extension's frames are unknown"
    );
}
