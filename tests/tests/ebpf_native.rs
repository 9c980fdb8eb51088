// eBPF is a feature of the Linux kernel.
#![cfg(target_os = "linux")]

//! `sudo memray run --ebpf --native` and `memray attach --ebpf --native`: the probes copy
//! each allocation's stack top and userspace unwinds it. The C extension of the in-process
//! native tests (`tests/fixtures/native/tracker`, compiled here without frame pointers)
//! gives foo → bar → baz → valloc under the Python line that called it, read by memray
//! 1.20's `FileReader`, and the same native and hybrid stacks as the in-process `--native`
//! capture of the same script; inlined frames, C threads and Python recursion as memray's
//! scenarios expect; a library loaded with `dlopen` after the start is resolved.

use std::path::{Path, PathBuf};
use std::process::Command;

use memray_tests::interpreters::{self, Interpreter};
use memray_tests::native_extension::compile;
use memray_tests::native_scenarios::{self, reference_script, script, stacks_to_compare};
use memray_tests::paths;
use memray_tests::run::succeeded;
use memray_tests::skip;

/// The extension and the plugin library for `python`, in `directory`; returns the plugin.
fn build(python: &Path, directory: &Path) -> PathBuf {
    let flags = ["-g", "-fomit-frame-pointer"];
    let source = |name: &str| native_scenarios::directory().join(name);
    compile(
        python,
        &source("native_testext.c"),
        "native_testext",
        directory,
        &flags,
    );
    compile(
        python,
        &source("native_plugin.c"),
        "native_plugin",
        directory,
        &flags,
    );
    std::fs::read_dir(directory)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.to_string_lossy().contains("native_plugin"))
        .expect("the plugin")
}

/// `memray run [--ebpf] --native` of the scenario script's `case`; returns the capture.
fn run_native(
    python: &Interpreter,
    built: &Path,
    plugin: &Path,
    ebpf: bool,
    case: &str,
) -> PathBuf {
    let mode = if ebpf { "ebpf" } else { "tracker" };
    let capture = built.join(format!("{case}-{mode}.bin"));
    let mut command = Command::new(paths::memray_bin());
    command.arg("run");
    if ebpf {
        command.arg("--ebpf");
    }
    let output = command
        .arg("--native")
        .arg("--python")
        .arg(&python.path)
        .args(["-q", "-f", "-o"])
        .arg(&capture)
        .arg(script())
        .args(["run", case])
        .env("PYTHONPATH", built)
        .env("NATIVE_PLUGIN", plugin)
        .output()
        .expect("run memray");
    succeeded(
        &output,
        &format!("run --{mode} --native {case} on {}", python.label()),
    );
    capture
}

#[test]
fn run_ebpf_native_gives_the_extensions_native_stack_as_the_in_process_capture_does() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    // CPython 3.11 and 3.12: frame layouts apart.
    for python in interpreters::these(&[11, 12]) {
        let built = tempfile::tempdir().expect("tempdir");
        let plugin = build(&python.path, built.path());
        // The extension is imported (dlopen) after the capture started.
        let ours = run_native(&python, built.path(), &plugin, true, "simple");
        reference_script("check", &ours, Some("simple"));
        let inprocess = run_native(&python, built.path(), &plugin, false, "simple");
        let (ours, theirs) = (stacks_to_compare(&ours), stacks_to_compare(&inprocess));
        assert!(
            !theirs.is_empty(),
            "the in-process capture has the allocation"
        );
        assert_eq!(ours, theirs, "on {}", python.label());
    }
}

/// memray's inlined-frames, C-threads (100 × 100 allocations, no Python stack) and Python
/// recursion scenarios, checked by memray 1.20's reader.
#[test]
fn inlined_frames_c_threads_and_python_recursion() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let python = interpreters::reference_python();
    let built = tempfile::tempdir().expect("tempdir");
    let plugin = build(&python.path, built.path());
    for case in ["inline", "threads", "recursion"] {
        let capture = run_native(&python, built.path(), &plugin, true, case);
        reference_script("check", &capture, Some(case));
    }
}

#[test]
fn a_library_loaded_and_unloaded_while_recording_is_resolved() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let python = interpreters::reference_python();
    let built = tempfile::tempdir().expect("tempdir");
    let plugin = build(&python.path, built.path());
    let capture = run_native(&python, built.path(), &plugin, true, "dlopen");
    reference_script("check", &capture, Some("dlopen"));
}

#[test]
fn attach_ebpf_native_records_the_native_stacks_of_a_running_process() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let python = interpreters::reference_python();
    let built = tempfile::tempdir().expect("tempdir");
    build(&python.path, built.path());
    // Allocates through the extension once memray has attached (the file appears), and
    // exits, which ends the recording.
    let mut child = Command::new(&python.path)
        .args([
            "-c",
            "import os, time, native_testext\n\
             def run_case():\n    native_testext.run_simple()\n\
             while not os.path.exists('attached.bin'): time.sleep(0.01)\n\
             time.sleep(0.3)\n\
             run_case()\n\
             time.sleep(0.3)\n",
        ])
        .env("PYTHONPATH", built.path())
        .current_dir(built.path())
        .spawn()
        .expect("start python");
    let output = Command::new(paths::memray_bin())
        .args(["attach", "--ebpf", "--native"])
        .arg(child.id().to_string())
        .args(["-o", "attached.bin"])
        .current_dir(built.path())
        .output()
        .expect("run memray attach");
    succeeded(&output, "attach --ebpf --native until the exit");
    assert!(child.wait().expect("wait").success());
    reference_script("check", &built.path().join("attached.bin"), Some("simple"));
}
