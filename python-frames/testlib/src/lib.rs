//! Test library loaded into Python with ctypes: walks its own thread's stack
//! in-process, exactly as the tracker does from its allocator hooks.
//!
//! C ABI:
//! * `frames_walk_json(buf, len) -> isize`: the calling thread's Python stack as
//!   JSON `[[name, file, line], ...]` (innermost first) written to `buf`;
//!   returns the length, or -1 with a one-line error in `buf`.
//! * `frames_time_walk(iterations, lookup) -> f64`: median nanoseconds of one
//!   walk of the calling thread's stack (with `lookup`, plus a cached lookup of
//!   each frame's code object in a hash map).

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Instant;

use python_frames::{CodeInfo, InProcess, RawFrame};

/// Deep enough for the fixtures' recursion.
const MAX_DEPTH: usize = 2048;

fn interpreter() -> Result<&'static InProcess, String> {
    static INTERPRETER: OnceLock<Result<InProcess, String>> = OnceLock::new();
    INTERPRETER
        .get_or_init(|| InProcess::new().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(Clone::clone)
}

fn stack_json() -> Result<String, String> {
    let here = interpreter()?;
    let mut frames = vec![RawFrame::default(); MAX_DEPTH];
    let walk = here.walk_current_thread(&mut frames);
    if walk.truncated || walk.broken {
        return Err(format!("walk ended early: {walk:?}"));
    }
    let mut out = Vec::with_capacity(walk.depth);
    for frame in &frames[..walk.depth] {
        // SAFETY: a frame of this thread's stack, which is still on it.
        let code = unsafe { here.code(frame.code) }.map_err(|e| e.to_string())?;
        let line = code.line(here.layout(), frame.instruction_offset);
        out.push(serde_json::json!([code.name, code.filename, line]));
    }
    Ok(serde_json::Value::Array(out).to_string())
}

/// Writes `text` into the caller's buffer (truncated to fit).
fn write_out(text: &str, buf: *mut u8, len: usize) -> usize {
    let n = text.len().min(len);
    // SAFETY: the caller passes a writable buffer of `len` bytes.
    unsafe { std::ptr::copy_nonoverlapping(text.as_ptr(), buf, n) };
    n
}

/// # Safety
/// `buf` must point to `len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn frames_walk_json(buf: *mut u8, len: usize) -> isize {
    match stack_json() {
        Ok(json) if json.len() <= len => write_out(&json, buf, len) as isize,
        Ok(json) => {
            write_out(&format!("buffer too small: need {}", json.len()), buf, len);
            -1
        }
        Err(message) => {
            write_out(&message, buf, len);
            -1
        }
    }
}

/// Median ns per walk (+ cached code lookups) over `iterations` rounds; -1 on error.
#[no_mangle]
pub extern "C" fn frames_time_walk(iterations: u32, lookup: bool) -> f64 {
    let Ok(here) = interpreter() else {
        return -1.0;
    };
    let mut frames = vec![RawFrame::default(); MAX_DEPTH];
    let mut cache: HashMap<u64, CodeInfo> = HashMap::new();
    let mut samples = Vec::with_capacity(iterations as usize);
    for _ in 0..iterations.max(1) {
        let start = Instant::now();
        let walk = here.walk_current_thread(&mut frames);
        let mut named = walk.depth;
        for frame in frames[..walk.depth].iter().filter(|_| lookup) {
            if let Some(code) = cache.get(&frame.code) {
                named += code.firstlineno as usize & 1;
            // SAFETY: a frame of this thread's stack, which is still on it.
            } else if let Ok(code) = unsafe { here.code(frame.code) } {
                cache.insert(frame.code, code);
            }
        }
        std::hint::black_box(named);
        samples.push(start.elapsed().as_nanos() as f64);
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}
