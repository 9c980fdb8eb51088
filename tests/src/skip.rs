//! The one way a test says it cannot run here, and what it needs.
//!
//! A test whose requirement is missing records `skipped: <test>: <reason>`:
//! on stderr, and appended to the file named by [`SKIP_LOG_ENV`] when
//! `cargo xtask test` set it (libtest hides a passing test's output, so the
//! summary reads the file and counts the test as skipped, not passed).
//! Under `CI=true` nothing the setup installs may be missing: the same check
//! panics, naming what is missing, and `cargo xtask test` checks the same
//! list before it builds ([`missing_on_ci`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::interpreters;

/// The environment variable naming the file skipped tests append to.
pub const SKIP_LOG_ENV: &str = "MEMRAY_TESTS_SKIP_LOG";

/// Whether this run must have everything (`CI=true`, as `.ci/run` is run).
pub fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true")
}

/// Something a test needs that the setup installs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// uprobes, for the eBPF tests.
    Root,
    /// The probes built into `memray-ebpf` (not skipped by `MEMRAY_SKIP_EBPF`).
    EbpfObject,
    Tmux,
    /// chromium, node and playwright-core, for the browser tests.
    Chromium,
    /// The memray 1.20 virtualenv the reports are compared with.
    ReferenceMemray,
    /// Debian's jemalloc and mimalloc (`libjemalloc2`, `libmimalloc2.0`),
    /// for the eBPF tests of `--allocator`.
    ThirdPartyAllocators,
    /// CPython 3.`minor`.
    Python(u32),
}

/// Every CPython minor version the project supports, 3.8 to 3.14.
pub const PYTHON_MINORS: std::ops::RangeInclusive<u32> = 8..=14;

impl Requirement {
    /// Everything `cargo xtask setup` installs and the tests need.
    pub fn all() -> Vec<Requirement> {
        let fixed = [
            Requirement::Root,
            Requirement::EbpfObject,
            Requirement::Tmux,
            Requirement::Chromium,
            Requirement::ReferenceMemray,
            Requirement::ThirdPartyAllocators,
        ];
        fixed
            .into_iter()
            .chain(PYTHON_MINORS.map(Requirement::Python))
            .collect()
    }

    pub fn name(self) -> String {
        match self {
            Requirement::Root => "root".into(),
            Requirement::EbpfObject => "the eBPF object".into(),
            Requirement::Tmux => "tmux".into(),
            Requirement::Chromium => "chromium".into(),
            Requirement::ReferenceMemray => {
                format!("memray {}", crate::reference::REFERENCE_VERSION)
            }
            Requirement::Python(minor) => format!("CPython 3.{minor}"),
            Requirement::ThirdPartyAllocators => "jemalloc and mimalloc".into(),
        }
    }

    /// Why it is missing on this machine, if it is. The eBPF object is
    /// judged by `MEMRAY_SKIP_EBPF` (the build to come); a test binary asks
    /// `memray_ebpf::is_built()` instead, through [`needs_built_ebpf`].
    pub fn missing(self) -> Option<String> {
        match self {
            // SAFETY: geteuid has no preconditions.
            Requirement::Root => (unsafe { libc::geteuid() } != 0).then(|| "not root".into()),
            Requirement::EbpfObject => std::env::var_os("MEMRAY_SKIP_EBPF")
                .is_some()
                .then(|| "MEMRAY_SKIP_EBPF is set".into()),
            Requirement::Tmux => absent_from_path("tmux"),
            Requirement::Chromium => absent_from_path("chromium")
                .or_else(|| absent_from_path("node"))
                .or_else(|| {
                    let scripts = browser_scripts();
                    (!scripts.join("node_modules/playwright-core").is_dir()).then(|| {
                        format!(
                            "playwright-core is missing (npm ci in {})",
                            scripts.display()
                        )
                    })
                }),
            Requirement::ReferenceMemray => {
                let venv = crate::reference::reference_venv(crate::reference::REFERENCE_VERSION);
                (!venv.memray.exists()).then(|| format!("{} is missing", venv.memray.display()))
            }
            Requirement::Python(minor) => interpreters::find(3, minor)
                .is_none()
                .then(|| "not installed (pyenv or the project's cache)".into()),
            Requirement::ThirdPartyAllocators => THIRD_PARTY_ALLOCATORS
                .iter()
                .find(|soname| shared_library(soname).is_none())
                .map(|soname| format!("{soname} is not installed (cargo xtask setup)")),
        }
    }
}

