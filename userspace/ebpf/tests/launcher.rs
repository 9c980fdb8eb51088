//! The launcher of `sudo memray run --ebpf`: the program is held before
//! `exec` until released, runs as the invoking user (uid, gid, supplementary
//! groups, HOME, USER), and its exit status or signal is reported.

use std::ffi::{OsStr, OsString};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use memray_ebpf::{HeldProgram, ProgramExit, ProgramOutput, RunAs};
use memray_tests::interpreters;
use memray_tests::skip::{self, Requirement};

const USER: &str = "memray-ebpf-test";
const EXTRA_GROUP: &str = "memray-ebpf-extra";

fn id(args: &[&str]) -> Option<u32> {
    let output = Command::new("id").args(args).output().ok()?;
    String::from_utf8(output.stdout).ok()?.trim().parse().ok()
}

/// A user with a supplementary group, created on first use.
fn test_user() -> RunAs {
    if id(&["-u", USER]).is_none() {
        let _ = Command::new("groupadd").arg(EXTRA_GROUP).status();
        let status = Command::new("useradd")
            .args([
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "-G",
                EXTRA_GROUP,
                USER,
            ])
            .status()
            .expect("run useradd");
        assert!(
            status.success() || id(&["-u", USER]).is_some(),
            "useradd failed"
        );
    }
    RunAs::user(id(&["-u", USER]).expect("uid"), None).expect("look the user up")
}

fn run(program: &str, args: &[&str], run_as: Option<&RunAs>) -> ProgramExit {
    let args: Vec<OsString> = args.iter().map(OsString::from).collect();
    let mut held = HeldProgram::start(OsStr::new(program), &args, run_as, ProgramOutput::Inherited)
        .expect("start");
    held.release().expect("release");
    held.wait().expect("wait")
}

#[test]
fn runs_as_the_invoking_user_once_released() {
    if !skip::needs(&[Requirement::Root]) {
        return;
    }
    let user = test_user();
    assert!(user.groups.len() >= 2, "{user:?}");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let report = dir.path().join("identity");
    let script =
        "import json, os, sys; json.dump([os.getuid(), os.getgid(), sorted(os.getgroups()), \
                  os.environ['HOME'], os.environ['USER']], open(sys.argv[1], 'w'))";
    let Some(python) = interpreters::for_every_user() else {
        skip::skip_part(
            "a python3 other users may run",
            "every python3 on PATH is in a directory only root may enter",
        );
        return;
    };
    let args = [OsString::from("-c"), script.into(), report.clone().into()];
    let mut held = HeldProgram::start(
        python.as_os_str(),
        &args,
        Some(&user),
        ProgramOutput::Inherited,
    )
    .expect("start the program");
    // Held: still our fork, nothing written.
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(!report.exists(), "the program ran before it was released");
    held.release().expect("release");
    assert_eq!(held.wait().expect("wait"), ProgramExit::Exited(0));

    let written = std::fs::read_to_string(&report).expect("the program's report");
    let mut groups = user.groups.clone();
    groups.sort_unstable();
    groups.dedup();
    let expected = format!(
        "[{}, {}, {:?}, \"{}\", \"{}\"]",
        user.uid,
        user.gid,
        groups,
        user.home.display(),
        user.name
    );
    assert_eq!(written, expected);
}

#[test]
fn reports_exit_codes_signals_and_programs_that_cannot_run() {
    assert_eq!(run("sh", &["-c", "exit 7"], None), ProgramExit::Exited(7));
    assert_eq!(
        run("sh", &["-c", "kill -TERM $$"], None),
        ProgramExit::Signaled(libc::SIGTERM)
    );
    let missing = HeldProgram::start(
        OsStr::new("no-such-program-anywhere"),
        &[],
        None,
        ProgramOutput::Inherited,
    );
    assert!(missing.is_err());
    // Found but not executable: exec fails in the child and release says so.
    let dir = tempfile::tempdir().expect("tempdir");
    let text = dir.path().join("not-a-program");
    std::fs::write(&text, "hello").expect("write");
    let mut held =
        HeldProgram::start(text.as_os_str(), &[], None, ProgramOutput::Inherited).expect("fork");
    let error = held.release().expect_err("exec must fail").to_string();
    assert!(error.contains("Permission denied"), "{error}");
}
