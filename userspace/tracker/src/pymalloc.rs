//! `--trace-python-allocators`: wraps the RAW, MEM and OBJ domains with
//! `PyMem_SetAllocator`, recording PYMALLOC_* records.

use std::ffi::{c_int, c_void};
use std::ptr;

use crate::guard::RecursionGuard;
use crate::python::symbol;
use crate::tracking::{self, Allocator};

/// `PyMemAllocatorEx`.
#[repr(C)]
#[derive(Clone, Copy)]
struct MemAllocator {
    ctx: *mut c_void,
    malloc: unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void,
    calloc: unsafe extern "C" fn(*mut c_void, usize, usize) -> *mut c_void,
    realloc: unsafe extern "C" fn(*mut c_void, *mut c_void, usize) -> *mut c_void,
    free: unsafe extern "C" fn(*mut c_void, *mut c_void),
}

/// `PYMEM_DOMAIN_RAW`, `_MEM`, `_OBJ`.
const DOMAINS: [c_int; 3] = [0, 1, 2];

type AllocatorAccess = unsafe extern "C" fn(c_int, *mut MemAllocator);

// The wrapped allocators; each wrapper's ctx points at its domain's entry.
// Written only with the GIL held, before the wrappers are installed.
static mut ORIGINALS: [Option<MemAllocator>; 3] = [None; 3];

fn access(name: &std::ffi::CStr) -> Result<AllocatorAccess, String> {
    let address = symbol(name).ok_or_else(|| format!("no {name:?} in this interpreter"))?;
    // SAFETY: `void PyMem_{Get,Set}Allocator(PyMemAllocatorDomain, PyMemAllocatorEx *)`.
    Ok(unsafe { std::mem::transmute::<usize, AllocatorAccess>(address) })
}

/// Installs the wrappers. Must run with the GIL held.
pub fn install() -> Result<(), String> {
    let get = access(c"PyMem_GetAllocator")?;
    let set = access(c"PyMem_SetAllocator")?;
    for (index, domain) in DOMAINS.into_iter().enumerate() {
        let mut original = MemAllocator {
            ctx: ptr::null_mut(),
            malloc: traced_malloc,
            calloc: traced_calloc,
            realloc: traced_realloc,
            free: traced_free,
        };
        // SAFETY: GIL held; ORIGINALS is not read until the wrapper below is set.
        unsafe {
            get(domain, &mut original);
            let slot = &mut *ptr::addr_of_mut!(ORIGINALS[index]);
            let stored = slot.insert(original);
            let mut wrapper = MemAllocator {
                ctx: (stored as *mut MemAllocator).cast(),
                malloc: traced_malloc,
                calloc: traced_calloc,
                realloc: traced_realloc,
                free: traced_free,
            };
            set(domain, &mut wrapper);
        }
    }
    Ok(())
}

/// Puts the original allocators back. Must run with the GIL held.
pub fn uninstall() {
    let Ok(set) = access(c"PyMem_SetAllocator") else {
        return;
    };
    for (index, domain) in DOMAINS.into_iter().enumerate() {
        // SAFETY: GIL held; the originals were saved by `install`.
        unsafe {
            if let Some(mut original) = (*ptr::addr_of!(ORIGINALS))[index] {
                set(domain, &mut original);
            }
        }
    }
}

/// The wrapped allocator behind a wrapper's ctx.
unsafe fn original(ctx: *mut c_void) -> MemAllocator {
    // SAFETY: ctx points into ORIGINALS (set by `install`).
    unsafe { *ctx.cast::<MemAllocator>() }
}

/// Runs `call` under the recursion guard, then `record` if the capture is active.
fn traced<T>(call: impl FnOnce() -> T, record: impl FnOnce(&T)) -> T {
    match RecursionGuard::enter() {
        Some(_guard) => {
            let result = call();
            if tracking::is_active() {
                record(&result);
            }
            result
        }
        None => call(),
    }
}

unsafe extern "C" fn traced_malloc(ctx: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: Python calls a wrapper with the ctx `install` gave it.
    let inner = unsafe { original(ctx) };
    traced(
        // SAFETY: Python's own call, forwarded to the wrapped allocator.
        || unsafe { (inner.malloc)(inner.ctx, size) },
        |&ptr| {
            if !ptr.is_null() {
                tracking::allocation(ptr as usize, size, Allocator::PymallocMalloc)
            }
        },
    )
}

unsafe extern "C" fn traced_calloc(ctx: *mut c_void, count: usize, size: usize) -> *mut c_void {
    // SAFETY: Python calls a wrapper with the ctx `install` gave it.
    let inner = unsafe { original(ctx) };
    traced(
        // SAFETY: Python's own call, forwarded to the wrapped allocator.
        || unsafe { (inner.calloc)(inner.ctx, count, size) },
        |&ptr| {
            if !ptr.is_null() {
                let bytes = count.wrapping_mul(size);
                tracking::allocation(ptr as usize, bytes, Allocator::PymallocCalloc)
            }
        },
    )
}

unsafe extern "C" fn traced_realloc(
    ctx: *mut c_void,
    old: *mut c_void,
    size: usize,
) -> *mut c_void {
    // SAFETY: Python calls a wrapper with the ctx `install` gave it.
    let inner = unsafe { original(ctx) };
    traced(
        // SAFETY: Python's own call, forwarded to the wrapped allocator.
        || unsafe { (inner.realloc)(inner.ctx, old, size) },
        |&new| {
            if new.is_null() {
                return;
            }
            if !old.is_null() {
                tracking::deallocation(old as usize, Allocator::PymallocFree);
            }
            tracking::allocation(new as usize, size, Allocator::PymallocRealloc);
        },
    )
}

unsafe extern "C" fn traced_free(ctx: *mut c_void, ptr: *mut c_void) {
    // SAFETY: Python calls a wrapper with the ctx `install` gave it.
    let inner = unsafe { original(ctx) };
    let _guard = match RecursionGuard::enter() {
        Some(guard) if !ptr.is_null() => {
            // Recorded before the call, so no other thread can reuse the address first.
            if tracking::is_active() {
                tracking::deallocation(ptr as usize, Allocator::PymallocFree);
            }
            Some(guard)
        }
        other => other,
    };
    // SAFETY: Python's own call, forwarded to the wrapped allocator.
    unsafe { (inner.free)(inner.ctx, ptr) }
}
