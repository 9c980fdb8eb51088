//! How `memray run` starts the program and ends its capture: arguments of
//! any length reach it as plain Python passes them, `ps` shows a short
//! command, `sys.path` follows `-I`, `-P` and `PYTHONSAFEPATH` exactly as
//! plain Python does, a disk that fills up during the run is said, not
//! hidden, and the help and messages promise nothing that does not exist.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use memray_tests::interpreters::{self, Interpreter};
use memray_tests::small_disk::SmallDisk;
use memray_tests::{paths, reference};

fn memray_run(python: &Path, workdir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(paths::memray_bin());
    command
        .args(["run", "-q", "-f", "-o", "out.bin", "--python"])
        .arg(python)
        .args(args)
        .current_dir(workdir);
    command
}

fn run(mut command: Command) -> Output {
    command.output().expect("start the command")
}

fn stdout_of(output: &Output, label: &str) -> String {
    assert!(
        output.status.success(),
        "{label}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("utf-8 output")
}

#[test]
fn arguments_beyond_the_kernels_single_argument_limit_reach_the_program() {
    let workdir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        workdir.path().join("argv.py"),
        "import sys, zlib\n\
         cmdline = open('/proc/self/cmdline', 'rb').read()\n\
         payload = sum(len(a.encode()) + 1 for a in sys.argv[1:])\n\
         print(len(sys.argv), zlib.crc32(' '.join(sys.argv[1:]).encode()))\n\
         print('overhead', len(cmdline) - payload, file=sys.stderr)\n",
    )
    .expect("write the script");
    // About 131 KB of arguments, more than one argument may hold (128 KiB).
    let args: Vec<String> = (0..1300)
        .map(|i| format!("{i:04}{}", "x".repeat(96)))
        .collect();
    for python in interpreters::all_for_tests() {
        let plain = run({
            let mut command = Command::new(&python.path);
            command
                .arg("argv.py")
                .args(&args)
                .current_dir(workdir.path());
            command
        });
        let tracked = run({
            let mut command = memray_run(&python.path, workdir.path(), &["argv.py"]);
            command.args(&args);
            command
        });
        let label = python.label();
        assert_eq!(
            stdout_of(&tracked, &label),
            stdout_of(&plain, &label),
            "Python {label}"
        );
        // What `ps` shows beyond the program's own arguments: the interpreter,
        // the bootstrap's settings and the memray command, not its source.
        let overhead: usize = String::from_utf8_lossy(&tracked.stderr)
            .trim()
            .strip_prefix("overhead ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("Python {label}: {tracked:?}"));
        assert!(
            overhead < 1024,
            "Python {label}: {overhead} bytes of command line"
        );
    }
}

/// A `--python` that runs the interpreter with `flag`, as `python -I …` would.
fn interpreter_with_flag(directory: &Path, python: &Interpreter, flag: &str) -> PathBuf {
    let wrapper = directory.join(format!("python-{}{flag}", python.label()));
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec '{}' {flag} \"$@\"\n",
            python.path.display()
        ),
    )
    .expect("write the wrapper");
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))
        .expect("make the wrapper executable");
    wrapper
}

#[test]
fn sys_path_follows_isolated_and_safe_path_modes_like_plain_python() {
    let workdir = tempfile::tempdir().expect("tempdir");
    let dir = workdir.path();
    std::fs::create_dir(dir.join("pkg")).expect("create pkg/");
    let print_path = "import sys; print(sys.path)";
    std::fs::write(dir.join("pkg/show_path.py"), format!("{print_path}\n")).expect("write");
    std::fs::write(dir.join("show_path_mod.py"), format!("{print_path}\n")).expect("write");
    for python in interpreters::all_for_tests() {
        let has_safe_path = python.version >= (3, 11);
        // (interpreter to run, its environment, what it shows)
        let no_env: &[(&str, &str)] = &[];
        let mut setups = vec![
            (python.path.clone(), no_env, "plain"),
            (interpreter_with_flag(dir, &python, "-I"), no_env, "-I"),
        ];
        if has_safe_path {
            setups.push((interpreter_with_flag(dir, &python, "-P"), no_env, "-P"));
            setups.push((
                python.path.clone(),
                &[("PYTHONSAFEPATH", "1")],
                "PYTHONSAFEPATH",
            ));
        }
        for (interpreter, env, setup) in &setups {
            // -m finds its module through PYTHONPATH (ignored under -I: the
            // module then is not found, by plain Python nor by us).
            let modes: [&[&str]; 3] = [
                &["pkg/show_path.py"],
                &["-c", print_path],
                &["-m", "show_path_mod"],
            ];
            for mode in modes {
                let label = format!("Python {} {setup} {mode:?}", python.label());
                let configure = |command: &mut Command| {
                    command
                        .envs(env.iter().copied())
                        .env("PYTHONPATH", dir)
                        .current_dir(dir);
                };
                let mut plain = Command::new(interpreter);
                plain.args(mode);
                configure(&mut plain);
                let mut tracked = memray_run(interpreter, dir, mode);
                configure(&mut tracked);
                let (plain, tracked) = (run(plain), run(tracked));
                assert_eq!(
                    tracked.status.success(),
                    plain.status.success(),
                    "{label}: {tracked:?} {plain:?}"
                );
                assert_eq!(
                    String::from_utf8_lossy(&tracked.stdout),
                    String::from_utf8_lossy(&plain.stdout),
                    "{label}"
                );
            }
        }
    }
}

