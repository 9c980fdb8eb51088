//! The progress bar reports draw on stderr while they read a capture: drawn
//! when stderr is a terminal (tmux), never when it is piped, and never on stdout.

use std::path::PathBuf;
use std::sync::OnceLock;

use memray_tests::captures::record_with_reference;
use memray_tests::paths::memray_bin;
use memray_tests::run::output;
use memray_tests::skip::{self, Requirement};
use memray_tests::tmux::Terminal;

/// Enough allocation records (some 400k) that the bar is updated many times.
const MANY_ALLOCATIONS: &str = "\
for i in range(200_000):
    buffer = bytearray(1000 + i % 500)
    del buffer
";

struct Capture {
    dir: tempfile::TempDir,
    path: PathBuf,
}

fn big_capture() -> &'static Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = dir.path().join("many.py");
        std::fs::write(&script, MANY_ALLOCATIONS).unwrap();
        let path = record_with_reference(dir.path(), "many", &[], &[], &script);
        Capture { dir, path }
    })
}

#[test]
fn a_terminal_sees_the_bar_while_the_capture_is_read() {
    if !skip::needs(&[Requirement::Tmux]) {
        return;
    }
    let capture = big_capture();
    for (name, arguments) in [
        ("summary", "summary"),
        ("stats", "stats"),
        ("flamegraph", "flamegraph --force -o page.html"),
    ] {
        let (screen, drawn) = run_in_terminal(capture, name, arguments);
        assert!(
            drawn.contains("Reading allocation records"),
            "{name}: the bar was drawn: {drawn:?}"
        );
        assert!(drawn.contains("% "), "{name}: with a percentage: {drawn:?}");
        assert!(
            !screen.contains("Reading allocation records"),
            "{name}: and erased once done:\n{screen}"
        );
        let report = std::fs::read_to_string(capture.dir.path().join(format!("{name}.txt")))
            .expect("the command's stdout");
        assert!(
            !report.contains("Reading allocation records"),
            "{name}: stdout stays clean"
        );
    }
    let summary = std::fs::read_to_string(capture.dir.path().join("summary.txt")).unwrap();
    assert!(summary.contains("Location"), "the table: {summary}");
}

/// Runs `memray ARGUMENTS CAPTURE` in a fresh terminal with stdout sent to
/// `<name>.txt`, so only stderr is the terminal; returns the final screen
/// and everything drawn on it.
fn run_in_terminal(capture: &Capture, name: &str, arguments: &str) -> (String, String) {
    let dir = capture.dir.path();
    let term = Terminal::start(120, 30, dir);
    let log = dir.join(format!("{name}-terminal.log"));
    term.record_output(&log);
    term.run(&format!(
        "{} {arguments} {} > {name}.txt; echo {name}-status:$?",
        memray_bin().display(),
        capture.path.display()
    ));
    // Only `status:<digits>` is the result: the typed command itself wraps
    // onto a line starting with `status:$?` when the checkout's path is long.
    let done = format!("{name}-status:");
    let screen = term.wait_for(&format!("{name} to finish"), |s| {
        s.lines().any(|line| {
            line.strip_prefix(&done)
                .is_some_and(|code| !code.is_empty() && code.bytes().all(|b| b.is_ascii_digit()))
        })
    });
    assert!(
        screen
            .lines()
            .any(|line| line == format!("{name}-status:0")),
        "{screen}"
    );
    let drawn = String::from_utf8_lossy(&std::fs::read(&log).unwrap()).into_owned();
    (screen, drawn)
}

#[test]
fn piped_stderr_gets_no_bar() {
    let capture = big_capture();
    for command in ["summary", "tree", "stats"] {
        let out = output(memray_bin(), [command, capture.path.to_str().unwrap()]);
        assert!(out.status.success(), "{command}");
        assert!(!out.stdout.is_empty(), "{command} printed its report");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "",
            "{command}: nothing on a piped stderr"
        );
    }
}
