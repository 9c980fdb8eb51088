//! `memray run` with our tracker, on every installed CPython: memray's
//! acceptance scenarios, each a Python file under
//! `tests/fixtures/tracker/scenarios/` that runs under our tracker and then
//! checks its capture with memray 1.20's own `FileReader` (which also proves
//! that memray reads every capture we write).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use memray_tests::interpreters::{self, Interpreter};
use memray_tests::tracker_fixtures::{fixtures, test_extension};
use memray_tests::{paths, reference};

/// One tracked run of a scenario.
struct Run<'a> {
    python: &'a Interpreter,
    scenario: &'a str,
    case: &'a str,
    flags: &'a [&'a str],
    env: &'a [(&'a str, &'a str)],
}

impl Run<'_> {
    /// Runs the scenario under `memray run`; returns the capture's path and the run's output.
    fn track(&self, workdir: &Path) -> (PathBuf, Output) {
        let capture = workdir.join(format!("{}-{}.bin", self.scenario, self.case));
        let ext = test_extension(self.python);
        let output = Command::new(paths::memray_bin())
            .arg("run")
            .arg("--python")
            .arg(&self.python.path)
            .args(["-q", "-f", "-o"])
            .arg(&capture)
            .args(self.flags)
            .arg(
                fixtures()
                    .join("scenarios")
                    .join(format!("{}.py", self.scenario)),
            )
            .args(["run", self.case])
            .env(
                "PYTHONPATH",
                std::env::join_paths([ext, fixtures()]).unwrap(),
            )
            // Programs that watch their own capture (S14) find it here.
            .env("SCENARIO_CAPTURE", &capture)
            .envs(self.env.iter().copied())
            .current_dir(workdir)
            .output()
            .expect("run memray");
        (capture, output)
    }

    /// Checks the capture with memray 1.20.
    fn check(&self, capture: &Path) {
        let reference = reference::reference_memray();
        let output = Command::new(&reference.python)
            .arg(
                fixtures()
                    .join("scenarios")
                    .join(format!("{}.py", self.scenario)),
            )
            .arg("check")
            .arg(capture)
            .arg(self.case)
            .args(self.flags)
            .env("PYTHONPATH", fixtures())
            .output()
            .expect("run the reference python");
        assert!(
            output.status.success(),
            "{} [{}] {:?} on Python {}: the check failed:\n{}{}",
            self.scenario,
            self.case,
            self.flags,
            self.python.label(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Tracks, expects success, and checks.
    fn passes(&self) {
        self.ends_with(0);
    }

    /// Tracks, expects the run to end with `code` (negative: killed by that
    /// signal), and checks.
    fn ends_with(&self, code: i32) {
        use std::os::unix::process::ExitStatusExt;

        let workdir = tempfile::tempdir().expect("tempdir");
        let (capture, output) = self.track(workdir.path());
        let ended = output
            .status
            .code()
            .or(output.status.signal().map(|signal| -signal));
        assert!(
            ended == Some(code),
            "{} [{}] on Python {} failed ({}):\n{}{}",
            self.scenario,
            self.case,
            self.python.label(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        self.check(&capture);
    }
}

/// Runs `scenario` `case` with `flags` on every installed interpreter.
fn on_every_python(scenario: &str, case: &str, flags: &[&str]) {
    for python in &interpreters::all_for_tests() {
        Run {
            python,
            scenario,
            case,
            flags,
            env: &[],
        }
        .passes();
    }
}

/// Runs every case of `scenario`, in both file formats, on every interpreter.
fn in_both_formats(scenario: &str, cases: &[&str]) {
    for case in cases {
        on_every_python(scenario, case, &[]);
        on_every_python(scenario, case, &["--aggregate"]);
    }
}

#[test]
fn s1_every_libc_allocator_is_captured_with_its_exact_size() {
    on_every_python("allocators", "all", &[]);
}

#[test]
fn s2_a_program_that_allocates_nothing_records_nothing() {
    on_every_python("empty", "nothing", &[]);
    on_every_python("empty", "os_exit", &[]);
}

#[test]
fn s3_stdlib_mmap_is_one_mmap_and_one_munmap() {
    on_every_python("mmap_stdlib", "default", &[]);
}

#[test]
fn s4_pymalloc_domains_only_with_trace_python_allocators() {
    on_every_python(
        "pymalloc_domains",
        "default",
        &["--trace-python-allocators"],
    );
    on_every_python("pymalloc_domains", "default", &[]);
}

#[test]
fn s5_python_stacks_have_exact_functions_and_lines() {
    on_every_python("traceback", "default", &[]);
}

#[test]
fn s6_a_burst_of_frame_pops_keeps_stacks_exact() {
    on_every_python("deep_pops", "default", &[]);
}

#[test]
fn s7_threads_pthreads_names_and_no_capture_after_stop() {
    on_every_python("threads", "pthread", &[]);
    on_every_python("threads", "names", &[]);
    on_every_python("threads", "after_stop", &[]);
}

#[test]
fn s8_high_water_mark_basics() {
    in_both_formats(
        "high_water_mark",
        &[
            "free_then_bigger",
            "bigger_then_smaller",
            "same_line_twice",
            "different_lines",
            "final_peak",
        ],
    );
}

#[test]
fn s9_spiky_recursion_peaks_at_its_last_occurrence() {
    in_both_formats("spiky", &["default"]);
}

#[test]
fn s10_partial_munmaps_are_accounted_exactly() {
    in_both_formats(
        "munmap_partial",
        &[
            "2p_unmap_p",
            "4p_unmap_ends",
            "5p_unmap_holes",
            "8p_unmap_middle",
        ],
    );
}

#[test]
fn s11_leaks_are_what_tracking_stopped_with() {
    in_both_formats("leaks", &["freed_after_stop", "all_freed", "ten_calls"]);
}

#[test]
fn s12_temporary_allocations() {
    for case in [
        "pair",
        "reverse_1",
        "reverse_2",
        "reverse_5",
        "reverse_10",
        "threads",
    ] {
        on_every_python("temporary", case, &[]);
    }
    on_every_python("temporary", "pair", &["--aggregate"]);
}

#[test]
fn s13_fork_pools_with_and_without_follow_fork() {
    on_every_python("fork_pool", "valloc", &["--follow-fork"]);
    on_every_python("fork_pool", "valloc", &[]);
    on_every_python(
        "fork_pool",
        "raw_calloc",
        &["--follow-fork", "--trace-python-allocators"],
    );
}

#[test]
fn s14_a_capture_survives_sigkill() {
    for python in &interpreters::all_for_tests() {
        Run {
            python,
            scenario: "sigkill",
            case: "default",
            flags: &[],
            env: &[],
        }
        .ends_with(-9);
    }
}

#[test]
fn a_program_leaving_through_os_exit_leaves_a_finished_capture() {
    let flags: [&[&str]; 4] = [
        &[],
        &["--aggregate"],
        &["--no-compress"],
        &["--no-compress", "--aggregate"],
    ];
    for flags in flags {
        for python in &interpreters::all_for_tests() {
            Run {
                python,
                scenario: "os_exit",
                case: "parent",
                flags,
                env: &[],
            }
            .ends_with(3);
        }
    }
}

#[test]
fn a_child_whose_exec_fails_leaves_the_parents_capture_alone() {
    on_every_python("os_exit", "failed_exec", &[]);
}

#[test]
fn fork_pool_workers_leaving_through_os_exit_leave_finished_captures() {
    on_every_python("os_exit", "pool", &["--follow-fork"]);
    on_every_python("os_exit", "pool", &["--follow-fork", "--no-compress"]);
}

#[test]
fn s16_header_metadata() {
    on_every_python("header_meta", "default", &[]);
    for allocator in ["malloc", "pymalloc", "pymalloc_debug"] {
        for python in &interpreters::all_for_tests() {
            Run {
                python,
                scenario: "header_meta",
                case: allocator,
                flags: &[],
                env: &[("PYTHONMALLOC", allocator)],
            }
            .passes();
        }
    }
}

#[test]
fn s17_memory_snapshots_and_aggregated_restrictions() {
    in_both_formats("memory_snapshots", &["default"]);
}

/// Our capture and memray 1.20's own `memray run` of the same program hold the
/// same test allocations with the same stacks.
#[test]
fn same_allocations_and_stacks_as_memrays_own_run() {
    let reference = reference::reference_memray();
    let python = interpreters::reference_python();
    let workdir = tempfile::tempdir().expect("tempdir");
    let programs = [
        ("allocators", "default"),
        ("traceback", "default"),
        ("threads", "pthread"),
        ("threads", "names"),
    ];
    for (scenario, case) in programs {
        let run = Run {
            python: &python,
            scenario,
            case,
            flags: &[],
            env: &[],
        };
        let (ours, output) = run.track(workdir.path());
        assert!(output.status.success(), "our run of {scenario} failed");
        let theirs = workdir.path().join(format!("{scenario}-memray.bin"));
        let ext = test_extension(&python);
        let output = Command::new(&reference.memray)
            .args(["run", "-q", "-f", "-o"])
            .arg(&theirs)
            .arg(fixtures().join("scenarios").join(format!("{scenario}.py")))
            .args(["run", case])
            .env(
                "PYTHONPATH",
                std::env::join_paths([ext, fixtures()]).unwrap(),
            )
            .current_dir(workdir.path())
            .output()
            .expect("run memray 1.20");
        assert!(
            output.status.success(),
            "memray 1.20's run of {scenario} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let compared = Command::new(&reference.python)
            .arg(fixtures().join("compare_captures.py"))
            .arg(&ours)
            .arg(&theirs)
            .arg(fixtures().join("scenarios").join(format!("{scenario}.py")))
            .env("PYTHONPATH", fixtures())
            .output()
            .expect("compare");
        assert!(
            compared.status.success(),
            "{scenario}: our capture differs from memray's:\n{}{}",
            String::from_utf8_lossy(&compared.stdout),
            String::from_utf8_lossy(&compared.stderr)
        );
    }
}

/// The pitfall measured in the C prototype: a code-object cache keyed by
/// address gave wrong lines once code objects died and addresses were reused.
#[test]
fn reused_code_object_addresses_never_give_wrong_lines() {
    on_every_python("code_reuse", "default", &[]);
}
