//! The C entry points the `memray run` bootstrap calls through
//! `ctypes.PyDLL` (which keeps the GIL held, so these may call CPython).

use std::ffi::{c_char, c_int, CStr, CString, OsString};
use std::net::TcpListener;
use std::os::fd::FromRawFd;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use libc::c_ulong;
use memray_activation::{flags, ActivationOptions};
use memray_recorder::{
    describe_os_error, CaptureOptions, CaptureSettings, Header, LiveListener, PythonAllocator,
};

use crate::guard::RecursionGuard;
#[cfg(target_os = "linux")]
use crate::patcher;
use crate::session::Session;
use crate::{code_watch, fork, native, platform, pymalloc, python, thread, tracking};

static LAST_ERROR: Mutex<Option<CString>> = Mutex::new(None);

fn fail(message: impl Into<Vec<u8>>) -> c_int {
    *tracking::lock(&LAST_ERROR) = CString::new(message).ok();
    -1
}

/// Text of the last failed call (valid until the next failure).
#[no_mangle]
pub extern "C" fn memray_tracker_last_error() -> *const c_char {
    let _guard = RecursionGuard::enter();
    tracking::lock(&LAST_ERROR)
        .as_ref()
        .map_or(c"unknown error".as_ptr(), |e| e.as_ptr())
}

/// Starts recording as `options` say. Returns 0, or -1 (see
/// `memray_tracker_last_error`).
///
/// # Safety
/// `options` points to an [`ActivationOptions`] whose strings are null or
/// valid NUL-terminated strings (lists: NUL-separated, closed by an empty
/// one); the GIL is held.
#[no_mangle]
pub unsafe extern "C" fn memray_tracker_activate(options: *const ActivationOptions) -> c_int {
    let Some(_guard) = RecursionGuard::enter() else {
        return fail("memray_tracker_activate called from inside the tracker");
    };
    if tracking::is_active() {
        return fail("the tracker is already active");
    }
    // SAFETY: the caller passes a valid struct, whose first two fields
    // (size and version) every layout shares, so they can be checked first.
    let options = unsafe { &*options };
    if !options.is_current() {
        return fail(format!(
            "memray_tracker_activate: options of version {} ({} bytes); this library reads version {} ({} bytes)",
            options.version,
            options.size,
            memray_activation::VERSION,
            size_of::<ActivationOptions>()
        ));
    }
    if let Some(refusal) = platform::loader_refusal() {
        return fail(refusal);
    }
    // SAFETY: checked to be this crate's layout; the caller passes valid strings.
    let settings = unsafe { capture_settings(options) };
    match activate(settings, options) {
        Ok(()) => 0,
        Err(message) => fail(message),
    }
}

/// # Safety
/// As for `memray_tracker_activate`, with the layout checked.
unsafe fn capture_settings(options: &ActivationOptions) -> CaptureSettings {
    // SAFETY: per the contract, every pointer is null or a valid string (list).
    let header = unsafe {
        Header {
            python_version: options.python_hexversion,
            python_allocator: PythonAllocator::from_name(&text(options.python_allocator)) as u8,
            command_line: text(options.command_line),
            skipped_frames_on_main_tid: options.skipped_frames_on_main_tid,
            libdest: text(options.libdest),
            site_packages: list(options.site_packages),
            sys_path: list(options.sys_path),
            ..Header::default()
        }
    };
    CaptureSettings {
        // SAFETY: as above.
        output: PathBuf::from(OsString::from_vec(unsafe { bytes(options.output) })),
        live: options.has(flags::LIVE).then(|| {
            // SAFETY: per the contract, `live_socket` is a listening socket
            // the process inherited and nothing else uses.
            LiveListener::new(unsafe { TcpListener::from_raw_fd(options.live_socket) })
        }),
        options: CaptureOptions {
            aggregate: options.has(flags::AGGREGATE),
            native_traces: options.has(flags::NATIVE),
            trace_python_allocators: options.has(flags::TRACE_PYTHON_ALLOCATORS),
            compress: options.has(flags::COMPRESS),
            buffered: options.has(flags::BUFFERED),
            overwrite: options.has(flags::FORCE),
        },
        header,
    }
}

fn activate(settings: CaptureSettings, options: &ActivationOptions) -> Result<(), String> {
    python::init()?;
    let trace_python_allocators = settings.options.trace_python_allocators;
    let follow_fork = options.has(flags::FOLLOW_FORK);
    native::start(settings.options.native_traces);
    // A zero interval would make the sampler spin.
    let memory_interval = Duration::from_millis(u64::from(options.memory_interval_ms.max(1)));
    let session = Session::open(
        settings,
        follow_fork,
        memory_interval,
        thread::current_tid(),
    )
    .map_err(|e| describe_os_error(&e))?;
    code_watch::install(options.python_hexversion)?;
    if trace_python_allocators {
        pymalloc::install()?;
    }
    fork::install_handlers();
    tracking::start(session);
    if let Some(session) = tracking::session() {
        session.start_sampling();
    }
    // Loaded after start (`memray.Tracker`), the library interposes nothing
    // by itself (on macOS dyld refuses to activate it: `loader_refusal`).
    #[cfg(target_os = "linux")]
    if !patcher::interposed() {
        patcher::patch();
    }
    Ok(())
}

/// Whether a capture is being recorded (1) or not (0).
#[no_mangle]
pub extern "C" fn memray_tracker_is_active() -> c_int {
    c_int::from(tracking::is_active())
}

/// Stops recording and finishes the file (trailer, header, compression).
#[no_mangle]
pub extern "C" fn memray_tracker_deactivate() -> c_int {
    let _guard = RecursionGuard::enter();
    let Some(session) = tracking::stop() else {
        return 0;
    };
    #[cfg(target_os = "linux")]
    patcher::restore();
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
    if !tracking::is_active() {
        return;
    }
    let Some(_guard) = RecursionGuard::enter() else {
        return;
    };
    // SAFETY: the caller passes a valid string.
    let name = unsafe { CStr::from_ptr(name) }.to_bytes();
    // SAFETY: no preconditions.
    if ident as libc::pthread_t == unsafe { libc::pthread_self() } {
        tracking::thread_name(name);
    } else {
        tracking::other_thread_name(ident, name);
    }
}

/// # Safety
/// `text` is null or a valid NUL-terminated string.
unsafe fn bytes(text: *const c_char) -> Vec<u8> {
    if text.is_null() {
        return Vec::new();
    }
    // SAFETY: per the contract.
    unsafe { CStr::from_ptr(text) }.to_bytes().to_vec()
}

/// # Safety
/// `text` is null or a valid NUL-terminated string.
unsafe fn text(text: *const c_char) -> String {
    // SAFETY: per the contract.
    String::from_utf8_lossy(&unsafe { bytes(text) }).into_owned()
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
