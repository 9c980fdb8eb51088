// eBPF is a feature of the Linux kernel.
#![cfg(target_os = "linux")]

//! `sudo memray run --ebpf --native` and `memray attach --ebpf --native`: the probes copy
//! each allocation's stack top and userspace unwinds it. The C extension of the in-process
//! native tests (`tests/fixtures/native/tracker`, compiled here without frame pointers)
//! gives foo → bar → baz → valloc under the Python line that called it, read by memray
//! 1.20's `FileReader`, and the same native and hybrid stacks as the in-process `--native`
//! capture of the same script; inlined frames, C threads and Python recursion as memray's
//! scenarios expect; a C recursion 2,100 calls deep whole; a library loaded with `dlopen`
//! after the start is resolved, and leaves the memory maps with its `dlclose`.

use std::path::{Path, PathBuf};
use std::process::Command;

use memray_tests::interpreters::{self, Interpreter};
use memray_tests::native_extension::compile;
use memray_tests::native_scenarios::{
    self, assert_loaded_then_gone_last, reference_script, script, segment_generations,
    stacks_to_compare,
};
use memray_tests::paths;
use memray_tests::run::succeeded;
use memray_tests::skip;
use tempfile::TempDir;

/// The extension and the plugin library built for one interpreter, in a directory of
/// their own.
struct Scenarios {
    python: Interpreter,
    built: TempDir,
    plugin: PathBuf,
}

impl Scenarios {
    fn build(python: Interpreter) -> Scenarios {
        let built = tempfile::tempdir().expect("tempdir");
        let flags = ["-g", "-fomit-frame-pointer"];
        for module in ["native_testext", "native_plugin"] {
            let source = native_scenarios::directory().join(format!("{module}.c"));
            compile(&python.path, &source, module, built.path(), &flags);
        }
        let plugin = std::fs::read_dir(built.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .find(|path| path.to_string_lossy().contains("native_plugin"))
            .expect("the plugin");
        Scenarios {
            python,
            built,
            plugin,
        }
    }

    /// For the reference interpreter; `None` (the skip recorded) where eBPF cannot run.
    fn for_reference_python() -> Option<Scenarios> {
        skip::needs_built_ebpf(memray_ebpf::is_built())
            .then(|| Scenarios::build(interpreters::reference_python()))
    }

    fn directory(&self) -> &Path {
        self.built.path()
    }

    /// `memray run [--ebpf] --native` of the scenario script's `case`; returns the capture.
    fn run(&self, ebpf: bool, case: &str) -> PathBuf {
        let mode = if ebpf { "ebpf" } else { "tracker" };
        let capture = self.directory().join(format!("{case}-{mode}.bin"));
        let mut command = Command::new(paths::memray_bin());
        command.arg("run");
        if ebpf {
            command.arg("--ebpf");
        }
        let output = command
            .arg("--native")
            .arg("--python")
            .arg(&self.python.path)
            .args(["-q", "-f", "-o"])
            .arg(&capture)
            .arg(script())
            .args(["run", case])
            .env("PYTHONPATH", self.directory())
            .env("NATIVE_PLUGIN", &self.plugin)
            .output()
            .expect("run memray");
        succeeded(
            &output,
            &format!("run --{mode} --native {case} on {}", self.python.label()),
        );
        capture
    }

    /// Records `case` under `run --ebpf --native` and checks it with memray 1.20's reader.
    fn check_ebpf(&self, case: &str) {
        reference_script("check", &self.run(true, case), Some(case));
    }

    /// Records and checks `case` under `run --ebpf --native`, and compares its native and
    /// hybrid stacks with the in-process `--native` capture's.
    fn same_stacks_as_in_process(&self, case: &str) {
        let ours = self.run(true, case);
        reference_script("check", &ours, Some(case));
        let inprocess = self.run(false, case);
        let (ours, theirs) = (stacks_to_compare(&ours), stacks_to_compare(&inprocess));
        assert!(
            !theirs.is_empty(),
            "the in-process capture has the allocation"
        );
        assert_eq!(ours, theirs, "{case} on {}", self.python.label());
    }
}

#[test]
fn run_ebpf_native_gives_the_extensions_native_stack_as_the_in_process_capture_does() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    // CPython 3.11 and 3.12: frame layouts apart.
    for python in interpreters::these(&[11, 12]) {
        // The extension is imported (dlopen) after the capture started.
        Scenarios::build(python).same_stacks_as_in_process("simple");
    }
}

/// memray's C recursion 2,100 calls deep: every frame down to the Python line, as in-process
/// (the stack copy is not cut); and 1,000 such allocations in a row, none losing its copy to
/// a full ring.
#[test]
fn a_c_recursion_deeper_than_2048_frames_keeps_every_frame_even_in_a_burst() {
    let Some(scenarios) = Scenarios::for_reference_python() else {
        return;
    };
    scenarios.same_stacks_as_in_process("deep");
    scenarios.check_ebpf("deep_burst");
}

/// memray's inlined-frames, C-threads (100 × 100 allocations, no Python stack) and Python
/// recursion scenarios, checked by memray 1.20's reader.
#[test]
fn inlined_frames_c_threads_and_python_recursion() {
    let Some(scenarios) = Scenarios::for_reference_python() else {
        return;
    };
    for case in ["inline", "threads", "recursion"] {
        scenarios.check_ebpf(case);
    }
}

/// The plugin, loaded after the start, resolved; unloaded, gone from the last memory map (its
/// munmap followed), and the allocations after it resolved.
#[test]
fn a_library_loaded_and_unloaded_while_recording_is_resolved_then_gone() {
    let Some(scenarios) = Scenarios::for_reference_python() else {
        return;
    };
    let capture = scenarios.run(true, "dlopen");
    reference_script("check", &capture, Some("dlopen"));
    let plugin = scenarios.plugin.file_name().unwrap().to_string_lossy();
    assert_loaded_then_gone_last(&segment_generations(&capture), &plugin);
}

#[test]
fn attach_ebpf_native_records_the_native_stacks_of_a_running_process() {
    let Some(scenarios) = Scenarios::for_reference_python() else {
        return;
    };
    let built = scenarios.directory();
    // Allocates through the extension once memray has attached (the file appears), and
    // exits, which ends the recording.
    let mut child = Command::new(&scenarios.python.path)
        .args([
            "-c",
            "import os, time, native_testext\n\
             def run_case():\n    native_testext.run_simple()\n\
             while not os.path.exists('attached.bin'): time.sleep(0.01)\n\
             time.sleep(0.3)\n\
             run_case()\n\
             time.sleep(0.3)\n",
        ])
        .env("PYTHONPATH", built)
        .current_dir(built)
        .spawn()
        .expect("start python");
    let output = Command::new(paths::memray_bin())
        .args(["attach", "--ebpf", "--native"])
        .arg(child.id().to_string())
        .args(["-o", "attached.bin"])
        .current_dir(built)
        .output()
        .expect("run memray attach");
    succeeded(&output, "attach --ebpf --native until the exit");
    assert!(child.wait().expect("wait").success());
    reference_script("check", &built.join("attached.bin"), Some("simple"));
}
