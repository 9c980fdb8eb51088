//! `memray tree` in a real terminal (tmux): the interactive view must open
//! showing what memray 1.20's own Textual tree shows for the same capture,
//! expand and collapse with the keys, survive a resize and leave the shell as
//! it found it. Also the text form when piped, and failures part-way through
//! a capture.

use std::path::PathBuf;
use std::sync::OnceLock;

use memray_tests::captures::record_with_reference;
use memray_tests::memray_tree::{opened_rows, OpenedRow};
use memray_tests::paths::{fixtures, memray_bin};
use memray_tests::run::output;
use memray_tests::skip::{self, Requirement};
use memray_tests::tmux::Terminal;

struct Capture {
    dir: tempfile::TempDir,
    path: PathBuf,
}

/// allocate.py recorded by memray 1.20, from a short directory so that
/// locations fit on screen.
fn capture() -> &'static Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = dir.path().join("allocate.py");
        std::fs::copy(fixtures().join("analysis/allocate.py"), &script).unwrap();
        let path = record_with_reference(dir.path(), "tree", &[], &[], &script);
        Capture { dir, path }
    })
}

/// The rows of our tree panel, cut like [`OpenedRow::head`].
fn our_rows(screen: &str) -> Vec<String> {
    screen
        .lines()
        .filter_map(|line| {
            let start = line.find(['📂', '📄', '❓'])?;
            let label = &line[start..];
            let end = label.find("  ").or_else(|| label.find('│'));
            Some(label[..end.unwrap_or(label.len())].trim_end().to_owned())
        })
        .collect()
}

fn heads(rows: &[OpenedRow]) -> Vec<String> {
    rows.iter().map(|row| row.head.clone()).collect()
}

fn terminal() -> Option<Terminal> {
    if !skip::needs(&[Requirement::Tmux]) {
        return None;
    }
    Some(Terminal::start(200, 50, capture().dir.path()))
}

fn shows_root(screen: &str) -> bool {
    screen.contains("<ROOT>")
}

/// The whole screen is drawn: the key help is the last line.
fn drawn(screen: &str) -> bool {
    shows_root(screen) && screen.contains("↑/↓ move")
}

#[test]
fn opens_showing_what_memrays_tree_shows() {
    let Some(term) = terminal() else { return };
    for biggest in [200, 3] {
        let expected = opened_rows(&capture().path, biggest);
        assert!(
            expected
                .iter()
                .any(|row| row.head.ends_with(" make_buffer")),
            "memray's tree opens down to the peak's allocator: {expected:?}"
        );
        term.run(&format!(
            "{} tree -b {biggest} {}",
            memray_bin().display(),
            capture().path.display()
        ));
        let screen = term.wait_for("the tree", drawn);
        assert_eq!(
            our_rows(&screen),
            heads(&expected),
            "-b {biggest}:\n{screen}"
        );
        if biggest == 3 {
            assert!(
                screen.contains("allocations from")
                    && screen.contains("below the configured threshold"),
                "{screen}"
            );
        }
        // The leaf's details, with memray's location and count.
        let leaf = expected
            .iter()
            .position(|row| row.head.ends_with(" make_buffer"))
            .unwrap();
        term.keys(&vec!["Down"; leaf]);
        let details = term.wait_for("the leaf's details", |s| {
            s.contains("Function: make_buffer")
        });
        assert!(
            details.contains(&format!("Location: {}", expected[leaf].location)),
            "{details}"
        );
        assert!(
            details.contains(&format!("Allocations: {}", expected[leaf].allocations)),
            "{details}"
        );
        assert!(
            details.contains("return bytearray(size)"),
            "the source line: {details}"
        );
        term.keys(&["q"]);
        term.wait_for("the shell", |s| !shows_root(s));
    }
}

