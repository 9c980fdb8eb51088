//! `dlopen` and `dlclose`: nothing the calling thread allocates or frees while
//! the dynamic loader runs (its own bookkeeping, and the constructors of the
//! libraries it loads) is recorded. memray does the same, so captures of
//! programs that load extensions (numpy) match its. With `--native`, every
//! successful call refreshes the unwinder's modules and the capture's list of
//! loaded objects, as memray does.
//!
//! glibc searches a bare library name with the RUNPATH of the object that
//! called `dlopen`; once interposed, that caller would be this library. So on
//! Linux `dlopen` is a two-instruction trampoline that hands the real caller's
//! address on, and bare names are first looked up along that caller's search
//! path. On macOS `dlopen` calls the real one directly (CPython opens
//! extensions by full path; `@loader_path` names would resolve from here).

use std::ffi::{c_char, c_int, c_void};
#[cfg(target_os = "linux")]
use std::ffi::{CStr, CString};

use crate::guard::RecursionGuard;
use crate::native;
#[cfg(target_os = "linux")]
use crate::patcher;
use crate::real;

/// `dladdr1`'s request for the object's `struct link_map` (`<dlfcn.h>`).
#[cfg(target_os = "linux")]
const RTLD_DL_LINKMAP: c_int = 2;

/// `Dl_serpath` (`<dlfcn.h>`).
#[cfg(target_os = "linux")]
#[repr(C)]
struct SearchPathEntry {
    name: *const c_char,
    flags: u32,
}

/// `Dl_serinfo` (`<dlfcn.h>`): `count` entries start at `entries`.
#[cfg(target_os = "linux")]
#[repr(C)]
struct SearchPaths {
    size: usize,
    count: u32,
    entries: [SearchPathEntry; 1],
}

/// # Safety
/// C `dlopen`. Passes its return address (the caller) to [`open_for_caller`].
#[cfg(target_os = "linux")]
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn dlopen(filename: *const c_char, flags: c_int) -> *mut c_void {
    core::arch::naked_asm!(
        "mov rdx, [rsp]",
        "jmp {open}",
        open = sym open_for_caller,
    )
}

#[cfg(target_os = "linux")]
unsafe extern "C" fn open_for_caller(
    filename: *const c_char,
    flags: c_int,
    caller: *const c_void,
) -> *mut c_void {
    // SAFETY: dlopen's own arguments and its caller's address.
    untracked_open(|| unsafe { open(filename, flags, caller) })
}

/// # Safety
/// C `dlopen`.
#[cfg(target_os = "macos")]
pub unsafe extern "C" fn dlopen(filename: *const c_char, flags: c_int) -> *mut c_void {
    // SAFETY: forwarding dlopen's own arguments.
    untracked_open(|| unsafe { real::dlopen(filename, flags) })
}

/// Runs `open` (a real `dlopen`) unrecorded; a new object refreshes the modules.
fn untracked_open(open: impl FnOnce() -> *mut c_void) -> *mut c_void {
    let _guard = RecursionGuard::enter();
    real::ensure_resolved();
    let handle = open();
    if !handle.is_null() {
        #[cfg(target_os = "linux")]
        patcher::objects_loaded();
        native::loaded_objects_changed();
    }
    handle
}

/// `dlopen(filename, flags)` as `caller` would have had it.
#[cfg(target_os = "linux")]
unsafe fn open(filename: *const c_char, flags: c_int, caller: *const c_void) -> *mut c_void {
    if !filename.is_null() {
        // SAFETY: dlopen's contract: a NUL-terminated name.
        let name = unsafe { CStr::from_ptr(filename) };
        if !name.is_empty() && !name.to_bytes().contains(&b'/') {
            // SAFETY: `caller` is the return address of a dlopen call.
            if let Some(handle) = unsafe { open_along_search_path(name, flags, caller) } {
                return handle;
            }
        }
    }
    // SAFETY: forwarding dlopen's own arguments.
    unsafe { real::dlopen(filename, flags) }
}

