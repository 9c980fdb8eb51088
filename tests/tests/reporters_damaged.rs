//! A capture damaged in the middle is reported up to the damage, as memray
//! does, and never silently: every reporter exits 0, says on stderr where
//! the damage is, and prints the numbers of the same capture cut there.
//! (Damage inside LZ4-compressed data ends the decompressed stream, so such
//! a capture reads as cut off: reporters_usability.rs covers that.)

use std::path::Path;
use std::process::Output;

use memray_format::CaptureReader;
use memray_tests::paths::fixtures;
use memray_tests::reference::reference_memray;
use memray_tests::run::memray_in;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// memray 1.20's plain capture of `many_allocations.py`.
fn recorded(dir: &Path) -> Vec<u8> {
    let capture = dir.join("recorded.bin");
    let out = std::process::Command::new(reference_memray().memray)
        .args(["run", "-q", "--no-compress", "-o"])
        .arg(&capture)
        .arg(fixtures().join("analysis").join("many_allocations.py"))
        .arg("20000")
        .output()
        .expect("run the reference memray");
    assert!(out.status.success(), "memray run: {}", stderr(&out));
    std::fs::read(capture).unwrap()
}

/// Where the reader stops in `bytes`: the damage's offset, if any.
fn damage_in(bytes: Vec<u8>) -> Option<u64> {
    let mut reader = CaptureReader::from_bytes(bytes).unwrap();
    while reader.next_record().unwrap().is_some() {}
    reader.damage().map(|damage| damage.offset)
}

/// An offset past the middle of `bytes` where a record starts (zeroing its
/// token stops the reader right there), after a non-zero byte (so a file
/// cut there keeps its last record: trailing zeros are padding).
fn record_start_past_middle(bytes: &[u8]) -> usize {
    (bytes.len() / 2..bytes.len())
        .find(|&at| {
            let mut damaged = bytes.to_vec();
            damaged[at] = 0;
            bytes[at - 1] != 0 && damage_in(damaged) == Some(at as u64)
        })
        .expect("a record starts past the middle")
}

/// Reporters whose whole output is on stdout or in a text file.
const TEXT_REPORTERS: &[&[&str]] = &[
    &["stats"],
    &["summary"],
    &["tree"],
    &["parse"],
    &["transform", "csv", "-f", "-o", "out.csv"],
];
const HTML_REPORTERS: &[&[&str]] = &[&["flamegraph", "-f"], &["table", "-f"]];

#[test]
fn every_reporter_reports_a_damaged_capture_up_to_the_damage() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = recorded(dir.path());
    let at = record_start_past_middle(&bytes);
    // The same file name in two folders: the outputs can be compared whole.
    let damaged_dir = dir.path().join("damaged");
    let cut_dir = dir.path().join("cut");
    let mut damaged = bytes.clone();
    damaged[at..at + 64].fill(0);
    for (folder, contents) in [(&damaged_dir, &damaged[..]), (&cut_dir, &bytes[..at])] {
        std::fs::create_dir(folder).unwrap();
        std::fs::write(folder.join("capture.bin"), contents).unwrap();
    }
    let warning = format!(
        "warning: capture.bin is damaged at offset {at}: the report covers the records before it\n"
    );
    for args in TEXT_REPORTERS.iter().chain(HTML_REPORTERS) {
        let all = [*args, &["capture.bin"]].concat();
        let ours = memray_in(&damaged_dir, &all);
        assert!(ours.status.success(), "{all:?}: {}", stderr(&ours));
        assert_eq!(stderr(&ours), warning, "{all:?}");
        let cut = memray_in(&cut_dir, &all);
        assert!(cut.status.success(), "{all:?}: {}", stderr(&cut));
        if args[0] == "parse" {
            // memray's dump names the record it could not read, then stops.
            let dumped = String::from_utf8(ours.stdout).unwrap();
            let before = String::from_utf8(cut.stdout).unwrap();
            assert!(dumped.starts_with(&before), "the dump up to the damage");
            assert_eq!(&dumped[before.len()..], "UNKNOWN RECORD TYPE 0\n");
            let theirs = std::process::Command::new(reference_memray().memray)
                .args(["parse", "capture.bin"])
                .current_dir(&damaged_dir)
                .output()
                .expect("run the reference memray");
            assert_eq!(String::from_utf8(theirs.stdout).unwrap(), dumped);
        } else {
            assert_eq!(ours.stdout, cut.stdout, "{all:?}");
        }
    }
    let csv = |folder: &Path| std::fs::read(folder.join("out.csv")).unwrap();
    assert_eq!(csv(&damaged_dir), csv(&cut_dir));
    for args in HTML_REPORTERS {
        let page =
            std::fs::read_to_string(damaged_dir.join(format!("memray-{}-capture.html", args[0])))
                .unwrap();
        assert!(page.contains("id=\"cut-off-warning\""), "{args:?}");
    }
}
