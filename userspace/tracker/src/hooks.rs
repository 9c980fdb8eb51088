//! The interposed C functions. Each one calls the real function and, while a
//! capture is active and the thread is not already inside the tracker, records
//! it with memray's semantics: failed calls are not recorded, frees are
//! recorded before the real call (so another thread cannot reuse the address
//! first), `calloc(n, size)` is `n*size` bytes, `realloc` is FREE + REALLOC.
//!
//! On Linux they take the C names (`LD_PRELOAD` symbol preemption); on macOS they keep
//! Rust names and `platform::macos`'s interposition table points dyld at them.

use std::ffi::{c_int, c_void};

use libc::{off_t, size_t};

use crate::arena;
use crate::guard::RecursionGuard;
use crate::real;
use crate::tracking::{self, Allocator};

/// Runs `body` under the recursion guard when a capture is active; otherwise,
/// or when the thread is already inside the tracker, runs `fallback`.
#[inline(always)]
pub(crate) fn tracked<T>(body: impl FnOnce() -> T, fallback: impl FnOnce() -> T) -> T {
    if !tracking::is_active() {
        return fallback();
    }
    match RecursionGuard::enter() {
        Some(_guard) => body(),
        None => fallback(),
    }
}

#[inline(always)]
pub(crate) fn record_if_allocated(
    ptr: *mut c_void,
    size: usize,
    allocator: Allocator,
) -> *mut c_void {
    if !ptr.is_null() {
        tracking::allocation(ptr as usize, size, allocator);
    }
    ptr
}

/// # Safety
/// C `malloc`.
#[cfg_attr(target_os = "linux", no_mangle)]
pub unsafe extern "C" fn malloc(size: size_t) -> *mut c_void {
    if !real::ensure_resolved() {
        return arena::allocate(size).cast();
    }
    // SAFETY: the caller's own call, forwarded to the real function.
    let call = || unsafe { real::malloc(size) };
    tracked(
        || record_if_allocated(call(), size, Allocator::Malloc),
        call,
    )
}

/// # Safety
/// C `calloc`.
#[cfg_attr(target_os = "linux", no_mangle)]
pub unsafe extern "C" fn calloc(count: size_t, size: size_t) -> *mut c_void {
    if !real::ensure_resolved() {
        return arena::allocate(count.saturating_mul(size)).cast();
    }
    // SAFETY: the caller's own call, forwarded to the real function.
    let call = || unsafe { real::calloc(count, size) };
    tracked(
        || record_if_allocated(call(), count.wrapping_mul(size), Allocator::Calloc),
        call,
    )
}

/// # Safety
/// C `realloc`.
#[cfg_attr(target_os = "linux", no_mangle)]
pub unsafe extern "C" fn realloc(ptr: *mut c_void, size: size_t) -> *mut c_void {
    if arena::contains(ptr.cast()) || !real::ensure_resolved() {
        // SAFETY: `ptr` is null or an arena block, as realloc_from_arena needs.
        return unsafe { realloc_from_arena(ptr, size) };
    }
    // SAFETY: the caller's own call, forwarded to the real function.
    let call = || unsafe { real::realloc(ptr, size) };
    tracked(|| record_realloc(ptr, call(), size), call)
}

/// Records a reallocation of `old` to `new` (FREE + REALLOC) if it succeeded.
#[inline(always)]
pub(crate) fn record_realloc(old: *mut c_void, new: *mut c_void, size: usize) -> *mut c_void {
    if !new.is_null() {
        if !old.is_null() {
            tracking::deallocation(old as usize, Allocator::Free);
        }
        tracking::allocation(new as usize, size, Allocator::Realloc);
    }
    new
}

/// Moves an arena block (or a new block while resolving) to fresh memory.
///
/// # Safety
/// `ptr` is null or a block handed out by the arena.
unsafe fn realloc_from_arena(ptr: *mut c_void, size: size_t) -> *mut c_void {
    let new = if real::ensure_resolved() {
        // SAFETY: plain malloc.
        unsafe { malloc(size) }
    } else {
        arena::allocate(size).cast()
    };
    if !new.is_null() && !ptr.is_null() {
        let count = size.min(arena::bytes_after(ptr.cast()));
        // SAFETY: both blocks are at least `count` bytes long and distinct.
        unsafe { std::ptr::copy_nonoverlapping(ptr.cast::<u8>(), new.cast::<u8>(), count) };
    }
    new
}

/// # Safety
/// C `free`.
#[cfg_attr(target_os = "linux", no_mangle)]
pub unsafe extern "C" fn free(ptr: *mut c_void) {
    if ptr.is_null() || arena::contains(ptr.cast()) {
        return;
    }
    // SAFETY: the caller's own call, forwarded to the real function.
    let call = || unsafe { real::free(ptr) };
    tracked(
        || {
            tracking::deallocation(ptr as usize, Allocator::Free);
            call()
        },
        call,
    )
}

/// # Safety
/// C23 `free_sized`: recorded as FREE; falls back to `free` where libc lacks it.
#[cfg(target_os = "linux")]
#[no_mangle]
pub unsafe extern "C" fn free_sized(ptr: *mut c_void, size: size_t) {
    if !real::is_available("free_sized") {
        // SAFETY: free_sized(ptr, n) frees what free(ptr) frees.
        return unsafe { free(ptr) };
    }
    // SAFETY: the caller's own call, forwarded to the real function.
    let call = || unsafe { real::free_sized(ptr, size) };
    if ptr.is_null() {
        return call();
    }
    tracked(
        || {
            tracking::deallocation(ptr as usize, Allocator::Free);
            call()
        },
        call,
    )
}

