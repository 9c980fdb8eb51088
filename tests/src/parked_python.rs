//! `parked_threads.py`: a CPython process that parks threads in known
//! stacks and reports them, for the tests that read a live process's stacks.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::paths;
use serde_json::Value;

/// One frame as the fixture's own interpreter reports it.
pub struct ExpectedFrame {
    pub name: String,
    pub file: String,
    pub line: i64,
    /// `co_qualname` on 3.11+, else the name.
    pub qualname: String,
}

/// A running `parked_threads.py`, killed on drop.
pub struct ParkedPython {
    pub child: Child,
    /// The fixture's report: `{"pid", "threads": [{"native_id", "name", "frames": [[name, file, line, qualname]...]}], "unparked": [{"native_id", "name"}]}`.
    expected: Value,
}

impl ParkedPython {
    pub fn start(python: &Path) -> ParkedPython {
        let script = paths::fixtures().join("python-frames/parked_threads.py");
        let mut child = Command::new(python)
            .arg(&script)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the fixture");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the fixture's report");
        let expected = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("fixture report is not JSON ({e}): {line:?}"));
        ParkedPython { child, expected }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// `(native thread id, frames innermost first)`.
    pub fn expected_threads(&self) -> Vec<(u32, Vec<ExpectedFrame>)> {
        self.expected["threads"]
            .as_array()
            .expect("threads")
            .iter()
            .map(|t| {
                let frames = t["frames"]
                    .as_array()
                    .expect("frames")
                    .iter()
                    .map(|f| ExpectedFrame {
                        name: f[0].as_str().expect("name").to_owned(),
                        file: f[1].as_str().expect("file").to_owned(),
                        line: f[2].as_i64().expect("line"),
                        qualname: f[3].as_str().expect("qualname").to_owned(),
                    })
                    .collect();
                (t["native_id"].as_u64().expect("native_id") as u32, frames)
            })
            .collect()
    }
}

impl ParkedPython {
    /// `(native thread id, threading's name of the thread)` of the parked
    /// threads, the reporter, and a thread that has ended, its object kept.
    pub fn expected_names(&self) -> Vec<(u32, String)> {
        let listed = |key: &str| self.expected[key].as_array().expect("thread list").clone();
        listed("threads")
            .into_iter()
            .chain(listed("unparked"))
            .map(|t| {
                let name = t["name"].as_str().expect("name").to_owned();
                (t["native_id"].as_u64().expect("native_id") as u32, name)
            })
            .collect()
    }
}

impl Drop for ParkedPython {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
