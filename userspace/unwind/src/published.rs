//! One published value that readers use without locks or allocation, and that a writer
//! replaces, freeing the old value only once no reader can still hold it.
//!
//! Readers register in the current epoch's counter (one of two, by parity) before loading
//! the pointer. A writer (serialised by a flag) swaps the pointer, moves to the next epoch,
//! then waits until the previous epoch's counter drains: every reader that could have
//! loaded the old pointer registered there. The counters and the flag are plain atomics so
//! that a fork child, whose other threads vanished mid-read or mid-write, can reset them.

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

pub struct Published<T> {
    current: AtomicPtr<T>,
    epoch: AtomicUsize,
    readers: [AtomicUsize; 2],
    writing: AtomicBool,
}

const WAIT: Duration = Duration::from_micros(50);

/// Holds the writer flag; clears it when dropped.
struct Writing<'a>(&'a AtomicBool);

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.0.store(false, SeqCst);
    }
}

impl<T> Published<T> {
    pub const fn empty() -> Self {
        Self {
            current: AtomicPtr::new(std::ptr::null_mut()),
            epoch: AtomicUsize::new(0),
            readers: [AtomicUsize::new(0), AtomicUsize::new(0)],
            writing: AtomicBool::new(false),
        }
    }

    /// Calls `read` with the current value (`None` before the first `publish`). Never
    /// allocates, never blocks.
    pub fn read<R>(&self, read: impl FnOnce(Option<&T>) -> R) -> R {
        let counter = loop {
            let epoch = self.epoch.load(SeqCst);
            let counter = &self.readers[epoch & 1];
            counter.fetch_add(1, SeqCst);
            if self.epoch.load(SeqCst) == epoch {
                break counter;
            }
            counter.fetch_sub(1, SeqCst);
        };
        let value = self.current.load(SeqCst);
        // SAFETY: the pointer came from `Box::into_raw` in `update`, and a writer frees it
        // only after this reader's epoch counter, incremented above, has drained.
        let result = read(unsafe { value.as_ref() });
        counter.fetch_sub(1, SeqCst);
        result
    }

    /// Replaces the value by what `next` makes of the current one; returns once the old
    /// value is freed. Allocates and may wait: never call it from inside `read`.
    pub fn update(&self, next: impl FnOnce(Option<&T>) -> T) {
        while self.writing.swap(true, SeqCst) {
            std::thread::sleep(WAIT);
        }
        let _writing = Writing(&self.writing);
        let next = self.read(next);
        let old = self.current.swap(Box::into_raw(Box::new(next)), SeqCst);
        let epoch = self.epoch.fetch_add(1, SeqCst);
        while self.readers[epoch & 1].load(SeqCst) != 0 {
            std::thread::sleep(WAIT);
        }
        if !old.is_null() {
            // SAFETY: `old` came from `Box::into_raw` in an earlier `update`, and no reader
            // can hold it any more: those registered before the epoch moved have left, and
            // later ones load the new pointer.
            drop(unsafe { Box::from_raw(old) });
        }
    }

    /// In a fork child: the threads that were reading or writing at the fork are gone, so
    /// nobody reads or writes. The value itself is sound (a writer swaps it in one step; an
    /// old value a vanished writer was about to free is leaked).
    pub fn forget_other_threads_after_fork(&self) {
        self.readers[0].store(0, SeqCst);
        self.readers[1].store(0, SeqCst);
        self.writing.store(false, SeqCst);
    }
}

// SAFETY: the value is shared between threads by reference only (readers) and dropped by
// one writer at a time; that needs `T: Send + Sync`.
unsafe impl<T: Send + Sync> Sync for Published<T> {}
