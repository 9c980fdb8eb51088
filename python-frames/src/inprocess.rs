//! Walking the calling thread's own stack from inside the process, e.g. from
//! an allocator hook: no allocation, no lock, no system call per walk.

use std::ffi::{c_char, c_void, CStr};
use std::path::Path;

use crate::code::{read_code, CodeInfo, UnreadableCode};
use crate::discover::version_from_name;
use crate::error::Error;
use crate::layout::{version_of_hex, Layout, DEBUG_OFFSETS_PREFIX};
use crate::memory::{LocalMemory, Memory, MemoryExt};
use crate::threads::{finalizing_thread, is_finalizing};
use crate::walk::{walk_stack, RawFrame, StackWalk, Target};

type ThisThreadStateFn = unsafe extern "C" fn() -> *mut c_void;
type GetVersionFn = unsafe extern "C" fn() -> *const c_char;

/// The interpreter running in this process.
#[derive(Clone, Copy, Debug)]
pub struct InProcess {
    target: Target,
    this_thread_state: ThisThreadStateFn,
    /// Reads only what `new` found (`_PyRuntime`, `Py_Version`) and what the
    /// calling thread's own thread state leads to.
    memory: LocalMemory,
}

impl InProcess {
    /// Resolves CPython's symbols with `dlsym`. That may allocate: call it
    /// once, before the allocator hooks are live or under their recursion guard.
    pub fn new() -> Result<InProcess, Error> {
        let runtime = symbol("_PyRuntime").ok_or(Error::NoInterpreterHere)?;
        let this_thread_state =
            symbol("PyGILState_GetThisThreadState").ok_or(Error::NoInterpreterHere)?;
        // SAFETY: this memory reads `_PyRuntime` (static data of the loaded
        // interpreter, larger than the debug-offsets prefix), `Py_Version`,
        // and, through `walk_current_thread` and `code`, only what the calling
        // thread's own thread state leads to.
        let memory = unsafe { LocalMemory::new() };
        let mut head = [0u8; DEBUG_OFFSETS_PREFIX];
        if !memory.read(runtime, &mut head) {
            return Err(Error::NoInterpreterHere);
        }
        let layout = Layout::for_runtime(&head, || version_here(&memory, runtime))?;
        Ok(InProcess {
            target: Target {
                layout,
                runtime,
                code_type: symbol("PyCode_Type").unwrap_or(0),
            },
            // SAFETY: the symbol is CPython's `PyThreadState *(void)` function.
            this_thread_state: unsafe {
                std::mem::transmute::<usize, ThisThreadStateFn>(this_thread_state as usize)
            },
            memory,
        })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    pub fn layout(&self) -> &Layout {
        &self.target.layout
    }

    /// The calling thread's own `PyThreadState` (0 if it has none), from
    /// `PyGILState_GetThisThreadState()`: a TLS read that neither allocates
    /// nor needs the GIL, and is right even when the thread released the GIL
    /// (the runtime's "current" thread state is the GIL holder's).
    #[inline]
    pub fn current_thread_state(&self) -> u64 {
        // SAFETY: resolved from CPython in `new`; it only reads thread-local storage.
        unsafe { (self.this_thread_state)() as u64 }
    }

    /// Walks the calling thread's stack into `out` (innermost first). An
    /// empty walk if the thread has no Python state, or once the runtime is
    /// finalizing on any thread but the finalizing one: other threads' states
    /// may then be freed under them, while the finalizing thread's own stays
    /// valid (and its allocations, e.g. atexit handlers', have real stacks).
    #[inline]
    pub fn walk_current_thread(&self, out: &mut [RawFrame]) -> StackWalk {
        let tstate = self.current_thread_state();
        if tstate == 0 || self.finalizing_elsewhere(tstate) {
            return StackWalk::default();
        }
        walk_stack(&self.memory, &self.target, tstate, out)
    }

    pub fn is_finalizing(&self) -> bool {
        is_finalizing(&self.memory, &self.target)
    }

    /// Whether the runtime is finalizing on a thread other than `tstate`'s.
    fn finalizing_elsewhere(&self, tstate: u64) -> bool {
        finalizing_thread(&self.memory, &self.target).is_some_and(|finalizing| finalizing != tstate)
    }

    /// Reads a code object seen on this thread's stack (allocates the strings).
    ///
    /// # Safety
    /// `code` must be the address of a live code object: one that a frame of
    /// the calling thread's stack holds (from `walk_current_thread`, with that
    /// frame still on the stack), or one otherwise kept alive. Any other
    /// address is dereferenced all the same.
    pub unsafe fn code(&self, code: u64) -> Result<CodeInfo, UnreadableCode> {
        read_code(&self.memory, &self.target.layout, code)
    }
}

/// The address of a symbol visible from the global scope.
fn symbol(name: &str) -> Option<u64> {
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: a valid NUL-terminated name; RTLD_DEFAULT searches the global scope.
    let at = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!at.is_null()).then_some(at as u64)
}

/// This interpreter's `(major, minor)` before 3.13: `Py_Version` (3.11+),
/// else the name of the file that holds `_PyRuntime`, else `Py_GetVersion()`.
fn version_here(memory: &LocalMemory, runtime: u64) -> Result<(u32, u32), Error> {
    if let Some(at) = symbol("Py_Version") {
        if let Some(hex) = memory.read_u32(at) {
            return Ok(version_of_hex(hex));
        }
    }
    // SAFETY: `Dl_info` is plain pointers, for which all zeroes is valid.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a valid out-parameter; the address is `_PyRuntime`'s.
    if unsafe { libc::dladdr(runtime as *const c_void, &mut info) } != 0
        && !info.dli_fname.is_null()
    {
        // SAFETY: dladdr returns a NUL-terminated path owned by the loader.
        let file = unsafe { CStr::from_ptr(info.dli_fname) }.to_string_lossy();
        if let Some(version) = version_from_name(Path::new(file.as_ref())) {
            return Ok(version);
        }
    }
    let get_version = symbol("Py_GetVersion").ok_or(Error::NoInterpreterHere)?;
    // SAFETY: CPython's `const char *Py_GetVersion(void)`, a static string.
    let text = unsafe {
        let get_version = std::mem::transmute::<usize, GetVersionFn>(get_version as usize);
        CStr::from_ptr(get_version()).to_string_lossy().into_owned()
    };
    let mut parts = text.split(|c: char| !c.is_ascii_digit());
    match (
        parts.next().and_then(|p| p.parse().ok()),
        parts.next().and_then(|p| p.parse().ok()),
    ) {
        (Some(major), Some(minor)) => Ok((major, minor)),
        _ => Err(Error::NoInterpreterHere),
    }
}
