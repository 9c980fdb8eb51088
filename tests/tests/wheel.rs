//! The wheel of `cargo xtask wheel`, installed with pip into fresh
//! virtualenvs of CPython 3.8 and 3.14 and used from there, with no Rust
//! toolchain on PATH and the virtualenv not activated: `memray run`, `memray
//! stats`, `memray flamegraph`, `import memray` (and the pytest plugin's
//! entry point), and the API: a `memray.Tracker` block read back with
//! `memray.FileReader`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use memray_tests::interpreters::{self, Interpreter};
use memray_tests::paths::workspace_root;
use memray_tests::skip::{self, Requirement};
use memray_tests::wheel_tools::wheel_tools;

/// Allocates 100 lists of 1000 pointers (8 KB each) in a function the
/// reports must name (no comprehension: it is a frame of its own before
/// 3.12), and says which interpreter ran it.
const SCRIPT: &str = "\
import sys

def make_lists():
    lists = []
    for _ in range(100):
        lists.append(list(range(1000)))
    return lists

lists = make_lists()
print('prefix', sys.prefix)
";

/// The same lists allocated inside a `memray.Tracker` block, read back with
/// `memray.FileReader`: how many of the peak's allocations `make_lists` made.
const API_SCRIPT: &str = "\
import sys

import memray

def make_lists():
    lists = []
    for _ in range(100):
        lists.append(list(range(1000)))
    return lists

with memray.Tracker(sys.argv[1]):
    lists = make_lists()

reader = memray.FileReader(sys.argv[1])
print(sum(
    record.n_allocations
    for record in reader.get_high_watermark_allocation_records()
    if record.stack_trace()[0][0] == 'make_lists'
))
";

#[test]
fn installed_wheel_profiles_on_cpython_3_8_and_3_14() {
    if !skip::needs(&[Requirement::Python(8), Requirement::Python(14)]) {
        return;
    }
    let wheel = build_wheel();
    for minor in [8, 14] {
        let python = interpreters::find(3, minor).expect("checked by skip::needs");
        check_installed(&wheel, &python);
    }
}

/// `cargo xtask wheel` (a release build, incremental), which prints the
/// wheel's path last.
fn build_wheel() -> PathBuf {
    let out = succeed(
        Command::new(env!("CARGO"))
            .args(["xtask", "wheel"])
            .current_dir(workspace_root()),
        "cargo xtask wheel",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let wheel = PathBuf::from(stdout.lines().last().expect("the wheel's path").trim());
    assert!(wheel.is_file(), "{} is not a file", wheel.display());
    wheel
}

fn check_installed(wheel: &Path, python: &Interpreter) {
    let work = tempfile::tempdir().expect("temporary directory");
    let venv = work.path().join("venv");
    // --without-pip: the cache's CPython 3.14 has no ensurepip; the tools'
    // pip installs into the virtualenv through --python.
    succeed(
        Command::new(&python.path)
            .args(["-m", "venv", "--without-pip"])
            .arg(&venv),
        "create the virtualenv",
    );
    let venv_python = venv.join("bin/python");
    succeed(
        Command::new(wheel_tools().pip)
            .arg("--python")
            .arg(&venv_python)
            .args([
                "install",
                "--no-index",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .arg(wheel),
        "pip install the wheel",
    );

    let memray = venv.join("bin/memray");
    let script = work.path().join("script.py");
    std::fs::write(&script, SCRIPT).expect("write the script");
    let capture = work.path().join("out.bin");
    let label = format!("CPython {}", python.label());

    let run = succeed(
        without_toolchain(Command::new(&memray))
            .args(["run", "-o"])
            .arg(&capture)
            .arg(&script)
            .current_dir(work.path()),
        &format!("memray run on {label}"),
    );
    let printed = String::from_utf8_lossy(&run.stdout);
    assert!(
        printed.contains(&format!("prefix {}", venv.display())),
        "{label}: the program did not run on the virtualenv's interpreter:\n{printed}"
    );

    let stats = succeed(
        without_toolchain(Command::new(&memray))
            .arg("stats")
            .arg(&capture),
        &format!("memray stats on {label}"),
    );
    let stats = String::from_utf8_lossy(&stats.stdout);
    assert!(
        total_allocations(&stats) >= 100,
        "{label}: fewer than the script's 100 allocations recorded:\n{stats}"
    );
    assert!(
        stats.contains("make_lists"),
        "{label}: the script's function is not among the top locations:\n{stats}"
    );

    succeed(
        without_toolchain(Command::new(&memray))
            .arg("flamegraph")
            .arg(&capture),
        &format!("memray flamegraph on {label}"),
    );
    let page = work.path().join("memray-flamegraph-out.html");
    let html = std::fs::read_to_string(&page)
        .unwrap_or_else(|e| panic!("{label}: read {}: {e}", page.display()));
    assert!(
        html.contains("make_lists"),
        "{label}: the flame graph does not name the script's function"
    );

    let import = succeed(
        without_toolchain(Command::new(&venv_python)).args([
            "-c",
            "import importlib.metadata as m, memray; print(memray.__version__); \
             print(memray.__file__); \
             print(*[e.value for e in m.distribution('memray-rs').entry_points \
             if e.group == 'pytest11'])",
        ]),
        &format!("import memray on {label}"),
    );
    let import = String::from_utf8_lossy(&import.stdout);
    let mut lines = import.lines();
    assert_eq!(lines.next(), Some(env!("CARGO_PKG_VERSION")), "{label}");
    let package = lines.next().unwrap_or_default();
    assert!(
        Path::new(package).starts_with(&venv),
        "{label}: memray imported from {package}, not from the virtualenv"
    );
    assert_eq!(
        lines.next(),
        Some("memray.pytest_plugin"),
        "{label}: pytest's entry point for our plugin"
    );

    let api_script = work.path().join("api.py");
    std::fs::write(&api_script, API_SCRIPT).expect("write the API script");
    let api = succeed(
        without_toolchain(Command::new(&venv_python))
            .arg(&api_script)
            .arg(work.path().join("api.bin")),
        &format!("memray.Tracker and memray.FileReader on {label}"),
    );
    let counted = String::from_utf8_lossy(&api.stdout);
    assert!(
        counted.trim().parse::<u64>().unwrap_or(0) >= 100,
        "{label}: fewer than the block's 100 allocations at the peak: {counted}"
    );
}

/// The current environment with every PATH directory that holds `cargo` or
/// `rustc` left out, and cargo's variables removed: what a machine without
/// a Rust toolchain has.
fn without_toolchain(mut command: Command) -> Command {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let kept: Vec<PathBuf> = std::env::split_paths(&path)
        .filter(|dir| !dir.join("cargo").exists() && !dir.join("rustc").exists())
        .collect();
    command.env("PATH", std::env::join_paths(kept).expect("PATH"));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO") || key.starts_with("RUSTUP") {
            command.env_remove(key.as_ref());
        }
    }
    command
}

/// The number `memray stats` prints under "Total allocations:".
fn total_allocations(stats: &str) -> u64 {
    let mut lines = stats.lines();
    lines
        .by_ref()
        .find(|line| line.contains("Total allocations:"))
        .expect("a Total allocations line");
    lines
        .next()
        .and_then(|line| line.trim().replace(',', "").parse().ok())
        .unwrap_or_else(|| panic!("no number after Total allocations:\n{stats}"))
}

fn succeed(command: &mut Command, what: &str) -> Output {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
