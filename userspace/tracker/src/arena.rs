//! A small static arena serving the allocations made while `dlsym` resolves the
//! real allocator functions (glibc's `dlsym` may call `calloc`). Its memory is
//! never returned; `free` of an arena pointer is ignored.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering};

const ARENA_SIZE: usize = 64 * 1024;
const ALIGN: usize = 16;

#[repr(C, align(16))]
struct Arena(UnsafeCell<[u8; ARENA_SIZE]>);

// SAFETY: disjoint slices are handed out through an atomic bump pointer.
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena(UnsafeCell::new([0; ARENA_SIZE]));
static USED: AtomicUsize = AtomicUsize::new(0);

/// Zeroed memory from the arena, or null when it is exhausted.
pub fn allocate(size: usize) -> *mut u8 {
    let rounded = size.max(1).div_ceil(ALIGN) * ALIGN;
    let start = USED.fetch_add(rounded, Ordering::Relaxed);
    if start + rounded > ARENA_SIZE {
        return std::ptr::null_mut();
    }
    // SAFETY: `start..start+rounded` is inside the arena and handed out once.
    unsafe { (ARENA.0.get() as *mut u8).add(start) }
}

/// Whether `ptr` was handed out by the arena.
pub fn contains(ptr: *const u8) -> bool {
    let base = ARENA.0.get() as *const u8 as usize;
    (base..base + ARENA_SIZE).contains(&(ptr as usize))
}

/// How many bytes of an arena block at `ptr` can be copied safely (up to its end).
pub fn bytes_after(ptr: *const u8) -> usize {
    let base = ARENA.0.get() as *const u8 as usize;
    base + ARENA_SIZE - ptr as usize
}