/// # Safety
/// C23 `free_aligned_sized`: recorded as FREE; falls back to `free` where libc lacks it.
#[cfg(target_os = "linux")]
#[no_mangle]
pub unsafe extern "C" fn free_aligned_sized(ptr: *mut c_void, alignment: size_t, size: size_t) {
    if !real::is_available("free_aligned_sized") {
        // SAFETY: free_aligned_sized(ptr, a, n) frees what free(ptr) frees.
        return unsafe { free(ptr) };
    }
    // SAFETY: the caller's own call, forwarded to the real function.
    let call = || unsafe { real::free_aligned_sized(ptr, alignment, size) };
    if ptr.is_null() {
        return call();
    }
    tracked(
        || {
            tracking::deallocation(ptr as usize, Allocator::Free);
            call()
        },
        call,
    )
}

/// # Safety
/// C `posix_memalign`.
#[cfg_attr(target_os = "linux", no_mangle)]
pub unsafe extern "C" fn posix_memalign(
    out: *mut *mut c_void,
    alignment: size_t,
    size: size_t,
) -> c_int {
    // SAFETY: the caller's own call, forwarded to the real function.
    let call = || unsafe { real::posix_memalign(out, alignment, size) };
    // SAFETY: `out` is the caller's, valid for the call's result.
    tracked(|| unsafe { record_posix_memalign(out, call(), size) }, call)
}

/// Records the block `posix_memalign` returned in `out` if `rc` says it succeeded.
///
/// # Safety
/// `out` is the out-parameter of the call that returned `rc`.
#[inline(always)]
pub(crate) unsafe fn record_posix_memalign(out: *mut *mut c_void, rc: c_int, size: usize) -> c_int {
    if rc == 0 {
        // SAFETY: on success `*out` holds the new block.
        tracking::allocation(unsafe { *out } as usize, size, Allocator::PosixMemalign);
    }
    rc
}

macro_rules! aligned_hook {
    ($(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty),*) => $allocator:expr, size = $size:ident) => {
        $(#[$doc])*
        /// # Safety
        /// Same contract as the C function.
        #[cfg_attr(target_os = "linux", no_mangle)]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> *mut c_void {
            // SAFETY: the caller's own call, forwarded to the real function.
            let call = || unsafe { real::$name($($arg),*) };
            tracked(|| record_if_allocated(call(), $size, $allocator), call)
        }
    };
}

aligned_hook!(
    /// C `aligned_alloc`.
    aligned_alloc(alignment: size_t, size: size_t) => Allocator::AlignedAlloc, size = size
);
aligned_hook!(
    /// C `memalign` (glibc).
    #[cfg(target_os = "linux")]
    memalign(alignment: size_t, size: size_t) => Allocator::Memalign, size = size
);
aligned_hook!(
    /// C `valloc`.
    valloc(size: size_t) => Allocator::Valloc, size = size
);
aligned_hook!(
    /// C `pvalloc` (glibc).
    #[cfg(target_os = "linux")]
    pvalloc(size: size_t) => Allocator::Pvalloc, size = size
);

/// # Safety
/// C `mmap`.
#[cfg_attr(target_os = "linux", no_mangle)]
pub unsafe extern "C" fn mmap(
    addr: *mut c_void,
    length: size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    offset: off_t,
) -> *mut c_void {
    // SAFETY: the caller's own call, forwarded to the real function.
    tracked_mapping(length, || unsafe {
        real::mmap(addr, length, prot, flags, fd, offset)
    })
}

/// # Safety
/// C `mmap64` (`Python.h` renames `mmap` to it under large-file settings).
#[cfg(target_os = "linux")]
#[no_mangle]
pub unsafe extern "C" fn mmap64(
    addr: *mut c_void,
    length: size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    offset: off_t,
) -> *mut c_void {
    // SAFETY: the caller's own call, forwarded to the real function.
    tracked_mapping(length, || unsafe {
        real::mmap64(addr, length, prot, flags, fd, offset)
    })
}

/// Maps with `map` (the real `mmap` or `mmap64`) and records a mapping that succeeded.
#[inline(always)]
fn tracked_mapping(length: size_t, map: impl Fn() -> *mut c_void) -> *mut c_void {
    tracked(
        || {
            let ptr = map();
            if ptr != libc::MAP_FAILED {
                tracking::allocation(ptr as usize, length, Allocator::Mmap);
            }
            ptr
        },
        &map,
    )
}

/// # Safety
/// C `munmap`.
#[cfg_attr(target_os = "linux", no_mangle)]
pub unsafe extern "C" fn munmap(addr: *mut c_void, length: size_t) -> c_int {
    // SAFETY: the caller's own call, forwarded to the real function.
    let call = || unsafe { real::munmap(addr, length) };
    tracked(
        || {
            tracking::ranged_deallocation(addr as usize, length, Allocator::Munmap);
            call()
        },
        call,
    )
}

/// # Safety
/// C `prctl`. Declared with five integer arguments: on the Linux ABIs variadic
/// integer arguments travel in the same registers, and `prctl` reads five.
#[cfg(target_os = "linux")]
#[no_mangle]
pub unsafe extern "C" fn prctl(
    option: c_int,
    arg2: libc::c_ulong,
    arg3: libc::c_ulong,
    arg4: libc::c_ulong,
    arg5: libc::c_ulong,
) -> c_int {
    // SAFETY: the caller's own call, forwarded to the real function.
    let rc = unsafe { real::prctl(option, arg2, arg3, arg4, arg5) };
    if rc == 0 && option == libc::PR_SET_NAME && arg2 != 0 {
        tracked(
            || {
                // SAFETY: PR_SET_NAME takes a NUL-terminated string.
                let name = unsafe { std::ffi::CStr::from_ptr(arg2 as *const libc::c_char) };
                tracking::thread_name(name.to_bytes());
            },
            || (),
        );
    }
    rc
}
