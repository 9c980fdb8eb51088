//! `memray summary` fits its terminal as memray's does (cells wrap, numbers
//! stay whole) in a real 80- and 100-column terminal (tmux), and follows
//! `COLUMNS`; piped without `COLUMNS`, the table stays uncut.

use std::path::Path;

use memray_tests::captures::record_with_reference;
use memray_tests::paths::{fixtures, memray_bin};
use memray_tests::skip::{self, Requirement};
use memray_tests::tmux::Terminal;

/// Lines of a drawn table: they start and end with a box character.
fn table_lines(screen: &str) -> Vec<&str> {
    screen
        .lines()
        .map(str::trim_end)
        .filter(|line| line.starts_with(['┏', '┃', '┡', '│', '└']))
        .collect()
}

/// The number cells of a table in reading order (the location, the first
/// cell of each line, is left out; continuation lines hold no number).
fn numbers(table: &str) -> Vec<String> {
    let body = table.lines().filter(|line| line.starts_with('│'));
    let cells = body.flat_map(|line| line.split('│').skip(2));
    cells
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect()
}

fn summary(capture: &Path, columns: Option<&str>) -> String {
    let mut command = std::process::Command::new(memray_bin());
    command.args(["summary", "-r", "8"]).arg(capture);
    command.env_remove("COLUMNS");
    if let Some(columns) = columns {
        command.env("COLUMNS", columns);
    }
    let out = command.output().expect("run memray summary");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn width(line: &str) -> usize {
    line.chars().count()
}

/// Every line of `table` is a whole table line of at most `columns`
/// characters, and it holds the numbers of `uncut`, whole.
fn assert_fits(table: &str, columns: usize, uncut: &str) {
    let lines = table_lines(table);
    assert!(lines.len() > 4, "no table in:\n{table}");
    for line in &lines {
        assert!(
            width(line) <= columns && line.ends_with(['┓', '┃', '┩', '│', '┘']),
            "{line:?} does not fit {columns} columns:\n{table}"
        );
    }
    let fitted = numbers(&lines.join("\n"));
    assert_eq!(fitted, numbers(uncut), "the numbers, whole:\n{table}");
}

#[test]
fn summary_fits_the_terminal_and_keeps_numbers_whole() {
    let dir = tempfile::tempdir().unwrap();
    let script = fixtures().join("flamegraph").join("labels.py");
    let capture = record_with_reference(dir.path(), "capture", &[], &[], &script);

    let uncut = summary(&capture, None);
    let widest = table_lines(&uncut).iter().map(|l| width(l)).max().unwrap();
    assert!(
        widest > 100,
        "the fixture's table is wider than the terminals:\n{uncut}"
    );
    for columns in ["80", "100"] {
        assert_fits(
            &summary(&capture, Some(columns)),
            columns.parse().unwrap(),
            &uncut,
        );
    }

    if !skip::needs(&[Requirement::Tmux]) {
        return;
    }
    for columns in [80u16, 100] {
        let term = Terminal::start(columns, 60, dir.path());
        term.run(&format!(
            "env -u COLUMNS {} summary -r 8 capture.bin; echo done",
            memray_bin().display()
        ));
        let screen = term.wait_for("the summary", |screen| screen.contains("\ndone"));
        assert_fits(&screen, usize::from(columns), &uncut);
    }
}
