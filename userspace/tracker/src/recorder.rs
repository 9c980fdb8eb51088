//! The active capture: one writer behind one lock (as in memray, a single
//! mutex orders all records), and the functions the hooks call.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::Mutex;

pub use memray_format::Allocator;

use crate::codes::CodeRegistry;
use crate::session::Session;
use crate::thread;

/// The capture writer the tracker feeds.
pub type Writer = Box<dyn memray_format::CaptureWriter + Send>;

/// Everything that changes under the lock.
pub struct Capture {
    pub writer: Writer,
    pub codes: CodeRegistry,
    /// Names given to other threads (by Python ident), written when they next record.
    pending_names: Vec<(libc::pthread_t, Vec<u8>)>,
}

impl Capture {
    pub fn new(writer: Writer) -> Capture {
        Capture {
            writer,
            codes: CodeRegistry::default(),
            pending_names: Vec::new(),
        }
    }

    fn write_pending_name(&mut self, tid: u64) -> io::Result<()> {
        if self.pending_names.is_empty() {
            return Ok(());
        }
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        if let Some(index) = self.pending_names.iter().position(|(id, _)| *id == me) {
            let (_, name) = self.pending_names.swap_remove(index);
            self.writer.write_thread_name(tid, &name)?;
        }
        Ok(())
    }
}

static ACTIVE: AtomicBool = AtomicBool::new(false);
static SESSION: AtomicPtr<Session> = AtomicPtr::new(std::ptr::null_mut());

/// Whether allocations are being recorded (the hooks' fast check).
#[inline(always)]
pub fn is_active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// The current session, if any.
pub fn session() -> Option<&'static Session> {
    let session = SESSION.load(Ordering::Acquire);
    // SAFETY: sessions are leaked, never freed, once published.
    (!session.is_null()).then(|| unsafe { &*session })
}

/// Publishes `session` and starts recording. The previous one (if any) is leaked:
/// after fork, another thread may have held its lock.
pub fn start(session: Session) {
    SESSION.store(Box::into_raw(Box::new(session)), Ordering::Release);
    ACTIVE.store(true, Ordering::Release);
}

/// Stops recording; returns the session so its owner can finish it.
pub fn stop() -> Option<&'static Session> {
    ACTIVE.store(false, Ordering::Release);
    session()
}

/// Stops recording without touching the session (a forked child that does not follow).
pub fn abandon() {
    ACTIVE.store(false, Ordering::Release);
    SESSION.store(std::ptr::null_mut(), Ordering::Release);
}

/// Runs `body` with the capture locked, unless it was already finished. A
/// failed write (a full disk) stops recording: the program itself goes on.
fn with_capture(body: impl FnOnce(&mut Capture) -> io::Result<()>) {
    let Some(session) = session() else { return };
    let mut capture = lock(&session.capture);
    if let Some(capture) = capture.as_mut() {
        if body(capture).is_err() {
            ACTIVE.store(false, Ordering::Release);
        }
    }
}

/// A poisoned lock only means a panic elsewhere; the records are still sound.
pub fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A block was allocated: write the thread's stack difference, then the record.
pub fn allocation(address: usize, size: usize, allocator: Allocator) {
    let thread = thread::current();
    thread.stack.walk();
    with_capture(|capture| {
        capture.write_pending_name(thread.tid)?;
        thread
            .stack
            .write_difference(thread.tid, &mut capture.writer, &mut capture.codes)?;
        capture
            .writer
            .write_allocation(thread.tid, address as u64, size as u64, allocator, 0)
    });
}

/// A block is about to be freed (no stack is recorded for deallocations).
pub fn deallocation(address: usize, allocator: Allocator) {
    ranged_deallocation(address, 0, allocator);
}

/// A range is about to be unmapped (or a block freed, with `size` 0).
pub fn ranged_deallocation(address: usize, size: usize, allocator: Allocator) {
    let tid = thread::current_tid();
    with_capture(|capture| {
        capture.write_pending_name(tid)?;
        capture
            .writer
            .write_allocation(tid, address as u64, size as u64, allocator, 0)
    });
}

/// The calling thread was named (prctl or Python's threading).
pub fn thread_name(name: &[u8]) {
    let tid = thread::current_tid();
    with_capture(|capture| capture.writer.write_thread_name(tid, name));
}

/// Another thread (by pthread id) was named; it is written when that thread next records.
pub fn other_thread_name(thread: libc::pthread_t, name: &[u8]) {
    with_capture(|capture| {
        capture.pending_names.retain(|(id, _)| *id != thread);
        capture.pending_names.push((thread, name.to_vec()));
        Ok(())
    });
}

/// A code object died: its address may be reused by a different one.
pub fn code_object_died(address: u64) {
    with_capture(|capture| {
        capture.codes.forget(address);
        crate::stack::invalidate_code_addresses();
        Ok(())
    });
}
