//! One published value that readers use without locks or allocation, and that a writer
//! replaces, freeing the old value only once no reader can still hold it.
//!
//! Each reading thread registers once (outside any hook: it allocates) and gets its own
//! slot, on its own cache line: a sequence number it makes odd while it reads. Readers
//! therefore never write a cache line another thread writes. A writer (serialised by a
//! flag, which also guards the list of slots) swaps the pointer, then waits, slot by slot,
//! until any read that was under way has ended; later reads load the new pointer. The
//! slots and the flag are plain atomics so that a fork child, whose other threads vanished
//! mid-read or mid-write, can reset them.

use std::cell::UnsafeCell;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{Release, SeqCst};
use std::sync::atomic::{AtomicPtr, AtomicUsize};
use std::sync::Arc;
use std::time::Duration;

pub struct Published<T> {
    current: AtomicPtr<T>,
    /// Every registered reader's slot; only touched while holding `writing`.
    readers: UnsafeCell<Vec<Arc<ReaderSlot>>>,
    writing: AtomicBool,
}

/// One reader's sequence number: odd while it reads. Aligned so that no two readers (and
/// nothing else) share a cache line.
#[repr(align(128))]
#[derive(Default)]
struct ReaderSlot {
    sequence: AtomicUsize,
}

/// A thread's registration with one [`Published`]; unregisters when dropped.
pub struct Reader<T: 'static> {
    published: &'static Published<T>,
    slot: Arc<ReaderSlot>,
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
            readers: UnsafeCell::new(Vec::new()),
            writing: AtomicBool::new(false),
        }
    }

    fn start_writing(&self) -> Writing<'_> {
        while self.writing.swap(true, SeqCst) {
            std::thread::sleep(WAIT);
        }
        Writing(&self.writing)
    }

    /// Registers the calling thread as a reader. Allocates and may wait for a writer:
    /// never call it from inside `read`.
    pub fn register(&'static self) -> Reader<T> {
        let slot = Arc::new(ReaderSlot::default());
        let _writing = self.start_writing();
        // SAFETY: the list is only touched while holding the writer flag, held here.
        unsafe { (*self.readers.get()).push(slot.clone()) };
        Reader {
            published: self,
            slot,
        }
    }

    /// Replaces the value by what `next` makes of the current one; returns once the old
    /// value is freed. Allocates and may wait: never call it from inside `read`.
    pub fn update(&self, next: impl FnOnce(Option<&T>) -> T) {
        let _writing = self.start_writing();
        // SAFETY: only a writer frees the value, and this thread is the only writer now.
        let next = next(unsafe { self.current.load(SeqCst).as_ref() });
        let old = self.current.swap(Box::into_raw(Box::new(next)), SeqCst);
        // SAFETY: the list is only touched while holding the writer flag, held here.
        for slot in unsafe { &*self.readers.get() } {
            let sequence = slot.sequence.load(SeqCst);
            if sequence % 2 == 1 {
                while slot.sequence.load(SeqCst) == sequence {
                    std::thread::sleep(WAIT);
                }
            }
        }
        if !old.is_null() {
            // SAFETY: `old` came from `Box::into_raw` in an earlier `update`, and no reader
            // can hold it any more: every read under way at the swap has ended, and later
            // ones load the new pointer.
            drop(unsafe { Box::from_raw(old) });
        }
    }

    /// In a fork child: the threads that were reading or writing at the fork are gone, so
    /// nobody reads or writes. The value itself is sound (a writer swaps it in one step; an
    /// old value a vanished writer was about to free is leaked).
    pub fn forget_other_threads_after_fork(&self) {
        self.writing.store(false, SeqCst);
        // SAFETY: this thread is the only one left, and it is not writing.
        for slot in unsafe { &*self.readers.get() } {
            let sequence = slot.sequence.load(SeqCst);
            slot.sequence.store(sequence & !1, SeqCst);
        }
    }
}

impl<T> Reader<T> {
    /// Calls `read` with the current value (`None` before the first `update`). Never
    /// allocates, never blocks, never writes memory another thread writes.
    #[inline]
    pub fn read<R>(&self, read: impl FnOnce(Option<&T>) -> R) -> R {
        let sequence = self.slot.sequence.load(SeqCst);
        // Odd before the pointer is loaded: a writer that swaps after this store sees it.
        self.slot.sequence.store(sequence | 1, SeqCst);
        let value = self.published.current.load(SeqCst);
        // SAFETY: the pointer came from `Box::into_raw` in `update`, and a writer frees it
        // only after this slot's sequence, odd since before the load, has moved on.
        let result = read(unsafe { value.as_ref() });
        // Release: everything read of the value happens before a writer sees the read end.
        self.slot.sequence.store((sequence | 1) + 1, Release);
        result
    }
}

impl<T> Drop for Reader<T> {
    fn drop(&mut self) {
        let _writing = self.published.start_writing();
        // SAFETY: the list is only touched while holding the writer flag, held here.
        let readers = unsafe { &mut *self.published.readers.get() };
        readers.retain(|slot| !Arc::ptr_eq(slot, &self.slot));
    }
}

// SAFETY: the value is shared between threads by reference only (readers) and dropped by
// one writer at a time; that needs `T: Send + Sync`. The list of slots is only touched
// under the writer flag.
unsafe impl<T: Send + Sync> Sync for Published<T> {}