#[cfg(target_os = "linux")]
/// Opens `name` from the first directory of the caller's search path that has it.
unsafe fn open_along_search_path(
    name: &CStr,
    flags: c_int,
    caller: *const c_void,
) -> Option<*mut c_void> {
    // SAFETY: `caller` is only looked up, and `object` is loader-owned.
    let object = unsafe { object_containing(caller)? };
    // SAFETY: a link map is a valid dlinfo handle in glibc.
    let directories = unsafe { search_path(object)? };
    directories.iter().find_map(|directory| {
        let mut path = directory.clone();
        path.push(b'/');
        path.extend_from_slice(name.to_bytes());
        let path = CString::new(path).ok()?;
        // SAFETY: a NUL-terminated path.
        let handle = unsafe { real::dlopen(path.as_ptr(), flags) };
        (!handle.is_null()).then_some(handle)
    })
}

#[cfg(target_os = "linux")]
/// The `struct link_map` of the object holding `address`.
pub(crate) unsafe fn object_containing(address: *const c_void) -> Option<*mut c_void> {
    // SAFETY: plain out-parameters.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    let mut link_map: *mut c_void = std::ptr::null_mut();
    // SAFETY: as above; dladdr1 only reads the loader's tables.
    let found = unsafe {
        libc::dladdr1(
            address,
            &mut info,
            (&mut link_map as *mut *mut c_void).cast(),
            RTLD_DL_LINKMAP,
        )
    };
    (found != 0 && !link_map.is_null()).then_some(link_map)
}

#[cfg(target_os = "linux")]
/// The directories glibc would search for a bare name dlopen'ed by `object`.
unsafe fn search_path(object: *mut c_void) -> Option<Vec<Vec<u8>>> {
    // SAFETY: a zeroed Dl_serinfo is a valid out-parameter for its size query.
    let mut sizes: SearchPaths = unsafe { std::mem::zeroed() };
    // SAFETY: RTLD_DI_SERINFOSIZE fills `size` and `count`.
    let rc = unsafe {
        libc::dlinfo(
            object,
            libc::RTLD_DI_SERINFOSIZE,
            (&mut sizes as *mut SearchPaths).cast(),
        )
    };
    if rc != 0 || sizes.size < size_of::<SearchPaths>() {
        return None;
    }
    // u64 words keep the buffer aligned for the pointers inside it.
    let mut buffer = vec![0u64; sizes.size.div_ceil(8)];
    let paths = buffer.as_mut_ptr().cast::<SearchPaths>();
    // SAFETY: the buffer holds `sizes.size` bytes; RTLD_DI_SERINFO wants
    // `size` and `count` filled in beforehand.
    let entries = unsafe {
        (*paths).size = sizes.size;
        (*paths).count = sizes.count;
        if libc::dlinfo(object, libc::RTLD_DI_SERINFO, paths.cast()) != 0 {
            return None;
        }
        let first = std::ptr::addr_of!((*paths).entries).cast::<SearchPathEntry>();
        std::slice::from_raw_parts(first, (*paths).count as usize)
    };
    let directories = entries
        .iter()
        .filter(|entry| !entry.name.is_null())
        // SAFETY: the loader wrote NUL-terminated names into the buffer.
        .map(|entry| unsafe { CStr::from_ptr(entry.name) }.to_bytes().to_vec())
        .filter(|directory| !directory.is_empty())
        .collect();
    Some(directories)
}

/// # Safety
/// C `dlclose`.
#[cfg_attr(target_os = "linux", no_mangle)]
pub unsafe extern "C" fn dlclose(handle: *mut c_void) -> c_int {
    let _guard = RecursionGuard::enter();
    real::ensure_resolved();
    // SAFETY: forwarding dlclose's own argument.
    let rc = unsafe { real::dlclose(handle) };
    if rc == 0 {
        native::loaded_objects_changed();
    }
    rc
}
