//! The recursion guard: while a thread is inside the tracker (or inside a real
//! allocator called by a hook), its allocations are not recorded.
//!
//! The flag lives in a pthread key, not in Rust's thread-local storage: when
//! the library is loaded late (`memray.Tracker`), its thread-locals are
//! dynamic TLS, which glibc allocates with `malloc` on a thread's first
//! access — from inside the first hook, before the guard could be set.
//! Reading and setting a key's value never allocates.

use std::ffi::c_void;
use std::sync::atomic::{AtomicU32, Ordering};

/// No key created yet.
const UNSET: u32 = u32::MAX;
static KEY: AtomicU32 = AtomicU32::new(UNSET);
/// A thread's value while it is inside the tracker (null outside).
const INSIDE: *const c_void = std::ptr::dangling();

#[inline(always)]
fn key() -> libc::pthread_key_t {
    match KEY.load(Ordering::Acquire) {
        UNSET => create_key(),
        key => key,
    }
}

#[cold]
fn create_key() -> libc::pthread_key_t {
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: a valid out-pointer and no destructor.
    if unsafe { libc::pthread_key_create(&mut key, None) } != 0 {
        // Out of keys: nothing sensible is left but to stop here.
        std::process::abort();
    }
    match KEY.compare_exchange(UNSET, key, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => key,
        Err(existing) => {
            // SAFETY: our own key, which no thread has used.
            unsafe { libc::pthread_key_delete(key) };
            existing
        }
    }
}

#[inline(always)]
fn is_inside() -> bool {
    // SAFETY: a created key; reading it has no other precondition.
    !unsafe { libc::pthread_getspecific(key()) }.is_null()
}

/// Held while the current thread runs tracker code; dropping it re-enables recording.
pub struct RecursionGuard {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl RecursionGuard {
    /// Enters the tracker, or `None` if this thread is already inside it.
    #[inline]
    pub fn enter() -> Option<RecursionGuard> {
        if is_inside() {
            return None;
        }
        RecursionGuard::set(true);
        Some(RecursionGuard {
            _not_send: std::marker::PhantomData,
        })
    }

    /// Marks the current thread as permanently inside the tracker (our own threads).
    pub fn disable_tracking_for_this_thread() {
        RecursionGuard::set(true);
    }

    /// Sets or clears the flag without a scope (fork handlers span two callbacks).
    pub fn set(inside: bool) {
        let value = if inside { INSIDE } else { std::ptr::null() };
        // SAFETY: a created key; the value is only compared with null.
        unsafe { libc::pthread_setspecific(key(), value) };
    }
}

impl Drop for RecursionGuard {
    #[inline]
    fn drop(&mut self) {
        RecursionGuard::set(false);
    }
}
