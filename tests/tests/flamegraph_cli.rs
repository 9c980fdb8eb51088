//! `memray flamegraph` / `memray table` as a user meets them: output names,
//! messages and refusals as memray 1.20 has them, the leaks warning and the
//! --confidential-files rule.

use std::path::Path;
use std::process::Output;

use memray_tests::captures::record_with_reference;
use memray_tests::html_pages::our_payload;
use memray_tests::paths::{fixtures, memray_bin};
use memray_tests::reference::reference_memray;
use memray_tests::run::output;

fn memray(args: &[&str], cwd: &Path) -> Output {
    std::process::Command::new(memray_bin())
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run memray")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A capture of the two-thread fixture, copied to `result.bin` (memray's
/// test_main uses that name).
fn capture(dir: &Path, flags: &[&str], env: &[(&str, &str)]) -> std::path::PathBuf {
    let script = fixtures().join("flamegraph").join("two_threads.py");
    let recorded = record_with_reference(dir, "recorded", flags, env, &script);
    let result = dir.join("result.bin");
    std::fs::rename(recorded, &result).unwrap();
    result
}

#[test]
fn outputs_are_named_written_and_never_overwritten_as_memray_does() {
    let dir = tempfile::tempdir().unwrap();
    capture(dir.path(), &[], &[]);
    for (command, page) in [
        ("flamegraph", "memray-flamegraph-result.html"),
        ("table", "memray-table-result.html"),
    ] {
        let ours = memray(&[command, "result.bin"], dir.path());
        assert!(ours.status.success(), "{}", text(&ours.stderr));
        assert_eq!(text(&ours.stdout).trim(), format!("Wrote {page}"));
        assert!(dir.path().join(page).is_file());

        let again = memray(&[command, "result.bin"], dir.path());
        assert_eq!(again.status.code(), Some(1));
        assert_eq!(
            text(&again.stderr).trim(),
            format!("File already exists, will not overwrite without --force: {page}")
        );
        let forced = memray(&[command, "-f", "--no-web", "result.bin"], dir.path());
        assert!(forced.status.success());

        // memray 1.20 refuses the same way.
        let reference = output(
            &reference_memray().memray,
            [command, dir.path().join("result.bin").to_str().unwrap()],
        );
        assert_eq!(reference.status.code(), Some(1));
        assert!(text(&reference.stderr).contains("will not overwrite without --force"));
    }
}

#[test]
fn bad_inputs_and_flags_fail_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("corrupt.bin"), b"not a capture at all").unwrap();
    for command in ["flamegraph", "table"] {
        let missing = memray(&[command, "nothing.bin"], dir.path());
        assert_eq!(missing.status.code(), Some(1));
        assert_eq!(text(&missing.stderr).trim(), "No such file: nothing.bin");

        let corrupt = memray(&[command, "corrupt.bin"], dir.path());
        assert_eq!(corrupt.status.code(), Some(1));
        let message = text(&corrupt.stderr);
        assert!(
            message.starts_with("Failed to parse allocation records in corrupt.bin"),
            "{message}"
        );
        assert!(!message.contains("panicked"));

        let conflicting = memray(
            &[command, "--leaks", "--temporary-allocations", "corrupt.bin"],
            dir.path(),
        );
        assert_eq!(conflicting.status.code(), Some(2));
    }
    let temporal = memray(
        &[
            "flamegraph",
            "--temporal",
            "--temporary-allocations",
            "x.bin",
        ],
        dir.path(),
    );
    assert_eq!(temporal.status.code(), Some(2));
    assert!(text(&temporal.stderr)
        .contains("Can't create a temporal flame graph of temporary allocations"));
    assert!(!dir.path().join("memray-flamegraph-corrupt.html").exists());
}

fn flamegraph_payload(dir: &Path, flags: &[&str]) -> serde_json::Value {
    let page = dir.join("page.html");
    let mut args = vec!["flamegraph", "-f", "-o", page.to_str().unwrap()];
    args.extend_from_slice(flags);
    args.push("result.bin");
    let run = memray(&args, dir);
    assert!(run.status.success(), "{}", text(&run.stderr));
    our_payload(&page)
}

#[test]
fn leaks_over_pymalloc_carry_memray_s_warning() {
    let dir = tempfile::tempdir().unwrap();
    capture(dir.path(), &[], &[]);
    let leaks = flamegraph_payload(dir.path(), &["--leaks"]);
    assert_eq!(leaks["meta"]["pymalloc_leaks_warning"], true);
    assert_eq!(leaks["meta"]["kind"], "leaks");
    let peak = flamegraph_payload(dir.path(), &["--inverted"]);
    assert_eq!(peak["meta"]["pymalloc_leaks_warning"], false);
    assert_eq!(peak["meta"]["inverted"], true);

    let exact = tempfile::tempdir().unwrap();
    capture(exact.path(), &[], &[("PYTHONMALLOC", "malloc")]);
    let leaks = flamegraph_payload(exact.path(), &["--leaks"]);
    assert_eq!(leaks["meta"]["pymalloc_leaks_warning"], false);
    let traced = tempfile::tempdir().unwrap();
    capture(traced.path(), &["--trace-python-allocators"], &[]);
    let leaks = flamegraph_payload(traced.path(), &["--leaks"]);
    assert_eq!(leaks["meta"]["pymalloc_leaks_warning"], false);
}

/// The embedded source lines of the fixture, by line number.
fn fixture_lines(payload: &serde_json::Value) -> Vec<(usize, String)> {
    let strings = payload["strings"].as_array().unwrap();
    let sources = payload["sources"].as_object().unwrap();
    sources
        .iter()
        .filter(|(file, _)| {
            let name = strings[file.parse::<usize>().unwrap()].as_str().unwrap();
            name.ends_with("two_threads.py")
        })
        .flat_map(|(_, lines)| lines.as_array().unwrap().iter().enumerate())
        .filter_map(|(i, line)| {
            let line = line.as_str().unwrap();
            (!line.is_empty()).then(|| (i + 1, line.to_owned()))
        })
        .collect()
}

#[test]
fn source_lines_follow_confidential_files() {
    let dir = tempfile::tempdir().unwrap();
    capture(dir.path(), &[], &[]);
    let script =
        std::fs::read_to_string(fixtures().join("flamegraph").join("two_threads.py")).unwrap();
    let default = fixture_lines(&flamegraph_payload(dir.path(), &[]));
    assert!(!default.is_empty(), ".py files are not confidential");
    for (number, line) in &default {
        assert_eq!(script.lines().nth(number - 1), Some(line.as_str()));
    }
    assert!(default
        .iter()
        .any(|(_, line)| line.contains("bytearray(100_000)")));
    let none = fixture_lines(&flamegraph_payload(
        dir.path(),
        &["--confidential-files", "none"],
    ));
    assert_eq!(none, default);
    let all = flamegraph_payload(dir.path(), &["--confidential-files", "all"]);
    assert!(all["sources"].as_object().unwrap().is_empty());
    let bad = memray(
        &["flamegraph", "--confidential-files", "some", "result.bin"],
        dir.path(),
    );
    assert_eq!(bad.status.code(), Some(2));
}