#[test]
fn keys_expand_and_collapse_and_resizing_redraws() {
    let Some(term) = terminal() else { return };
    term.run(&format!(
        "{} tree {}",
        memray_bin().display(),
        capture().path.display()
    ));
    let opened = our_rows(&term.wait_for("the tree", drawn));
    assert!(opened.len() > 3, "{opened:?}");
    assert!(opened.iter().any(|row| row.ends_with(" make_buffer")));

    term.keys(&["Enter"]);
    let collapsed = term.wait_for("the root collapsed", |s| our_rows(s).len() == 1);
    assert!(collapsed.contains("▶ 📂"), "{collapsed}");
    term.keys(&["Space"]);
    term.wait_for("the root expanded", |s| our_rows(s) == opened);

    // Left on the first child collapses it, right expands it again.
    term.keys(&["Down", "Left"]);
    let folded = term.wait_for("the first child collapsed", |s| {
        our_rows(s).len() < opened.len()
    });
    assert!(!folded.contains("make_buffer"), "{folded}");
    term.keys(&["Right"]);
    term.wait_for("the first child expanded", |s| our_rows(s) == opened);

    term.resize(100, 30);
    let small = term.wait_for("a redraw at 100 columns", |s| {
        s.lines().count() == 30 && s.lines().last().is_some_and(|l| l.contains("↑/↓ move"))
    });
    assert!(shows_root(&small), "{small}");
    assert!(
        small.lines().all(|line| unicode_columns(line) <= 100),
        "{small}"
    );
    term.keys(&["q"]);
    term.wait_for("the shell", |s| !shows_root(s));
}

/// Display columns, counting the tree's emoji as two.
fn unicode_columns(line: &str) -> usize {
    line.chars()
        .map(|c| {
            if matches!(c, '📂' | '📄' | '❓') {
                2
            } else {
                1
            }
        })
        .sum()
}

#[test]
fn quitting_leaves_the_shell_as_it_was() {
    let Some(term) = terminal() else { return };
    let dir = capture().dir.path();
    term.run("stty -g > stty-before");
    term.run(&format!(
        "{} tree {}; echo tree-status:$?; stty -g > stty-after",
        memray_bin().display(),
        capture().path.display()
    ));
    term.wait_for("the tree", drawn);
    assert!(
        term.alternate_screen(),
        "the tree draws on the alternate screen"
    );
    term.keys(&["q"]);
    let shell = term.wait_for("the exit status", |s| {
        s.lines().any(|line| line.starts_with("tree-status:"))
    });
    assert!(shell.lines().any(|line| line == "tree-status:0"), "{shell}");
    assert!(!shows_root(&shell), "the tree is gone: {shell}");
    assert!(!term.alternate_screen(), "back on the normal screen");
    assert!(term.cursor_visible(), "the cursor is shown again");
    let after = dir.join("stty-after");
    term.wait_for("stty", |_| {
        after.exists() && std::fs::metadata(&after).unwrap().len() > 0
    });
    assert_eq!(
        std::fs::read_to_string(dir.join("stty-before")).unwrap(),
        std::fs::read_to_string(after).unwrap(),
        "the terminal modes are restored (raw mode is off)"
    );
}

#[test]
fn piped_output_is_the_plain_text_tree() {
    let out = output(memray_bin(), ["tree", capture().path.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("Allocation metadata\n"), "{text}");
    assert!(!text.contains('\x1b'), "no terminal control sequences");
    assert!(text.contains("make_buffer"));
    assert!(
        out.stderr.is_empty(),
        "no progress bar when stderr is not a terminal"
    );
}

#[test]
fn a_corrupt_record_after_a_valid_start_is_reported_up_to_the_damage() {
    let c = capture();
    let script = c.dir.path().join("allocate.py");
    let raw = record_with_reference(c.dir.path(), "raw", &["--no-compress"], &[], &script);
    // An uncompressed capture is its records, the trailer (0x01), then zero
    // padding; slip an invalid record token (0x04) in before the trailer.
    let mut bytes = std::fs::read(&raw).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap();
    assert_eq!(bytes[end], 0x01, "the trailer ends the records");
    bytes.insert(end, 0x04);
    let corrupt = c.dir.path().join("corrupt.bin");
    std::fs::write(&corrupt, bytes).unwrap();

    // Every record before the damage is there: the tree equals the intact
    // capture's, and the damage is said on stderr with its offset.
    let out = output(memray_bin(), ["tree", corrupt.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "warning: {} is damaged at offset {end}: the report covers the records before it\n",
            corrupt.display()
        )
    );
    let intact = output(memray_bin(), ["tree", raw.to_str().unwrap()]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).replace(corrupt.to_str().unwrap(), "X"),
        String::from_utf8_lossy(&intact.stdout).replace(raw.to_str().unwrap(), "X")
    );
}
