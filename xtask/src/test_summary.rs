//! Runs `cargo test`, passing its output through, and closes with one line
//! that totals every test binary's result: cargo itself ends on the last
//! crate's doc tests, which often ran none. A binary that ends without a
//! result line (it crashed) counts as one failure, under its name; a test
//! that recorded a skip (`memray_tests::skip`) counts as skipped, not passed.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Counts of one test binary, or of the whole run.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Counts {
    passed: u64,
    failed: u64,
    skipped: u64,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
    }
}

/// One test binary (or crate's doc tests) as cargo ran it.
#[derive(Debug, Default)]
struct Binary {
    /// The name skip lines use: the file name without cargo's hash
    /// (`reporters_tree`), or `doc-tests <crate>`.
    name: String,
    /// libtest's counts, from its `test result:` line; `None` if it never printed one.
    result: Option<Counts>,
    passed_tests: BTreeSet<String>,
}

/// What `cargo test` printed, read line by line.
#[derive(Debug, Default)]
struct Run {
    binaries: Vec<Binary>,
}

impl Run {
    fn add_line(&mut self, line: &str) {
        let line = line.trim_end();
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("Running ") {
            self.start(binary_name(rest));
        } else if let Some(krate) = trimmed.strip_prefix("Doc-tests ") {
            self.start(format!("doc-tests {krate}"));
        } else if let Some(counts) = trimmed.strip_prefix("test result:") {
            if let Some(binary) = self.binaries.last_mut() {
                binary.result = Some(parse_result(counts));
            }
        } else if let Some(test) = trimmed
            .strip_prefix("test ")
            .and_then(|rest| rest.strip_suffix(" ... ok"))
        {
            if let Some(binary) = self.binaries.last_mut() {
                binary.passed_tests.insert(test.to_owned());
            }
        }
    }

    fn start(&mut self, name: String) {
        self.binaries.push(Binary {
            name,
            ..Binary::default()
        });
    }
}

/// `tests/foo.rs (target/debug/deps/foo-0123abcd)` -> `foo`.
fn binary_name(running: &str) -> String {
    let path = running
        .rsplit_once('(')
        .and_then(|(_, path)| path.strip_suffix(')'))
        .unwrap_or(running);
    let stem = Path::new(path)
        .file_name()
        .map_or_else(|| path.to_owned(), |n| n.to_string_lossy().into_owned());
    stem.rsplit_once('-')
        .map_or(stem.as_str(), |(name, _hash)| name)
        .to_owned()
}