/// What is missing of [`Requirement::all`], named with the reason.
pub fn missing_on_ci() -> Vec<String> {
    Requirement::all()
        .into_iter()
        .filter_map(|r| r.missing().map(|why| format!("{}: {why}", r.name())))
        .collect()
}

/// Whether the calling test may go on: true when nothing in `requirements`
/// is missing; otherwise the skip is recorded (or, under CI, the test panics).
pub fn needs(requirements: &[Requirement]) -> bool {
    requirements
        .iter()
        .all(|&r| present_or_skip(&r.name(), r.missing()))
}

/// [`needs`] for the eBPF object as the test binary was built (`built` is
/// `memray_ebpf::is_built()`), and root.
pub fn needs_built_ebpf(built: bool) -> bool {
    needs(&[Requirement::Root])
        && present_or_skip(
            &Requirement::EbpfObject.name(),
            (!built).then(|| "built with MEMRAY_SKIP_EBPF".into()),
        )
}

/// Records that part of the calling test was left out (e.g. one CPython
/// version), as `skipped: <test> on <what>: <reason>`; panics under CI.
pub fn skip_part(what: &str, reason: &str) {
    let subject = format!("{} on {what}", current_test());
    record(&subject, "not run", what, reason);
}

/// True when `missing` is `None`; else records the calling test as skipped.
fn present_or_skip(what: &str, missing: Option<String>) -> bool {
    let Some(reason) = missing else {
        return true;
    };
    record(&current_test(), &format!("needs {what}"), what, &reason);
    false
}

/// Writes `skipped: <subject>: <why>: <reason>`, or under CI panics naming
/// `what` is missing.
fn record(subject: &str, why: &str, what: &str, reason: &str) {
    assert!(!on_ci(), "CI=true requires {what}, missing here: {reason}");
    let line = format!("skipped: {subject}: {why}: {reason}\n");
    eprint!("{line}");
    if let Some(log) = std::env::var_os(SKIP_LOG_ENV) {
        append(Path::new(&log), &line);
    }
}

/// One `write` to a file opened with O_APPEND: lines of concurrent tests
/// and binaries never interleave.
fn append(log: &Path, line: &str) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap_or_else(|e| panic!("open the skip log {}: {e}", log.display()));
    file.write_all(line.as_bytes())
        .unwrap_or_else(|e| panic!("write the skip log {}: {e}", log.display()));
}

/// `<test binary>::<test path>`, as the summary matches it against
/// libtest's `test <path> ... ok` lines (libtest names each test's thread
/// after the test).
pub fn current_test() -> String {
    let binary = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let binary = binary
        .rsplit_once('-')
        .map_or(binary.as_str(), |(name, _hash)| name);
    let thread = std::thread::current();
    format!("{binary}::{}", thread.name().unwrap_or("unnamed test"))
}

fn absent_from_path(program: &str) -> Option<String> {
    on_path(program)
        .is_none()
        .then(|| format!("{program} is not on PATH"))
}

/// The sonames of [`Requirement::ThirdPartyAllocators`].
pub const THIRD_PARTY_ALLOCATORS: [&str; 2] = ["libjemalloc.so.2", "libmimalloc.so.2"];

/// Where the dynamic loader finds the library `soname` (`ldconfig -p`).
pub fn shared_library(soname: &str) -> Option<PathBuf> {
    let listed = std::process::Command::new("ldconfig")
        .arg("-p")
        .output()
        .or_else(|_| {
            std::process::Command::new("/sbin/ldconfig")
                .arg("-p")
                .output()
        })
        .ok()?;
    String::from_utf8_lossy(&listed.stdout)
        .lines()
        .find_map(|line| {
            let (name, path) = line.trim().split_once(" => ")?;
            (name.split_whitespace().next() == Some(soname)).then(|| PathBuf::from(path))
        })
}

/// `program` in a directory of PATH, if there.
pub fn on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// The browser test scripts (`tests/browser`).
pub fn browser_scripts() -> PathBuf {
    crate::paths::workspace_root().join("tests").join("browser")
}
