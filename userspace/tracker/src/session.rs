//! One capture file being written: its writer, the settings it was opened
//! with, and the background thread sampling the resident set size.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use memray_format::{BufferedFileSink, FileFormat, Header, MmapFileSink, StreamingWriter};

use crate::guard::RecursionGuard;
use crate::recorder::{lock, Capture, Writer};
use crate::{process_exit, rss};

/// memray's default `memory_interval_ms`.
const MEMORY_INTERVAL: Duration = Duration::from_millis(10);

/// How the capture is written (from `memray run`'s flags).
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub aggregate: bool,
    pub follow_fork: bool,
    pub trace_python_allocators: bool,
    pub compress: bool,
    pub buffered: bool,
    pub overwrite: bool,
}

/// Everything needed to open a capture file (again, in a forked child).
#[derive(Debug, Clone)]
pub struct Settings {
    pub output: PathBuf,
    pub options: Options,
    /// Filled by the bootstrap; pid, main tid and start time are set at open.
    pub header: Header,
}

pub struct Session {
    pub settings: Settings,
    /// The process that opened the file (a vfork child shares this memory).
    pid: u32,
    pub capture: Mutex<Option<Capture>>,
    /// The RSS sampling thread, while it runs.
    sampler: Mutex<Option<libc::pthread_t>>,
    /// Set (and signalled) to stop the sampler.
    stop_sampling: Mutex<bool>,
    wake_sampler: Condvar,
}

impl Session {
    /// Creates the file and writes its header. Call inside the recursion guard.
    pub fn open(settings: Settings, main_tid: u64) -> io::Result<Session> {
        let mut header = settings.header.clone();
        header.pid = std::process::id() as i32;
        header.main_tid = main_tid;
        header.stats.start_time_ms = rss::now_ms() as i64;
        header.trace_python_allocators = settings.options.trace_python_allocators;
        header.file_format = if settings.options.aggregate {
            FileFormat::AggregatedAllocations
        } else {
            FileFormat::AllAllocations
        };
        let mut writer = open_writer(&settings.output, settings.options, header)?;
        writer.write_memory_record(rss::now_ms(), rss::resident_set_size())?;
        Ok(Session {
            settings,
            pid: std::process::id(),
            capture: Mutex::new(Some(Capture::new(writer))),
            sampler: Mutex::new(None),
            stop_sampling: Mutex::new(false),
            wake_sampler: Condvar::new(),
        })
    }

    /// Starts sampling RSS every 10 ms into MEMORY_RECORDs. A raw pthread,
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
            stopped = match self.wake_sampler.wait_timeout(stopped, MEMORY_INTERVAL) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
            if *stopped {
                break;
            }
            let rss = rss::resident_set_size();
            if let Some(capture) = lock(&self.capture).as_mut() {
                let _ = capture.writer.write_memory_record(rss::now_ms(), rss);
            }
        }
    }

    /// Whether the calling process is the one writing this capture.
    pub fn belongs_to_this_process(&self) -> bool {
        // getpid is a plain syscall: safe even in a vfork child.
        self.pid == std::process::id()
    }

    /// Stops sampling, writes the trailer and final header, compresses if asked.
    pub fn finish(&self) -> io::Result<()> {
        if let Some(thread) = lock(&self.sampler).take() {
            *lock(&self.stop_sampling) = true;
            self.wake_sampler.notify_all();
            // SAFETY: a joinable thread created by `start_sampling`.
            unsafe { libc::pthread_join(thread, std::ptr::null_mut()) };
        }
        let capture = lock(&self.capture).take();
        self.complete(capture)
    }

    /// Finishes the file as `finish` does, for a process about to leave
    /// without unwinding: waits at most `patience` for the capture lock
    /// (leaving the file unfinished if another thread keeps it), and leaves
    /// the sampler alone (it stops writing once the capture is taken).
    pub fn finish_before_exit(&self, patience: Duration) -> io::Result<()> {
        let Some(mut guard) = try_lock_for(&self.capture, patience) else {
            return Ok(());
        };
        let capture = guard.take();
        drop(guard);
        self.complete(capture)
    }

    /// Writes the last memory record, the trailer and the final header, then compresses if asked.
    fn complete(&self, capture: Option<Capture>) -> io::Result<()> {
        let Some(mut capture) = capture else {
            return Ok(());
        };
        capture
            .writer
            .write_memory_record(rss::now_ms(), rss::resident_set_size())?;
        capture.writer.finish(rss::now_ms())?;
        drop(capture);
        if self.settings.options.compress {
            memray_format::compress_file(&self.settings.output)?;
        }
        Ok(())
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

fn open_writer(path: &Path, options: Options, header: Header) -> io::Result<Writer> {
    if options.aggregate {
        let sink = MmapFileSink::create(path, options.overwrite)?;
        return Ok(Box::new(memray_format::AggregatingWriter::new(
            sink, header,
        )));
    }
    if options.buffered {
        let sink = BufferedFileSink::create(path, options.overwrite)?;
        Ok(Box::new(StreamingWriter::new(sink, header)?))
    } else {
        let sink = MmapFileSink::create(path, options.overwrite)?;
        Ok(Box::new(StreamingWriter::new(sink, header)?))
    }
}
