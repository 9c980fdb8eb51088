//! The recorder: the events of one process in, one capture out.

use std::io;
use std::path::PathBuf;

use memray_format::{Allocator, CaptureWriter, Image};
use python_frames::{CodeInfo, RawFrame};

use crate::codes::CodeRegistry;
use crate::error::FinishError;
use crate::native::NativeTrie;
use crate::rss::{self, Process};
use crate::session::CaptureSettings;
use crate::stack::RecordedThread;

/// The capture writer a recorder feeds.
pub type Writer = Box<dyn CaptureWriter + Send>;

/// Names code objects the first time a stack holds them: in-process by
/// reading local memory, from outside by reading the traced process.
pub trait CodeNamer {
    /// The code object at `address` (alive now), or `None` if unreadable
    /// (it is then recorded as `<unknown>`).
    fn code(&mut self, address: u64) -> Option<CodeInfo>;
}

/// The stacks of one allocation.
#[derive(Clone, Copy, Default)]
pub struct Stacks<'a> {
    /// The Python frames, innermost first.
    pub python: &'a [RawFrame],
    /// The native return addresses, innermost first (ignored without native traces).
    pub native: &'a [u64],
}

/// One capture being written. Not synchronised: its owner serialises the
/// events (memray orders all records with one lock).
pub struct Recorder {
    writer: Writer,
    process: Process,
    codes: CodeRegistry,
    /// The native stacks written so far; `None` without native traces.
    native: Option<NativeTrie>,
    /// Bumped by every code-object death (see `stack.rs`).
    code_generation: u64,
    /// Names given to threads (by key) that have not recorded since.
    pending_names: Vec<(u64, Vec<u8>)>,
    /// The file to compress at the end, when asked.
    compress: Option<PathBuf>,
    /// The file, when the recorder writes one (for the messages).
    output: Option<PathBuf>,
    /// Set by the first failed write; nothing is written after it.
    failed: bool,
    /// The last resident set size recorded: the last memory record's too,
    /// if the process has none left to read by then (an eBPF capture
    /// finished after the process exited).
    last_rss: u64,
}

impl Recorder {
    /// Creates the capture `settings` describe (a file, or a live session's
    /// stream once its reader came) for `process` (whose
    /// main thread has memray id `main_tid`), with its loaded objects `images`
    /// when the settings ask for native traces, and its first memory record.
    pub fn create(
        settings: &CaptureSettings,
        process: Process,
        main_tid: u64,
        images: &[Image],
    ) -> io::Result<Recorder> {
        let writer = settings.open_writer(process, main_tid)?;
        let native = settings.options.native_traces.then_some(images);
        let mut recorder = Recorder::new(writer, process, native)?;
        if settings.live.is_none() {
            recorder.output = Some(settings.output.clone());
            if settings.options.compress {
                recorder.compress = Some(settings.output.clone());
            }
        }
        Ok(recorder)
    }

    /// Records into `writer` (whose header is written), starting with the
    /// loaded objects when native traces are on (`native`: `Some(images)`,
    /// as the header says), then a memory record.
    pub fn new(
        mut writer: Writer,
        process: Process,
        native: Option<&[Image]>,
    ) -> io::Result<Recorder> {
        if let Some(images) = native {
            writer.write_mappings(images)?;
        }
        let rss = process.resident_set_size().unwrap_or(0);
        writer.write_memory_record(rss::now_ms(), rss)?;
        Ok(Recorder {
            writer,
            process,
            codes: CodeRegistry::default(),
            native: native.map(|_| NativeTrie::default()),
            code_generation: 0,
            pending_names: Vec::new(),
            compress: None,
            output: None,
            failed: false,
            last_rss: rss,
        })
    }

    /// The process the capture describes.
    pub fn process(&self) -> Process {
        self.process
    }

    /// Runs `write` unless a write failed before; a failure stops all
    /// later writes (the records after a gap would be misread).
    #[inline]
    fn guarded(&mut self, write: impl FnOnce(&mut Recorder) -> io::Result<()>) -> io::Result<()> {
        if self.failed {
            return Ok(());
        }
        let result = write(self);
        self.failed = result.is_err();
        result
    }

    /// Whether native stacks are recorded.
    pub fn native_traces(&self) -> bool {
        self.native.is_some()
    }

