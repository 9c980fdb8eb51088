//! macOS: dyld's interposition tuples pointing libSystem's functions at the
//! hooks, the typed-allocation hooks, per-thread words in pthread keys, and
//! the check that dyld inserted the library.

use std::ffi::{c_int, c_void, CStr, OsStr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use libc::size_t;

use super::interpose_table::for_each_interposed;
use crate::arena;
use crate::hooks::{self, record_if_allocated, tracked};
use crate::real;
use crate::tracking::{self, Allocator};

/// One `__DATA,__interpose` entry: dyld binds every other image's calls to
/// `replacee` to `replacement` instead (never this library's own calls).
#[repr(C)]
struct Interpose {
    replacement: *const (),
    replacee: *const (),
}

// SAFETY: two code addresses, never written after load.
unsafe impl Sync for Interpose {}

macro_rules! interposition_tuples {
    ($($symbol:ident => $module:ident::$hook:ident,)*) => {
        /// libSystem's definitions, by name (only their addresses are taken).
        #[allow(clashing_extern_declarations)]
        mod originals {
            extern "C" {
                $(pub fn $symbol();)*
            }
        }

        #[used]
        #[unsafe(link_section = "__DATA,__interpose")]
        static INTERPOSE: [Interpose; [$(stringify!($symbol)),*].len()] = [$(Interpose {
            replacement: crate::$module::$hook as *const (),
            replacee: originals::$symbol as *const (),
        }),*];
    };
}

for_each_interposed!(interposition_tuples);

/// # Safety
/// macOS `malloc_type_malloc`.
pub unsafe extern "C" fn malloc_type_malloc(size: size_t, type_id: u64) -> *mut c_void {
    if !real::ensure_resolved() {
        // SAFETY: the same request, served from the bootstrap arena.
        return unsafe { hooks::malloc(size) };
    }
    // SAFETY: the caller's own call, forwarded to the real function.
    let call = || unsafe { real::malloc_type_malloc(size, type_id) };
    tracked(
        || record_if_allocated(call(), size, Allocator::Malloc),
        call,
    )
}

/// # Safety
/// macOS `malloc_type_calloc`.
pub unsafe extern "C" fn malloc_type_calloc(
    count: size_t,
    size: size_t,
    type_id: u64,
) -> *mut c_void {
    if !real::ensure_resolved() {
        // SAFETY: the same request, served from the bootstrap arena.
        return unsafe { hooks::calloc(count, size) };
    }
    // SAFETY: the caller's own call, forwarded to the real function.
    let call = || unsafe { real::malloc_type_calloc(count, size, type_id) };
    tracked(
        || record_if_allocated(call(), count.wrapping_mul(size), Allocator::Calloc),
        call,
    )
}

/// # Safety
/// macOS `malloc_type_realloc`.
pub unsafe extern "C" fn malloc_type_realloc(
    ptr: *mut c_void,
    size: size_t,
    type_id: u64,
) -> *mut c_void {
    if arena::contains(ptr.cast()) || !real::ensure_resolved() {
        // SAFETY: the same request; `realloc` moves arena blocks out.
        return unsafe { hooks::realloc(ptr, size) };
    }
    // SAFETY: the caller's own call, forwarded to the real function.
    let call = || unsafe { real::malloc_type_realloc(ptr, size, type_id) };
    tracked(|| hooks::record_realloc(ptr, call(), size), call)
}

/// # Safety
/// macOS `malloc_type_free`.
pub unsafe extern "C" fn malloc_type_free(ptr: *mut c_void, type_id: u64) {
    if ptr.is_null() || arena::contains(ptr.cast()) {
        return;
    }
    // SAFETY: the caller's own call, forwarded to the real function.
    let call = || unsafe { real::malloc_type_free(ptr, type_id) };
    tracked(
        || {
            tracking::deallocation(ptr as usize, Allocator::Free);
            call()
        },
        call,
    )
}

/// # Safety
/// macOS `malloc_type_valloc`.
pub unsafe extern "C" fn malloc_type_valloc(size: size_t, type_id: u64) -> *mut c_void {
    // SAFETY: the caller's own call, forwarded to the real function.
    let call = || unsafe { real::malloc_type_valloc(size, type_id) };
    tracked(
        || record_if_allocated(call(), size, Allocator::Valloc),
        call,
    )
}

/// # Safety
/// macOS `malloc_type_aligned_alloc`.
pub unsafe extern "C" fn malloc_type_aligned_alloc(
    alignment: size_t,
    size: size_t,
    type_id: u64,
) -> *mut c_void {
    // SAFETY: the caller's own call, forwarded to the real function.
    let call = || unsafe { real::malloc_type_aligned_alloc(alignment, size, type_id) };
    tracked(
        || record_if_allocated(call(), size, Allocator::AlignedAlloc),
        call,
    )
}

/// # Safety
/// macOS `malloc_type_posix_memalign`.
pub unsafe extern "C" fn malloc_type_posix_memalign(
    out: *mut *mut c_void,
    alignment: size_t,
    size: size_t,
    type_id: u64,
) -> c_int {
    // SAFETY: the caller's own call, forwarded to the real function.
    let call = || unsafe { real::malloc_type_posix_memalign(out, alignment, size, type_id) };
    // SAFETY: `out` is the caller's, valid for the call's result.
    tracked(
        || unsafe { hooks::record_posix_memalign(out, call(), size) },
        call,
    )
}

/// Whether dyld inserted this library at launch, as its initializer found
/// (the bootstrap removes the variable before activating, so that programs
/// the user starts are not tracked).
static INSERTED: AtomicBool = AtomicBool::new(false);

// Runs when dyld loads the library: at launch if it was inserted, else only
// when the bootstrap loads it (after dyld stripped or the bootstrap removed
// the variable).
#[used]
#[unsafe(link_section = "__DATA,__mod_init_func")]
static NOTE_INSERTION: extern "C" fn() = {
    extern "C" fn note_insertion() {
        let variable = std::env::var_os("DYLD_INSERT_LIBRARIES");
        let inserted = this_library()
            .is_some_and(|library| super::inserted::was_inserted(variable.as_deref(), &library));
        INSERTED.store(inserted, Ordering::Release);
    }
    note_insertion
};

/// The one line refusing to track when dyld did not insert this library.
pub fn loader_refusal() -> Option<String> {
    super::inserted::refusal(INSERTED.load(Ordering::Acquire))
}

/// This library's path, as dyld loaded it.
fn this_library() -> Option<std::path::PathBuf> {
    // SAFETY: a plain out-parameter; dladdr only reads dyld's tables.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: as above, for an address inside this library.
    let found = unsafe { libc::dladdr(loader_refusal as *const c_void, &mut info) };
    if found == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dyld's NUL-terminated path of a loaded image.
    let path = unsafe { CStr::from_ptr(info.dli_fname) };
    use std::os::unix::ffi::OsStrExt;
    Some(Path::new(OsStr::from_bytes(path.to_bytes())).to_path_buf())
}
