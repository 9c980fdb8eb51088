//! The calling thread's Python frames and code objects, read straight from
//! memory with `python-frames` (never by calling into CPython: a hook may run
//! while the interpreter is half-way through growing an arena).

use std::ffi::CStr;
use std::sync::OnceLock;

use memray_recorder::{CodeInfo, CodeNamer, TRUNCATION_MARKER};
use python_frames::{InProcess, RawFrame};

/// The deepest stack the tracker keeps: beyond it, the innermost frames under an outermost
/// `<truncated stack>` frame.
const MAX_DEPTH: usize = 16 * 1024;
const INITIAL_DEPTH: usize = 128;

static INTERPRETER: OnceLock<InProcess> = OnceLock::new();

/// Learns the running interpreter's layout. Called at activation.
pub fn init() -> Result<(), String> {
    if INTERPRETER.get().is_none() {
        let interpreter = InProcess::new().map_err(|e| format!("memray: {e}"))?;
        let _ = INTERPRETER.set(interpreter);
    }
    Ok(())
}

/// A symbol of the interpreter (the executable or libpython).
pub fn symbol(name: &CStr) -> Option<usize> {
    // SAFETY: dlsym with a NUL-terminated name.
    let address = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!address.is_null()).then_some(address as usize)
}

/// A walk buffer and how much of it the last walk filled.
#[derive(Default)]
pub struct Frames {
    buffer: Vec<RawFrame>,
    depth: usize,
}

impl Frames {
    pub fn innermost_first(&self) -> &[RawFrame] {
        &self.buffer[..self.depth]
    }
}

/// Fills `frames` with the calling thread's own Python stack (empty where
/// python-frames declines to walk: no thread state, or finalization running
/// on another thread); a stack deeper than [`MAX_DEPTH`] keeps its innermost
/// frames under [`TRUNCATION_MARKER`].
pub fn walk_current_thread(frames: &mut Frames) {
    frames.depth = 0;
    let Some(interpreter) = INTERPRETER.get() else {
        return;
    };
    if frames.buffer.is_empty() {
        frames.buffer.resize(INITIAL_DEPTH, RawFrame::default());
    }
    loop {
        // At the limit, the buffer has one more slot: the marker's.
        let room = frames.buffer.len().min(MAX_DEPTH);
        let walk = interpreter.walk_current_thread(&mut frames.buffer[..room]);
        frames.depth = walk.depth;
        if !walk.truncated {
            return;
        }
        if frames.buffer.len() > MAX_DEPTH {
            frames.buffer[frames.depth] = TRUNCATION_MARKER;
            frames.depth += 1;
            return;
        }
        let bigger = (frames.buffer.len() * 2).min(MAX_DEPTH + 1);
        frames.buffer.resize(bigger, RawFrame::default());
    }
}

/// Names code objects by reading them in this process's memory.
pub struct LocalCodes;

impl CodeNamer for LocalCodes {
    fn code(&mut self, address: u64) -> Option<CodeInfo> {
        let interpreter = INTERPRETER.get()?;
        // SAFETY: the recorder asks only for code objects of the calling
        // thread's current stack walk, which its frames keep alive.
        unsafe { interpreter.code(address) }.ok()
    }
}