    /// `thread` allocated `size` bytes at `address` with `stacks`.
    #[inline]
    pub fn allocation(
        &mut self,
        thread: &mut RecordedThread,
        stacks: Stacks<'_>,
        namer: &mut impl CodeNamer,
        address: u64,
        size: u64,
        allocator: Allocator,
    ) -> io::Result<()> {
        self.guarded(|this| {
            this.write_pending_name(thread)?;
            thread.write_difference(
                stacks.python,
                this.native.is_some(),
                this.code_generation,
                &mut this.writer,
                &mut this.codes,
                namer,
            )?;
            let native_frame_id = match &mut this.native {
                Some(trie) => {
                    trie.leaf(stacks.native, &mut thread.native_path, &mut this.writer)?
                }
                None => 0,
            };
            this.writer
                .write_allocation(thread.tid(), address, size, allocator, native_frame_id)
        })
    }

    /// The process loaded or unloaded an object: `images` are its loaded
    /// objects now (a new segment generation). Nothing without native traces.
    pub fn loaded_objects_changed(&mut self, images: &[Image]) -> io::Result<()> {
        if self.native.is_none() {
            return Ok(());
        }
        self.guarded(|this| this.writer.write_mappings(images))
    }

    /// `thread` freed the block at `address`, or unmapped `size` bytes from
    /// it (no stack is recorded for deallocations).
    #[inline]
    pub fn deallocation(
        &mut self,
        thread: &RecordedThread,
        address: u64,
        size: u64,
        allocator: Allocator,
    ) -> io::Result<()> {
        self.guarded(|this| {
            this.write_pending_name(thread)?;
            this.writer
                .write_allocation(thread.tid(), address, size, allocator, 0)
        })
    }

    /// `thread` named itself.
    pub fn thread_name(&mut self, thread: &RecordedThread, name: &[u8]) -> io::Result<()> {
        self.guarded(|this| this.writer.write_thread_name(thread.tid(), name))
    }

    /// The thread with `key` was named by another thread; the name is
    /// written when that thread next records.
    pub fn name_other_thread(&mut self, key: u64, name: &[u8]) {
        self.pending_names.retain(|(k, _)| *k != key);
        self.pending_names.push((key, name.to_vec()));
    }

    fn write_pending_name(&mut self, thread: &RecordedThread) -> io::Result<()> {
        if self.pending_names.is_empty() {
            return Ok(());
        }
        if let Some(index) = self
            .pending_names
            .iter()
            .position(|(k, _)| *k == thread.key())
        {
            let (_, name) = self.pending_names.swap_remove(index);
            self.writer.write_thread_name(thread.tid(), &name)?;
        }
        Ok(())
    }

    /// The code object at `address` died: its address may be reused by another.
    pub fn code_object_died(&mut self, address: u64) {
        self.codes.forget(address);
        self.code_generation += 1;
    }

    /// A resident-set-size sample (taken by the caller, on memray's
    /// [`MEMORY_INTERVAL`](crate::rss::MEMORY_INTERVAL), outside its lock);
    /// a live session's reader gets what was written so far (at most 100 ms late).
    pub fn memory_sample(&mut self, rss: u64) -> io::Result<()> {
        self.last_rss = rss;
        self.guarded(|this| {
            this.writer.write_memory_record(rss::now_ms(), rss)?;
            this.writer.flush()
        })
    }

    /// `count` records never reached the recorder (the eBPF probes lost
    /// them): the capture notes it after its trailer.
    pub fn note_lost_records(&mut self, count: u64) {
        self.writer.note_lost_records(count);
    }

    /// Ends the capture: a last memory record, the trailer and the final
    /// header, then compression if asked. After a failed write nothing more
    /// is written, so the file reads as cut off where writing stopped.
    pub fn finish(mut self) -> Result<(), FinishError> {
        let ended = self.guarded(|this| {
            let rss = this.process.resident_set_size().unwrap_or(this.last_rss);
            this.writer.write_memory_record(rss::now_ms(), rss)?;
            this.writer.finish(rss::now_ms())
        });
        let failed = self.failed;
        drop(self.writer);
        if let Some(path) = self.compress {
            memray_format::compress_file(&path)
                .map_err(|source| FinishError::Compress { path, source })?;
        }
        ended.map_err(FinishError::Write)?;
        match (failed, self.output) {
            (true, Some(path)) => Err(FinishError::CutOff { path }),
            _ => Ok(()),
        }
    }
}
