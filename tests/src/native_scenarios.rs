//! memray's native scenarios (S15, `tests/fixtures/native/tracker`): the script that runs
//! them under any tracker and checks a capture with memray 1.20's reader, shared by the
//! in-process and the eBPF native tests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::{paths, reference};

/// The scenarios' directory: the extension, the plugin and the script.
pub fn directory() -> PathBuf {
    paths::fixtures().join("native").join("tracker")
}

pub fn script() -> PathBuf {
    directory().join("native_scenarios.py")
}

/// Runs the scenario script's `mode` under memray 1.20's interpreter; returns its stdout.
pub fn reference_script(mode: &str, capture: &Path, case: Option<&str>) -> String {
    let memray = reference::reference_memray();
    let output = Command::new(&memray.python)
        .arg(script())
        .arg(mode)
        .arg(capture)
        .args(case)
        .output()
        .expect("run the reference python");
    assert!(
        output.status.success(),
        "{mode} {case:?} of {}: {}{}",
        capture.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Each stack of one script's allocations by size, cut where the two runners' own frames
/// begin: the native one after the first eval-loop frame, the hybrid one after `<module>`.
/// Without the frame CPython adds to every call while a profile function is set (memray
/// sets one; we read the frames instead).
pub fn stacks_to_compare(capture: &Path) -> HashMap<u64, (Vec<String>, Vec<String>)> {
    let cut = |stack: &Value, last: &dyn Fn(&str) -> bool| -> Vec<String> {
        let names: Vec<String> = stack
            .as_array()
            .unwrap()
            .iter()
            .map(|name| name.as_str().unwrap().to_owned())
            .filter(|name| name != "trace_call_function")
            .collect();
        let end = names
            .iter()
            .position(|name| last(name))
            .map_or(names.len(), |i| i + 1);
        names[..end].to_vec()
    };
    reference_script("stacks", capture, None)
        .lines()
        .map(|line| {
            let record: Value = serde_json::from_str(line).unwrap();
            let native = cut(&record["native"], &|name| {
                name.contains("_PyEval_EvalFrameDefault")
            });
            let hybrid = cut(&record["hybrid"], &|name| name == "<module>");
            (record["size"].as_u64().unwrap(), (native, hybrid))
        })
        .collect()
}
