//! The active capture of this process: one recorder behind one lock (as in
//! memray, a single mutex orders all records), and the functions the hooks
//! call. A write that fails (a full disk) is said on stderr and stops
//! tracking; the program itself goes on.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::Mutex;

use memray_recorder::{describe_os_error, Image, Recorder, Stacks};
use memray_unwind::UnwindStart;

pub use memray_recorder::Allocator;

use crate::python::LocalCodes;
use crate::session::Session;
use crate::thread;

static ACTIVE: AtomicBool = AtomicBool::new(false);
/// Counts the captures this process started (several Trackers in a row).
static SESSIONS: AtomicU64 = AtomicU64::new(0);
static SESSION: AtomicPtr<Session> = AtomicPtr::new(std::ptr::null_mut());

/// Whether allocations are being recorded (the hooks' fast check).
#[inline(always)]
pub fn is_active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// Which capture of this process is (or was last) recording.
pub fn session_number() -> u64 {
    SESSIONS.load(Ordering::Acquire)
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
    SESSIONS.fetch_add(1, Ordering::AcqRel);
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

/// Runs `body` with the recorder locked, unless the capture was already finished.
fn with_recorder(body: impl FnOnce(&mut Recorder) -> io::Result<()>) {
    let Some(session) = session() else { return };
    let mut recorder = lock(&session.recorder);
    if let Some(recorder) = recorder.as_mut() {
        if let Err(error) = body(recorder) {
            stop_after_failed_write(&error);
        }
    }
}

/// memray's words for a failed write, said once: recording stops here.
pub fn stop_after_failed_write(error: &io::Error) {
    if ACTIVE.swap(false, Ordering::AcqRel) {
        eprintln!(
            "Memray ERROR: {}\nFailed to write output, deactivating tracking",
            describe_os_error(error)
        );
    }
}

/// A poisoned lock only means a panic elsewhere; the records are still sound.
pub fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A block was allocated: walk the thread's stacks (outside the lock), then record.
/// Inlined into the hook, so that a native unwind starts there, not several tracker
/// frames deeper.
#[inline(always)]
pub fn allocation(address: usize, size: usize, allocator: Allocator) {
    record_allocation(memray_unwind::unwind_start!(), address, size, allocator);
}

fn record_allocation(start: UnwindStart, address: usize, size: usize, allocator: Allocator) {
    thread::with_current(|thread| {
        thread.walk();
        let native = thread.native.unwind(start);
        with_recorder(|recorder| {
            recorder.allocation(
                &mut thread.recorded,
                Stacks {
                    python: thread.walked.innermost_first(),
                    native,
                },
                &mut LocalCodes,
                address as u64,
                size as u64,
                allocator,
            )
        });
    });
}

/// A block is about to be freed.
pub fn deallocation(address: usize, allocator: Allocator) {
    ranged_deallocation(address, 0, allocator);
}

/// A range is about to be unmapped (or a block freed, with `size` 0).
pub fn ranged_deallocation(address: usize, size: usize, allocator: Allocator) {
    thread::with_current(|thread| {
        with_recorder(|recorder| {
            recorder.deallocation(&thread.recorded, address as u64, size as u64, allocator)
        });
    });
}

/// The calling thread was named (prctl or Python's threading).
pub fn thread_name(name: &[u8]) {
    thread::with_current(|thread| {
        with_recorder(|recorder| recorder.thread_name(&thread.recorded, name));
    });
}

/// Another thread (by pthread id, as Python's `threading.get_ident()` gives it) was
/// named; it is written when that thread next records.
pub fn other_thread_name(thread: libc::c_ulong, name: &[u8]) {
    with_recorder(|recorder| {
        recorder.name_other_thread(thread, name);
        Ok(())
    });
}

/// The process's loaded objects changed (`--native`).
pub fn loaded_objects_changed(images: &[Image]) {
    with_recorder(|recorder| recorder.loaded_objects_changed(images));
}

/// A code object died: its address may be reused by a different one.
pub fn code_object_died(address: u64) {
    with_recorder(|recorder| {
        recorder.code_object_died(address);
        Ok(())
    });
}