/// 400 k allocations kept alive: about twice the records 1 MB holds.
const FILLS_A_MEGABYTE: &str = "keep = [bytearray(600) for _ in range(400_000)]\nprint('done')\n";

/// A command's stdout and stderr, as text.
fn texts(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `memray parse`'s records and its warnings.
fn records_and_cut_off(capture: &Path) -> (String, String) {
    texts(&run({
        let mut command = Command::new(paths::memray_bin());
        command.arg("parse").arg(capture);
        command
    }))
}

#[test]
fn a_disk_filling_up_during_the_run_is_said_and_leaves_a_capture_cut_off() {
    let python = interpreters::reference_python();
    let Some(disk) = SmallDisk::mount("1m") else {
        return;
    };
    let workdir = tempfile::tempdir().expect("tempdir");
    std::fs::write(workdir.path().join("fill.py"), FILLS_A_MEGABYTE).expect("write the script");
    for compress in [false, true] {
        let capture = disk.path().join(format!("out-{compress}.bin"));
        let mut command = Command::new(paths::memray_bin());
        command
            .args(["run", "-f", "--python"])
            .arg(&python.path)
            .args(if compress {
                &[][..]
            } else {
                &["--no-compress"][..]
            })
            .arg("-o")
            .arg(&capture)
            .arg("fill.py")
            .current_dir(workdir.path());
        let output = run(command);
        let (stdout, stderr) = texts(&output);
        let label = format!("compress={compress}: {stdout}{stderr}");
        // As memray 1.20: the program's own exit status, memray's words on stderr.
        assert_eq!(output.status.code(), Some(0), "{label}");
        assert!(stdout.contains("done"), "{label}");
        assert!(
            stderr.contains(&format!(
                "Memray ERROR: Failed to grow output file {}",
                capture.display()
            )) && stderr
                .contains("No space left on device\nFailed to write output, deactivating tracking"),
            "{label}"
        );
        assert!(!stderr.contains("os error"), "{label}");
        // Unlike memray: no success banner, and the capture reads as cut off.
        assert!(!stdout.contains("Successfully generated"), "{label}");
        let (records, warning) = records_and_cut_off(&capture);
        assert!(warning.contains("cut off"), "{label}: {warning}");
        let allocations = records.matches("ALLOCATION ").count();
        assert!(
            (1000..400_000).contains(&allocations),
            "{label}: {allocations} allocations"
        );
        std::fs::remove_file(&capture).expect("make room for the next run");
    }
}

#[test]
fn a_compression_that_fails_keeps_the_uncompressed_capture_and_says_so() {
    let python = interpreters::reference_python();
    let Some(disk) = SmallDisk::mount("4m") else {
        return;
    };
    let workdir = tempfile::tempdir().expect("tempdir");
    // The program fills the disk once its allocations are recorded: the
    // capture still has room for its end, the compressed copy has none.
    std::fs::write(
        workdir.path().join("fill_disk.py"),
        "import os, sys\n\
         keep = [bytearray(600) for _ in range(20_000)]\n\
         try:\n\
         \x20   with open(os.path.join(sys.argv[1], 'filler'), 'wb') as f:\n\
         \x20       while True:\n\
         \x20           f.write(b'x' * 4096)\n\
         \x20           f.flush()\n\
         except OSError:\n\
         \x20   pass\n",
    )
    .expect("write the script");
    let capture = disk.path().join("out.bin");
    let mut command = Command::new(paths::memray_bin());
    command
        .args(["run", "-f", "--python"])
        .arg(&python.path)
        .arg("-o")
        .arg(&capture)
        .arg("fill_disk.py")
        .arg(disk.path())
        .current_dir(workdir.path());
    let output = run(command);
    let (stdout, stderr) = texts(&output);
    let label = format!("{stdout}{stderr}");
    assert_eq!(output.status.code(), Some(0), "{label}");
    assert!(
        stderr.contains(&format!(
            "Memray ERROR: Failed to compress {}: No space left on device; the uncompressed capture is kept",
            capture.display()
        )),
        "{label}"
    );
    assert!(!stdout.contains("Successfully generated"), "{label}");
    std::fs::remove_file(disk.path().join("filler")).expect("free the disk");
    // The uncompressed capture is complete, and memray 1.20 reads it.
    let (records, warning) = records_and_cut_off(&capture);
    assert!(!warning.contains("cut off"), "{warning}");
    assert!(records.matches("ALLOCATION ").count() >= 20_000);
    let read = Command::new(reference::reference_memray().memray)
        .arg("stats")
        .arg(&capture)
        .output()
        .expect("run memray 1.20");
    assert!(read.status.success(), "{read:?}");
}

#[test]
fn an_existing_output_file_names_only_the_option_that_exists() {
    let workdir = tempfile::tempdir().expect("tempdir");
    std::fs::write(workdir.path().join("out.bin"), "").expect("create out.bin");
    let output = run({
        let mut command = Command::new(paths::memray_bin());
        command
            .args(["run", "-o", "out.bin", "--python"])
            .arg(interpreters::reference_python().path)
            .args(["-c", "pass"])
            .current_dir(workdir.path());
        command
    });
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "Output file out.bin already exists. Memray can overwrite it with the --force CLI argument.\n"
    );
}
