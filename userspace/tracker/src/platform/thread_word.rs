//! Per-thread words that never allocate, on every platform.

use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One word of per-thread storage, 0 in every new thread, in a pthread key:
/// a first access to a `thread_local!` may allocate (dyld sets up the
/// thread's block lazily; so does glibc for a library loaded after start, as
/// `memray.Tracker` loads it), which would re-enter the hooks.
pub struct ThreadWord {
    /// The key plus one; 0 until created.
    key: AtomicUsize,
}

impl ThreadWord {
    pub const fn new() -> ThreadWord {
        ThreadWord {
            key: AtomicUsize::new(0),
        }
    }

    fn key(&self) -> libc::pthread_key_t {
        let known = self.key.load(Ordering::Acquire);
        if known != 0 {
            return (known - 1) as libc::pthread_key_t;
        }
        let mut key: libc::pthread_key_t = 0;
        // SAFETY: a plain out-parameter; creating a key does not allocate.
        unsafe { libc::pthread_key_create(&mut key, None) };
        match self
            .key
            .compare_exchange(0, key as usize + 1, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => key,
            Err(winner) => {
                // SAFETY: our own key, never used.
                unsafe { libc::pthread_key_delete(key) };
                (winner - 1) as libc::pthread_key_t
            }
        }
    }

    #[inline]
    pub fn get(&self) -> usize {
        // SAFETY: a key created by `key`.
        unsafe { libc::pthread_getspecific(self.key()) as usize }
    }

    #[inline]
    pub fn set(&self, value: usize) {
        // SAFETY: a key created by `key`; the slot holds a plain word.
        unsafe { libc::pthread_setspecific(self.key(), value as *const c_void) };
    }
}

/// `thread_word!(static NAME);` declares a [`ThreadWord`].
macro_rules! thread_word {
    (static $name:ident) => {
        static $name: $crate::platform::ThreadWord = $crate::platform::ThreadWord::new();
    };
}
pub(crate) use thread_word;