/// `ok. 4 passed; 0 failed; 1 ignored; …`: an ignored test did not run, so
/// it counts as skipped.
fn parse_result(counts: &str) -> Counts {
    let mut out = Counts::default();
    for part in counts.split(';') {
        let mut words = part.split_whitespace().rev();
        let (Some(label), Some(number)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(n) = number.parse::<u64>() else {
            continue;
        };
        match label {
            "passed" => out.passed += n,
            "failed" => out.failed += n,
            "ignored" => out.skipped += n,
            _ => {}
        }
    }
    out
}

/// The summary: per-binary counts, the skip reasons and crashed binaries,
/// then the closing totals.
#[derive(Debug, PartialEq)]
struct Summary {
    per_binary: Vec<(String, Counts)>,
    skips: Vec<String>,
    crashed: Vec<String>,
    totals: Counts,
}

/// Combines libtest's results with the skip lines (`skipped: <binary>::<test>…`).
/// A skip naming a test that libtest saw pass moves it from passed to
/// skipped; any other (a part of a test, e.g. one CPython) adds a skip.
fn summarize(run: &Run, skip_lines: &[String]) -> Summary {
    let skips: Vec<String> = skip_lines
        .iter()
        .map(|l| l.trim_end().to_owned())
        .filter(|l| l.starts_with("skipped: "))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut per_binary: Vec<(String, Counts)> = Vec::new();
    let mut crashed = Vec::new();
    let mut claimed = vec![false; skips.len()];
    for binary in &run.binaries {
        let mut counts = binary.result.unwrap_or_else(|| {
            crashed.push(binary.name.clone());
            Counts {
                failed: 1,
                ..Counts::default()
            }
        });
        let prefix = format!("skipped: {}::", binary.name);
        for (skip, claimed) in skips.iter().zip(claimed.iter_mut()) {
            let Some(rest) = skip.strip_prefix(&prefix).filter(|_| !*claimed) else {
                continue;
            };
            *claimed = true;
            counts.skipped += 1;
            let whole_test = rest.split_once(": ").map_or(rest, |(test, _)| test);
            if binary.passed_tests.contains(whole_test) {
                counts.passed -= 1;
            }
        }
        per_binary.push((binary.name.clone(), counts));
    }
    let mut totals = Counts::default();
    for (_, counts) in &per_binary {
        totals.add(*counts);
    }
    // Skips from a binary cargo did not announce still count.
    totals.skipped += claimed.iter().filter(|c| !**c).count() as u64;
    Summary {
        per_binary,
        skips,
        crashed,
        totals,
    }
}

impl Summary {
    fn print(&self) {
        println!("\nper test binary:");
        for (name, c) in &self.per_binary {
            println!(
                "  {name}: {} passed, {} failed, {} skipped",
                c.passed, c.failed, c.skipped
            );
        }
        for line in &self.skips {
            println!("{line}");
        }
        for name in &self.crashed {
            println!("crashed: {name}: ended without a result line (counted as 1 failed)");
        }
        let t = self.totals;
        println!(
            "workspace: {} passed, {} failed, {} skipped",
            t.passed, t.failed, t.skipped
        );
    }
}

/// Runs `command` (a `cargo test`) with stdout and stderr merged into one
/// pipe (cargo announces each binary on stderr, libtest reports on stdout),
/// echoing it, and with `skip_env` naming a fresh skip log; then prints the
/// summary. Fails on any failed test, crashed binary or cargo failure.
pub fn run_and_total(mut command: Command, skip_env: &str, skip_log: &Path) -> Result<()> {
    match std::fs::remove_file(skip_log) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).context(format!("removing {}", skip_log.display())),
    }
    let (reader, writer) = std::io::pipe().context("creating a pipe")?;
    command
        .env(skip_env, skip_log)
        .stdout(writer.try_clone().context("duplicating the pipe")?)
        .stderr(writer);
    let mut child = command.spawn().context("cannot start cargo test")?;
    // The command holds the pipe's write ends: drop them to see the end of it.
    drop(command);
    let mut run = Run::default();
    let mut reader = BufReader::new(reader);
    let mut bytes = Vec::new();
    while reader
        .read_until(b'\n', &mut bytes)
        .context("reading cargo test output")?
        > 0
    {
        let line = String::from_utf8_lossy(&bytes);
        run.add_line(&line);
        // print!, which libtest captures when this runs under a test.
        print!("{line}");
        bytes.clear();
    }
    let status = child.wait()?;
    let skip_lines = match std::fs::read_to_string(skip_log) {
        Ok(text) => text.lines().map(str::to_owned).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).context(format!("reading {}", skip_log.display())),
    };
    let summary = summarize(&run, &skip_lines);
    summary.print();
    if summary.totals.failed > 0 || !status.success() {
        bail!(
            "cargo test failed ({status}; {} failed)",
            summary.totals.failed
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_of(output: &str) -> Run {
        let mut run = Run::default();
        for line in output.lines() {
            run.add_line(line);
        }
        run
    }

    const OUTPUT: &str = "\
     Running unittests src/lib.rs (target/debug/deps/memray_format-0123abcd)
running 2 tests
test a ... ok
test b ... ok
test result: ok. 2 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s
     Running tests/reporters_tree.rs (target/debug/deps/reporters_tree-4567)
running 3 tests
test piped ... ok
test opens ... ok
test keys ... FAILED
test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out
     Running tests/crashes.rs (target/debug/deps/crashes-89ab)
running 1 test
error: test failed, to rerun pass `--test crashes`
   Doc-tests memray_format
running 0 tests
test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out
";

    #[test]
    fn totals_are_the_sum_of_the_binaries_with_skips_and_crashes() {
        let skips = [
            "skipped: reporters_tree::opens: needs tmux: tmux is not on PATH",
            "skipped: memray_format::a on CPython 3.14: not run: not installed",
            "skipped: memray_format::a on CPython 3.14: not run: not installed",
        ]
        .map(String::from);
        let summary = summarize(&run_of(OUTPUT), &skips);
        let counts = |passed, failed, skipped| Counts {
            passed,
            failed,
            skipped,
        };
        assert_eq!(
            summary.per_binary,
            vec![
                ("memray_format".to_owned(), counts(2, 0, 2)),
                ("reporters_tree".to_owned(), counts(1, 1, 1)),
                ("crashes".to_owned(), counts(0, 1, 0)),
                ("doc-tests memray_format".to_owned(), counts(0, 0, 0)),
            ]
        );
        assert_eq!(summary.crashed, vec!["crashes".to_owned()]);
        assert_eq!(summary.totals, counts(3, 2, 3));
        assert_eq!(summary.skips.len(), 2, "repeated skip lines count once");
    }

    /// A real process standing in for cargo: one binary reports, the next
    /// is killed before its result line; stderr and stdout share the pipe.
    #[test]
    fn a_binary_killed_before_its_result_fails_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new("sh");
        command.args([
            "-c",
            "echo '     Running tests/a.rs (target/debug/deps/a-1)' >&2; \
             echo 'test result: ok. 1 passed; 0 failed; 0 ignored'; \
             echo '     Running tests/b.rs (target/debug/deps/b-2)' >&2; \
             kill -SEGV $$",
        ]);
        let error = run_and_total(command, "UNUSED_SKIP_LOG", &dir.path().join("skips.log"))
            .expect_err("a crashed binary fails the run");
        assert!(error.to_string().contains("1 failed"), "{error}");
    }

    #[test]
    fn binary_names_drop_cargos_hash() {
        assert_eq!(
            binary_name("tests/format_golden.rs (target/debug/deps/format_golden-0a1b2c)"),
            "format_golden"
        );
    }
}
