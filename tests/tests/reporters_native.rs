//! Reports of captures with native traces: our flame graph shows the same hybrid
//! Python+native stacks as memray 1.20's (node by node, files named alike; peak, leaks
//! and the temporal views), on captures memray recorded with `run --native` (plain and
//! `--aggregate`) and on one we recorded, through the C extension of
//! tests/fixtures/native; and a mapped file gone since the capture is warned about once.

use std::path::{Path, PathBuf};
use std::process::Command;

use memray_tests::captures::record_with_reference;
use memray_tests::html_pages::{
    memray_intervals, memray_packed_data, memray_tree, our_intervals, our_payload, our_tree,
    PathFrame,
};
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

/// memray 1.20's `run --native` capture of the script, with `flags`.
fn recorded_by_memray(directory: &Path, name: &str, flags: &[&str]) -> PathBuf {
    let pythonpath = directory.to_str().unwrap();
    let flags: Vec<&str> = ["--native"].iter().chain(flags).copied().collect();
    record_with_reference(
        directory,
        name,
        &flags,
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

/// Our flame graph of `capture` and memray's, with `flags`: the same nodes (or, for
/// `--temporal`, the same intervals on the same nodes).
fn compare_flamegraphs(capture: &Path, flags: &[&str]) {
    let directory = capture.parent().unwrap();
    let name = capture.file_stem().unwrap().to_str().unwrap();
    let tag = flags.concat();
    let ours = directory.join(format!("{name}-ours{tag}.html"));
    let theirs = directory.join(format!("{name}-memray{tag}.html"));
    for (program, page) in [(memray_bin(), &ours), (reference_memray().memray, &theirs)] {
        let mut args = vec!["flamegraph", "-f", "-o", page.to_str().unwrap()];
        args.extend_from_slice(flags);
        args.push(capture.to_str().unwrap());
        stdout_of(program, args);
    }
    let payload = our_payload(&ours);
    let packed = memray_packed_data(&theirs);
    let what = format!("flamegraph {flags:?} of {}", capture.display());
    let (tree, _) = our_tree(&payload);
    let (memray, _) = memray_tree(&packed);
    // The extension's frames sit under the Python function that called it.
    let extension_under_python = memray.keys().any(|path| {
        let functions: Vec<&str> = path.iter().map(|f| f.1.as_str()).collect();
        let caller = functions.iter().position(|&f| f == "middle");
        let allocator = functions.iter().position(|&f| f == "baz");
        matches!((caller, allocator), (Some(c), Some(a)) if c < a)
            && path.iter().any(|f| f.2.ends_with("nativeext.c"))
    });
    assert!(extension_under_python, "{what}: memray's hybrid stacks");
    if flags.contains(&"--temporal") {
        let intervals = our_intervals(&payload);
        assert!(!intervals.is_empty(), "{what}: intervals");
        let theirs = memray_intervals(&packed);
        assert_eq!(intervals.len(), theirs.len(), "{what}: intervals");
        for (ours, theirs) in intervals.iter().zip(&theirs) {
            let (ours_rest, theirs_rest) = (
                (ours.0, ours.1, ours.3, ours.4),
                (theirs.0, theirs.1, theirs.3, theirs.4),
            );
            assert!(
                ours_rest == theirs_rest && same_path(&ours.2, &theirs.2),
                "{what}: {ours:?}\nmemray's: {theirs:?}"
            );
        }
    } else {
        assert_eq!(tree.len(), memray.len(), "{what}: nodes");
        for (path, values) in &memray {
            let ours = tree.iter().find(|(ours, _)| same_path(ours, path));
            assert_eq!(
                ours.map(|(_, v)| v),
                Some(values),
                "{what}: {:?}",
                path.last()
            );
        }
    }
}

/// memray's libbacktrace finds no line for a few return addresses blazesym resolves (one
/// is `_PyPegen_lookahead`'s call through a function pointer): memray shows that frame as
/// `<unknown>`, line 0. Our frame stands for memray's if it differs only there.
fn same_frame(ours: &PathFrame, theirs: &PathFrame) -> bool {
    let unresolved = theirs.2 == "<unknown>" && theirs.3 == 0;
    ours == theirs || (unresolved && ours.0 == theirs.0 && ours.1 == theirs.1)
}

fn same_path(ours: &[PathFrame], theirs: &[PathFrame]) -> bool {
    ours.len() == theirs.len() && ours.iter().zip(theirs).all(|(o, t)| same_frame(o, t))
}

/// Every flame graph mode `capture` allows (an aggregated one has no temporal view).
fn compare_every_flamegraph(capture: &Path, temporal: bool) {
    compare_flamegraphs(capture, &[]);
    compare_flamegraphs(capture, &["--leaks"]);
    if temporal {
        compare_flamegraphs(capture, &["--temporal"]);
        compare_flamegraphs(capture, &["--temporal", "--leaks"]);
    }
}

#[test]
fn flamegraph_of_memrays_native_captures_is_memrays() {
    let directory = built("memray-capture");
    compare_every_flamegraph(&recorded_by_memray(&directory, "memray", &[]), true);
    let aggregated = recorded_by_memray(&directory, "aggregated", &["--aggregate"]);
    compare_every_flamegraph(&aggregated, false);
}

#[test]
fn flamegraph_of_our_native_capture_is_memrays() {
    compare_every_flamegraph(&recorded_by_us(&built("our-capture")), true);
}

#[test]
fn a_mapped_file_gone_since_the_capture_is_warned_about_once() {
    let directory = built("missing-file");
    let capture = recorded_by_memray(&directory, "memray", &[]);
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
