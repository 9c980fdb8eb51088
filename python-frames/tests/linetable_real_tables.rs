//! `linetable::line_number` against the lines each installed CPython gives
//! for the real line tables of a few stdlib modules.

use memray_tests::{interpreters, paths, run};
use python_frames::linetable::{line_number, LineTableKind};
use serde_json::Value;

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn real_tables_give_the_interpreters_lines() {
    let script = paths::fixtures().join("python-frames/dump_linetables.py");
    for python in interpreters::all_for_tests() {
        let dump: Value = serde_json::from_str(&run::stdout_of(&python.path, [&script]))
            .expect("the dump is JSON");
        let kind = LineTableKind::for_version(python.version.0, python.version.1);
        let mut checked = 0;
        for code in dump["codes"].as_array().expect("codes") {
            let table = hex_bytes(code["table"].as_str().expect("table"));
            let first = code["firstlineno"].as_i64().expect("firstlineno") as i32;
            for pair in code["lines"].as_array().expect("lines") {
                let offset = pair[0].as_i64().expect("offset");
                let want = pair[1].as_i64().expect("line") as i32;
                let got = line_number(kind, &table, first, offset);
                assert_eq!(
                    got,
                    want,
                    "{}: {} at offset {offset}",
                    python.label(),
                    code["name"]
                );
                checked += 1;
            }
        }
        assert!(
            checked > 10_000,
            "{}: only {checked} offsets",
            python.label()
        );
        eprintln!("{}: {checked} offsets match", python.label());
    }
}
