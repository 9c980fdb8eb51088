//! This process's capture: the recorder behind its lock, the settings it
//! was opened with (a forked child opens its own from them), and the
//! background thread sampling the resident set size.

use std::sync::{Condvar, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use memray_recorder::{CaptureSettings, FinishError, Process, Recorder};

use crate::guard::RecursionGuard;
use crate::native;
use crate::process_exit;
use crate::tracking::{self, lock};

pub struct Session {
    pub settings: CaptureSettings,
    /// Whether forked children record into captures of their own.
    pub follow_fork: bool,
    /// Between resident set size samples.
    pub memory_interval: Duration,
    /// The process that opened the file (a vfork child shares this memory).
    pid: u32,
    /// `None` once finished.
    pub recorder: Mutex<Option<Recorder>>,
    /// The RSS sampling thread, while it runs.
    sampler: Mutex<Option<libc::pthread_t>>,
    /// Set (and signalled) to stop the sampler.
    stop_sampling: Mutex<bool>,
    wake_sampler: Condvar,
}

impl Session {
    /// Creates the file and writes its header. Call inside the recursion guard.
    pub fn open(
        settings: CaptureSettings,
        follow_fork: bool,
        memory_interval: Duration,
        main_tid: u64,
    ) -> std::io::Result<Session> {
        let images = native::initial_objects(settings.options.native_traces);
        let recorder = Recorder::create(&settings, Process::Current, main_tid, &images)?;
        Ok(Session {
            settings,
            follow_fork,
            memory_interval,
            pid: std::process::id(),
            recorder: Mutex::new(Some(recorder)),
            sampler: Mutex::new(None),
            stop_sampling: Mutex::new(false),
            wake_sampler: Condvar::new(),
        })
    }

    /// Starts sampling RSS every `memory_interval` into MEMORY_RECORDs. A raw pthread,
    /// so that nothing runs in it before it marks itself as the tracker's own.
    pub fn start_sampling(&'static self) {
        extern "C" fn sample(session: *mut libc::c_void) -> *mut libc::c_void {
            RecursionGuard::disable_tracking_for_this_thread();
            // The program's signals go to the program's threads.
            process_exit::block_signals_in_this_thread();
            // SAFETY: `start_sampling` passes a leaked, 'static session.
            let session = unsafe { &*(session as *const Session) };
            session.sample_until_stopped();
            std::ptr::null_mut()
        }
        let mut thread: libc::pthread_t = 0;
        let argument = self as *const Session as *mut libc::c_void;
        // SAFETY: valid out-pointer, default attributes, a 'static argument.
        let rc = unsafe { libc::pthread_create(&mut thread, std::ptr::null(), sample, argument) };
        if rc == 0 {
            *lock(&self.sampler) = Some(thread);
        }
    }

    fn sample_until_stopped(&self) {
        let mut stopped = lock(&self.stop_sampling);
        while !*stopped {
            stopped = match self
                .wake_sampler
                .wait_timeout(stopped, self.memory_interval)
            {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
            if *stopped {
                break;
            }
            let Some(rss) = Process::Current.resident_set_size() else {
                continue;
            };
            if let Some(recorder) = lock(&self.recorder).as_mut() {
                if let Err(error) = recorder.memory_sample(rss) {
                    tracking::stop_after_failed_write(&error);
                }
            }
        }
    }

    /// Whether the calling process is the one writing this capture.
    pub fn belongs_to_this_process(&self) -> bool {
        // getpid is a plain syscall: safe even in a vfork child.
        self.pid == std::process::id()
    }

    /// Stops sampling, writes the trailer and final header, compresses if asked.
    pub fn finish(&self) -> Result<(), FinishError> {
        if let Some(thread) = lock(&self.sampler).take() {
            *lock(&self.stop_sampling) = true;
            self.wake_sampler.notify_all();
            // SAFETY: a joinable thread created by `start_sampling`.
            unsafe { libc::pthread_join(thread, std::ptr::null_mut()) };
        }
        let recorder = lock(&self.recorder).take();
        recorder.map_or(Ok(()), Recorder::finish)
    }

    /// Finishes the file as `finish` does, for a process about to leave
    /// without unwinding: waits at most `patience` for the capture lock
    /// (leaving the file unfinished if another thread keeps it), and leaves
    /// the sampler alone (it stops writing once the capture is taken).
    pub fn finish_before_exit(&self, patience: Duration) -> Result<(), FinishError> {
        let Some(mut guard) = try_lock_for(&self.recorder, patience) else {
            return Ok(());
        };
        let recorder = guard.take();
        drop(guard);
        recorder.map_or(Ok(()), Recorder::finish)
    }
}

/// Locks `mutex`, retrying for at most `patience`.
fn try_lock_for<T>(mutex: &Mutex<T>, patience: Duration) -> Option<MutexGuard<'_, T>> {
    const RETRY: Duration = Duration::from_millis(1);
    let deadline = Instant::now() + patience;
    loop {
        match mutex.try_lock() {
            Ok(guard) => return Some(guard),
            Err(TryLockError::Poisoned(poisoned)) => return Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) if Instant::now() >= deadline => return None,
            Err(TryLockError::WouldBlock) => std::thread::sleep(RETRY),
        }
    }
}
