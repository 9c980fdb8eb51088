//! A human-readable dump of every thread's Python stack in a live process
//! (what `memray dump-stacks PID` prints), like `py-spy dump`.

use std::fmt::Write;

use crate::code::CodeCache;
use crate::error::Error;
use crate::process::PythonProcess;

/// The stacks of every thread of process `pid`, innermost frame first, at
/// most `max_depth` frames per thread.
pub fn dump_stacks(pid: i32, max_depth: usize) -> Result<String, Error> {
    let process = PythonProcess::attach(pid)?;
    let layout = process.layout();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Process {pid}: CPython {}.{} ({}){}",
        layout.major,
        layout.minor,
        process.binary().display(),
        if process.is_finalizing() {
            " [finalizing]"
        } else {
            ""
        }
    );
    let mut cache = CodeCache::new();
    for stack in process.snapshot(max_depth)? {
        let native = stack
            .native_thread_id
            .map_or_else(|| "?".to_owned(), |tid| tid.to_string());
        let _ = writeln!(
            out,
            "\nThread {native} (pthread {:#x}):",
            stack.thread.thread_id
        );
        if stack.frames.is_empty() {
            let _ = writeln!(out, "    (no Python frames)");
        }
        for frame in &stack.frames {
            match process.code(&mut cache, frame.code) {
                Ok(code) => {
                    let name = code.qualname.as_deref().unwrap_or(&code.name);
                    let line = code.line(layout, frame.instruction_offset);
                    let _ = writeln!(out, "    {name} ({}:{line})", code.filename);
                }
                Err(err) => {
                    let _ = writeln!(out, "    <{err}>");
                }
            }
        }
        if stack.walk.truncated {
            let _ = writeln!(out, "    ... (outer frames beyond {max_depth} not shown)");
        }
        if stack.walk.broken {
            let _ = writeln!(out, "    ... (stack changed while being read)");
        }
    }
    Ok(out)
}
