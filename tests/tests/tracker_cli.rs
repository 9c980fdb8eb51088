//! `memray run` behaviours compared with memray 1.20's own `memray run`: the
//! messages for modules that cannot be run, and programs that `dlopen`
//! libraries (nothing allocated inside the loader is recorded, and bare names
//! are still found through the calling library's RUNPATH).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use memray_tests::{interpreters, paths, reference};

fn fixtures() -> PathBuf {
    paths::fixtures().join("tracker")
}

fn ours(python: &Path, workdir: &Path, args: &[&str]) -> Output {
    Command::new(paths::memray_bin())
        .arg("run")
        .arg("--python")
        .arg(python)
        .args(args)
        .current_dir(workdir)
        .output()
        .expect("run our memray")
}

fn theirs(workdir: &Path, args: &[&str]) -> Output {
    Command::new(reference::reference_memray().memray)
        .arg("run")
        .args(args)
        .current_dir(workdir)
        .output()
        .expect("run memray 1.20")
}

#[test]
fn modules_that_cannot_be_run_are_reported_like_memray() {
    let python = interpreters::reference_python();
    let workdir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        workdir.path().join("fails_to_import.py"),
        "raise ImportError('broken on purpose')\n",
    )
    .expect("write the module");
    for module in ["no_such_module", "json.no_such", "json", "fails_to_import"] {
        let args = ["-f", "-o", "out.bin", "-m", module];
        let (ours, theirs) = (
            ours(&python.path, workdir.path(), &args),
            theirs(workdir.path(), &args),
        );
        assert_eq!(ours.status.code(), Some(1), "-m {module}");
        assert_eq!(ours.status.code(), theirs.status.code(), "-m {module}");
        assert_eq!(
            String::from_utf8_lossy(&ours.stderr),
            String::from_utf8_lossy(&theirs.stderr),
            "-m {module}: stderr"
        );
        assert_eq!(
            String::from_utf8_lossy(&ours.stdout),
            String::from_utf8_lossy(&theirs.stdout),
            "-m {module}: stdout"
        );
    }
}

/// Builds libloader.so and sub/libtarget.so (the loader's RUNPATH is `$ORIGIN/sub`).
fn build_loader(directory: &Path) -> PathBuf {
    let sub = directory.join("sub");
    std::fs::create_dir_all(&sub).expect("create sub/");
    let gcc = |args: &[&std::ffi::OsStr]| {
        let status = Command::new("gcc")
            .args(["-shared", "-fPIC", "-O1", "-Wall", "-Werror"])
            .args(args)
            .status()
            .expect("run gcc");
        assert!(status.success(), "gcc {args:?} failed");
    };
    let target = sub.join("libtarget.so");
    gcc(&[
        "-o".as_ref(),
        target.as_os_str(),
        fixtures().join("loader/target.c").as_os_str(),
    ]);
    let loader = directory.join("libloader.so");
    gcc(&[
        "-Wl,--enable-new-dtags,-rpath,$ORIGIN/sub".as_ref(),
        "-o".as_ref(),
        loader.as_os_str(),
        fixtures().join("loader/loader.c").as_os_str(),
        "-ldl".as_ref(),
    ]);
    loader
}

fn check_capture(capture: &Path, label: &str) {
    let checked = Command::new(reference::reference_memray().python)
        .arg(fixtures().join("loader/check.py"))
        .arg(capture)
        .output()
        .expect("run the check");
    assert!(
        checked.status.success(),
        "{label}: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}

#[test]
fn allocations_inside_dlopen_are_not_recorded_and_runpath_still_works() {
    let workdir = tempfile::tempdir().expect("tempdir");
    let loader = build_loader(workdir.path());
    let program = fixtures().join("loader/program.py");
    let run_args = |output: &str| {
        vec![
            "-q".to_string(),
            "-f".to_string(),
            "-o".to_string(),
            output.to_string(),
            program.to_string_lossy().into_owned(),
            loader.to_string_lossy().into_owned(),
        ]
    };
    let theirs_args = run_args("memray.bin");
    let output = theirs(
        workdir.path(),
        &theirs_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert!(output.status.success(), "memray 1.20: {output:?}");
    check_capture(&workdir.path().join("memray.bin"), "memray 1.20");
    for python in interpreters::all_for_tests() {
        let capture = format!("ours-{}.bin", python.label());
        let args = run_args(&capture);
        let output = ours(
            &python.path,
            workdir.path(),
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        assert!(
            output.status.success(),
            "Python {}: {}",
            python.label(),
            String::from_utf8_lossy(&output.stderr)
        );
        check_capture(&workdir.path().join(&capture), &python.label());
    }
}
