//! The in-process walk, run inside each installed CPython through the ctypes
//! test library (python-frames/testlib), against CPython's own view.

use memray_tests::{interpreters, paths, run};

#[test]
fn inprocess_walk_matches_the_interpreters_own_view() {
    let lib = paths::built_artifact("libpython_frames_testlib.so");
    let script = paths::fixtures().join("python-frames/inprocess_walk.py");
    for python in interpreters::all_for_tests() {
        let out = run::output(&python.path, [script.as_os_str(), lib.as_os_str()]);
        assert!(
            out.status.success(),
            "{}: {}{}",
            python.label(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.starts_with("ok 10"), "{}: {stdout}", python.label());
        eprintln!("{}: {}", python.label(), stdout.trim());
    }
}
