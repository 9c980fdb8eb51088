//! memray's native scenarios (S15, `tests/fixtures/native/tracker`): the script that runs
//! them under any tracker and checks a capture with memray 1.20's reader, shared by the
//! in-process and the eBPF native tests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use memray_format::{CaptureReader, Record};
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

/// The file names of the objects of each segment generation of `capture`, in order.
pub fn segment_generations(capture: &Path) -> Vec<Vec<String>> {
    let mut reader = CaptureReader::open(capture).unwrap();
    let mut generations: Vec<Vec<String>> = Vec::new();
    while let Some(record) = reader.next_record().unwrap() {
        match record {
            Record::MemoryMapStart => generations.push(Vec::new()),
            Record::SegmentHeader { filename, .. } => generations
                .last_mut()
                .expect("a SEGMENT_HEADER after a MEMORY_MAP_START")
                .push(String::from_utf8_lossy(filename).into_owned()),
            _ => {}
        }
    }
    generations
}

/// Checks that the library `file_name` (the `dlopen` case's plugin) appears in the segment
/// generations with its `dlopen` and leaves with its `dlclose`, their last change.
pub fn assert_loaded_then_gone_last(generations: &[Vec<String>], file_name: &str) {
    let path_end = format!("/{file_name}");
    let loaded: Vec<bool> = generations
        .iter()
        .map(|generation| generation.iter().any(|file| file.ends_with(&path_end)))
        .collect();
    let first = loaded
        .iter()
        .position(|&loaded| loaded)
        .expect("loaded once");
    assert!(loaded[first..loaded.len() - 1].iter().all(|&loaded| loaded));
    assert!(!loaded[loaded.len() - 1], "gone after dlclose: {loaded:?}");
}
