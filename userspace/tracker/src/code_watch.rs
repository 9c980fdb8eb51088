//! Learning when code objects die, so that a new code object at a reused
//! address is never mistaken for the old one: `PyCode_AddWatcher` on 3.12+,
//! a wrapper around `PyCode_Type.tp_dealloc` before.

use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::guard::RecursionGuard;
use crate::python::symbol;
use crate::tracking;

/// `PY_CODE_EVENT_DESTROY` in `PyCodeEvent`.
const CODE_EVENT_DESTROY: c_int = 1;
/// Offset of `tp_dealloc` in `PyTypeObject` (after the `PyVarObject` head,
/// `tp_name`, `tp_basicsize` and `tp_itemsize`) on LP64 release builds.
const TP_DEALLOC_OFFSET: usize = 48;

static ORIGINAL_DEALLOC: AtomicUsize = AtomicUsize::new(0);

/// Installs the notification. Must run with the GIL held.
pub fn install(python_hexversion: u32) -> Result<(), String> {
    if python_hexversion >= 0x030C_0000 {
        add_watcher()
    } else {
        wrap_dealloc()
    }
}

fn forget(code: *mut c_void) {
    if let Some(_guard) = RecursionGuard::enter() {
        tracking::code_object_died(code as u64);
    }
}

fn add_watcher() -> Result<(), String> {
    let add = symbol(c"PyCode_AddWatcher").ok_or("no PyCode_AddWatcher in this interpreter")?;
    // SAFETY: `int PyCode_AddWatcher(PyCode_WatchCallback)`.
    let add: unsafe extern "C" fn(extern "C" fn(c_int, *mut c_void) -> c_int) -> c_int =
        unsafe { std::mem::transmute::<usize, _>(add) };
    // SAFETY: called with the GIL held (the bootstrap calls us through ctypes.PyDLL).
    if unsafe { add(on_code_event) } < 0 {
        return Err("PyCode_AddWatcher failed".into());
    }
    Ok(())
}

extern "C" fn on_code_event(event: c_int, code: *mut c_void) -> c_int {
    if event == CODE_EVENT_DESTROY {
        forget(code);
    }
    0
}

fn wrap_dealloc() -> Result<(), String> {
    if ORIGINAL_DEALLOC.load(Ordering::Acquire) != 0 {
        return Ok(());
    }
    let code_type = symbol(c"PyCode_Type").ok_or("no PyCode_Type in this interpreter")?;
    let slot = (code_type + TP_DEALLOC_OFFSET) as *mut usize;
    // SAFETY: PyCode_Type is a static, writable type object; the GIL is held,
    // so no code object is being deallocated concurrently.
    unsafe {
        ORIGINAL_DEALLOC.store(*slot, Ordering::Release);
        *slot = dealloc_code as extern "C" fn(*mut c_void) as usize;
    }
    Ok(())
}

extern "C" fn dealloc_code(code: *mut c_void) {
    forget(code);
    let original = ORIGINAL_DEALLOC.load(Ordering::Acquire);
    // SAFETY: the slot held `void tp_dealloc(PyObject *)`.
    let original: extern "C" fn(*mut c_void) = unsafe { std::mem::transmute::<usize, _>(original) };
    original(code);
}
