//! Loading the probes as an ordinary user fails with one line saying what is
//! needed. The test binary runs itself as `nobody` for that.

use std::os::unix::process::CommandExt;
use std::process::Command;

use memray_ebpf::{Options, Session};
use memray_tests::skip;

const CHILD: &str = "MEMRAY_EBPF_PRIVILEGES_CHILD";
const NOBODY: u32 = 65534;

/// The part run as `nobody` (does nothing in a normal run).
#[test]
fn child_loads_without_privileges() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    match Session::load(Options::default()) {
        Ok(_) => println!("loaded"),
        Err(error) => println!("error: {error}"),
    }
}

#[test]
fn an_ordinary_user_gets_one_clear_line() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let output = Command::new(std::env::current_exe().expect("this test binary"))
        .args([
            "--exact",
            "child_loads_without_privileges",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .uid(NOBODY)
        .gid(NOBODY)
        .output()
        .expect("run as nobody");
    let stdout = String::from_utf8_lossy(&output.stdout);
    // The harness prints the answer after the test's name.
    let line = ["error: ", "loaded"]
        .iter()
        .find_map(|answer| stdout.find(answer).map(|at| stdout[at..].lines().next()))
        .flatten()
        .unwrap_or_else(|| panic!("no answer from the child: {stdout}"));
    assert_eq!(
        line,
        "error: the eBPF mode needs root, or the CAP_BPF and CAP_PERFMON capabilities: run it with sudo (sudo memray run --ebpf …)"
    );
}
