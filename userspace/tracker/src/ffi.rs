//! The C entry points the `memray run` bootstrap calls through
//! `ctypes.PyDLL` (which keeps the GIL held, so these may call CPython).

use std::ffi::{c_char, c_int, CStr, CString};
use std::path::PathBuf;
use std::sync::Mutex;

use libc::c_ulong;
use memray_format::{Header, PythonAllocator};

use crate::guard::RecursionGuard;
use crate::session::{Options, Session, Settings};
use crate::{code_watch, flags, fork, pymalloc, python, recorder, thread};

static LAST_ERROR: Mutex<Option<CString>> = Mutex::new(None);

fn fail(message: impl Into<Vec<u8>>) -> c_int {
    *recorder::lock(&LAST_ERROR) = CString::new(message).ok();
    -1
}

/// Text of the last failed call (valid until the next failure).
#[no_mangle]
pub extern "C" fn memray_tracker_last_error() -> *const c_char {
    let _guard = RecursionGuard::enter();
    recorder::lock(&LAST_ERROR)
        .as_ref()
        .map_or(c"unknown error".as_ptr(), |e| e.as_ptr())
}

/// Starts recording into `output`. Lists are NUL-separated and end with an
/// empty string. Returns 0, or -1 (see `memray_tracker_last_error`).
///
/// # Safety
/// Every pointer is a valid NUL-terminated string; the GIL is held.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn memray_tracker_activate(
    output: *const c_char,
    flags: u32,
    python_hexversion: u32,
    python_allocator: *const c_char,
    skipped_frames_on_main_tid: u64,
    command_line: *const c_char,
    libdest: *const c_char,
    site_packages: *const c_char,
    sys_path: *const c_char,
) -> c_int {
    let Some(_guard) = RecursionGuard::enter() else {
        return fail("memray_tracker_activate called from inside the tracker");
    };
    if recorder::is_active() {
        return fail("the tracker is already active");
    }
    let options = Options {
        aggregate: flags & flags::AGGREGATE != 0,
        follow_fork: flags & flags::FOLLOW_FORK != 0,
        trace_python_allocators: flags & flags::TRACE_PYTHON_ALLOCATORS != 0,
        compress: flags & flags::COMPRESS != 0,
        buffered: flags & flags::BUFFERED != 0,
        overwrite: flags & flags::FORCE != 0,
    };
    // SAFETY: the caller passes valid strings.
    let (allocator, header) = unsafe {
        (
            text(python_allocator),
            Header {
                python_version: python_hexversion,
                command_line: text(command_line),
                skipped_frames_on_main_tid,
                libdest: text(libdest),
                site_packages: list(site_packages),
                sys_path: list(sys_path),
                ..Header::default()
            },
        )
    };
    let header = Header {
        python_allocator: PythonAllocator::from_name(&allocator) as u8,
        ..header
    };
    let settings = Settings {
        // SAFETY: as above.
        output: PathBuf::from(unsafe { text(output) }),
        options,
        header,
    };
    match activate(settings, python_hexversion) {
        Ok(()) => 0,
        Err(message) => fail(message),
    }
}

fn activate(settings: Settings, python_hexversion: u32) -> Result<(), String> {
    python::init()?;
    let trace_python_allocators = settings.options.trace_python_allocators;
    let session = Session::open(settings, thread::current_tid()).map_err(|e| e.to_string())?;
    code_watch::install(python_hexversion)?;
    if trace_python_allocators {
        pymalloc::install()?;
    }
    fork::install_handlers();
    recorder::start(session);
    if let Some(session) = recorder::session() {
        session.start_sampling();
    }
    Ok(())
}

/// Stops recording and finishes the file (trailer, header, compression).
#[no_mangle]
pub extern "C" fn memray_tracker_deactivate() -> c_int {
    let _guard = RecursionGuard::enter();
    let Some(session) = recorder::stop() else {
        return 0;
    };
    if session.settings.options.trace_python_allocators {
        pymalloc::uninstall();
    }
    match session.finish() {
        Ok(()) => 0,
        Err(error) => fail(error.to_string()),
    }
}

/// A Python thread (by `threading.get_ident()`, its pthread id) got a name.
///
/// # Safety
/// `name` is a valid NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn memray_tracker_set_thread_name(ident: c_ulong, name: *const c_char) {
    if !recorder::is_active() {
        return;
    }
    let Some(_guard) = RecursionGuard::enter() else {
        return;
    };
    // SAFETY: the caller passes a valid string.
    let name = unsafe { CStr::from_ptr(name) }.to_bytes();
    // SAFETY: no preconditions.
    if ident as libc::pthread_t == unsafe { libc::pthread_self() } {
        recorder::thread_name(name);
    } else {
        recorder::other_thread_name(ident as libc::pthread_t, name);
    }
}

/// # Safety
/// `text` is null or a valid NUL-terminated string.
unsafe fn text(text: *const c_char) -> String {
    if text.is_null() {
        return String::new();
    }
    // SAFETY: per the contract.
    unsafe { CStr::from_ptr(text) }
        .to_string_lossy()
        .into_owned()
}

/// # Safety
/// `list` is null or NUL-separated strings ending with an empty one.
unsafe fn list(mut list: *const c_char) -> Vec<String> {
    let mut items = Vec::new();
    while !list.is_null() {
        // SAFETY: per the contract, each item is NUL-terminated.
        let item = unsafe { CStr::from_ptr(list) };
        if item.is_empty() {
            break;
        }
        items.push(item.to_string_lossy().into_owned());
        // SAFETY: the list continues after this item's NUL.
        list = unsafe { list.add(item.to_bytes().len() + 1) };
    }
    items
}
