//! The next definitions (normally libc's) of every function the tracker
//! interposes, found with `dlsym(RTLD_NEXT, …)` once, at load time or at the
//! first call, whichever comes first.

use std::ffi::{c_int, c_void, CStr};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use libc::{c_char, off_t, size_t};

const UNRESOLVED: u8 = 0;
const RESOLVING: u8 = 1;
const RESOLVED: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(UNRESOLVED);

macro_rules! real_functions {
    ($($(#[$only:meta])* $name:ident : fn($($arg:ident : $ty:ty),*) -> $ret:ty;)*) => {
        struct Slots { $($(#[$only])* $name: AtomicUsize,)* }

        static SLOTS: Slots = Slots { $($(#[$only])* $name: AtomicUsize::new(0),)* };

        fn resolve_all() {
            $(
                $(#[$only])*
                {
                    let symbol = concat!(stringify!($name), "\0");
                    let symbol = CStr::from_bytes_with_nul(symbol.as_bytes()).expect("NUL-terminated");
                    // SAFETY: dlsym with a valid NUL-terminated name.
                    let address = unsafe { libc::dlsym(libc::RTLD_NEXT, symbol.as_ptr()) };
                    SLOTS.$name.store(address as usize, Ordering::Release);
                }
            )*
        }

        $(
            /// Calls the real function. It must exist (`is_available` says whether it does).
            ///
            /// # Safety
            /// Same contract as the C function.
            $(#[$only])*
            #[inline]
            pub unsafe fn $name($($arg: $ty),*) -> $ret {
                type Function = unsafe extern "C" fn($($ty),*) -> $ret;
                let address = SLOTS.$name.load(Ordering::Acquire);
                // SAFETY: the slot holds the address of a function with this signature.
                let function = unsafe { std::mem::transmute::<usize, Function>(address) };
                // SAFETY: the caller keeps the C function's contract.
                unsafe { function($($arg),*) }
            }
        )*

        /// Whether the next library defines the function (e.g. `free_sized` is recent).
        #[cfg(target_os = "linux")]
        pub fn is_available(name: &str) -> bool {
            match name {
                $($(#[$only])* stringify!($name) => SLOTS.$name.load(Ordering::Acquire) != 0,)*
                _ => false,
            }
        }
    };
}

real_functions! {
    malloc: fn(size: size_t) -> *mut c_void;
    free: fn(ptr: *mut c_void) -> ();
    calloc: fn(count: size_t, size: size_t) -> *mut c_void;
    realloc: fn(ptr: *mut c_void, size: size_t) -> *mut c_void;
    posix_memalign: fn(out: *mut *mut c_void, alignment: size_t, size: size_t) -> c_int;
    aligned_alloc: fn(alignment: size_t, size: size_t) -> *mut c_void;
    #[cfg(target_os = "linux")]
    memalign: fn(alignment: size_t, size: size_t) -> *mut c_void;
    valloc: fn(size: size_t) -> *mut c_void;
    #[cfg(target_os = "linux")]
    pvalloc: fn(size: size_t) -> *mut c_void;
    mmap: fn(addr: *mut c_void, length: size_t, prot: c_int, flags: c_int, fd: c_int, offset: off_t) -> *mut c_void;
    #[cfg(target_os = "linux")]
    mmap64: fn(addr: *mut c_void, length: size_t, prot: c_int, flags: c_int, fd: c_int, offset: off_t) -> *mut c_void;
    munmap: fn(addr: *mut c_void, length: size_t) -> c_int;
    #[cfg(target_os = "linux")]
    free_sized: fn(ptr: *mut c_void, size: size_t) -> ();
    #[cfg(target_os = "linux")]
    free_aligned_sized: fn(ptr: *mut c_void, alignment: size_t, size: size_t) -> ();
    dlopen: fn(filename: *const c_char, flags: c_int) -> *mut c_void;
    dlclose: fn(handle: *mut c_void) -> c_int;
    #[cfg(target_os = "linux")]
    prctl: fn(option: c_int, arg2: libc::c_ulong, arg3: libc::c_ulong, arg4: libc::c_ulong, arg5: libc::c_ulong) -> c_int;
    _exit: fn(status: c_int) -> !;
    // macOS 14+'s typed allocation entry points (the type id is a `malloc_type_id_t`).
    #[cfg(target_os = "macos")]
    malloc_type_malloc: fn(size: size_t, type_id: u64) -> *mut c_void;
    #[cfg(target_os = "macos")]
    malloc_type_calloc: fn(count: size_t, size: size_t, type_id: u64) -> *mut c_void;
    #[cfg(target_os = "macos")]
    malloc_type_realloc: fn(ptr: *mut c_void, size: size_t, type_id: u64) -> *mut c_void;
    #[cfg(target_os = "macos")]
    malloc_type_free: fn(ptr: *mut c_void, type_id: u64) -> ();
    #[cfg(target_os = "macos")]
    malloc_type_valloc: fn(size: size_t, type_id: u64) -> *mut c_void;
    #[cfg(target_os = "macos")]
    malloc_type_aligned_alloc: fn(alignment: size_t, size: size_t, type_id: u64) -> *mut c_void;
    #[cfg(target_os = "macos")]
    malloc_type_posix_memalign: fn(out: *mut *mut c_void, alignment: size_t, size: size_t, type_id: u64) -> c_int;
}

/// Resolves every real function unless done. Returns false while a resolution
/// is under way on some thread (the caller must then serve from the arena).
#[inline]
pub fn ensure_resolved() -> bool {
    match STATE.load(Ordering::Acquire) {
        RESOLVED => true,
        _ => resolve_slow(),
    }
}

#[cold]
fn resolve_slow() -> bool {
    if STATE
        .compare_exchange(UNRESOLVED, RESOLVING, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        resolve_all();
        STATE.store(RESOLVED, Ordering::Release);
        return true;
    }
    STATE.load(Ordering::Acquire) == RESOLVED
}

// Resolve when the library is loaded, before the program starts threads.
#[used]
#[cfg_attr(target_os = "linux", unsafe(link_section = ".init_array"))]
#[cfg_attr(target_os = "macos", unsafe(link_section = "__DATA,__mod_init_func"))]
static RESOLVE_AT_LOAD: extern "C" fn() = {
    extern "C" fn resolve_at_load() {
        ensure_resolved();
    }
    resolve_at_load
};
