//! The probes' records of many processes turned into memray captures: one
//! [`Recorder`] per tgid, threads numbered in order of first use and named
//! as memray names them ([`ThreadNames`]), Python stacks from the probes'
//! stack table named through the process's own memory.
//!
//! A process is recorded from the moment its interpreter is registered for
//! the stack walk (as in-process memray starts once its tracker is active):
//! records that arrive before have no stack and are left out.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::time::Instant;

use memray_ebpf_common::python_stack::STATUS_TRUNCATED;
use memray_recorder::{
    Allocator, CaptureSettings, FinishError, Process, RawFrame, RecordedThread, Recorder, Stacks,
    TRUNCATION_MARKER,
};
use python_frames::PythonProcess;

use crate::native::{NativeCopies, NativeStacks};
use crate::python::{CodeSnapshots, RemoteCodes, StackTable};
use crate::thread_names::ThreadNames;
use crate::Event;

/// memray's thread id of a process's main thread (the first to record).
const MAIN_THREAD: u64 = 1;

/// The captures being written.
#[derive(Default)]
pub struct Consumer {
    captures: HashMap<u32, ProcessCapture>,
    /// Batches recorded so far.
    batches: u64,
}

struct ProcessCapture {
    recorder: Recorder,
    output: PathBuf,
    codes: RemoteCodes,
    /// By kernel tid.
    threads: HashMap<u32, RecordedThread>,
    names: ThreadNames,
    /// Reused for each event's stack.
    frames: Vec<RawFrame>,
    /// `--native`: the unwinder over the probes' copies, and each event's
    /// return addresses.
    native: Option<NativeStacks>,
    addresses: Vec<u64>,
    /// Records the probes lost (noted in the file).
    lost_records: u64,
}

/// How one capture ended.
pub struct Finished {
    pub pid: u32,
    pub output: PathBuf,
    pub result: Result<(), FinishError>,
    /// Records the probes lost because the ring buffer was full.
    pub lost_records: u64,
    /// `--native`: allocations recorded without their native stack (its
    /// copy found the ring buffer full).
    pub native_stacks_missing: u64,
    /// Code objects freed before their records were taken in, whose frames
    /// are `<unknown>` ([`RemoteCodes::unnamed`]).
    pub unnamed_code_objects: usize,
}

impl Consumer {
    pub fn new() -> Consumer {
        Consumer::default()
    }

    /// Starts the capture of `process` (registered for the stack walk):
    /// the header gets its interpreter's version, pid and main thread.
    pub fn add(&mut self, process: &PythonProcess, settings: &CaptureSettings) -> io::Result<()> {
        let pid = process.pid() as u32;
        let layout = process.layout();
        let mut settings = settings.clone();
        settings.header.python_version = (layout.major << 24) | (layout.minor << 16);
        // No bootstrap frame runs in the process: nothing to skip.
        settings.header.skipped_frames_on_main_tid = 0;
        let (native, images) = match settings.options.native_traces {
            true => {
                let (native, images) = NativeStacks::new(pid);
                (Some(native), images)
            }
            false => (None, Vec::new()),
        };
        let recorder = Recorder::create(&settings, Process::Other(pid), MAIN_THREAD, &images)?;
        let mut capture = ProcessCapture {
            recorder,
            output: settings.output.clone(),
            codes: RemoteCodes::new(*process.memory(), *layout),
            threads: HashMap::new(),
            names: ThreadNames::new(process),
            frames: Vec::new(),
            native,
            addresses: Vec::new(),
            lost_records: 0,
        };
        // The main thread is memray's thread 1, whichever thread records first.
        let ProcessCapture {
            threads,
            names,
            recorder,
            ..
        } = &mut capture;
        thread(threads, names, recorder, pid, Instant::now())?;
        self.captures.insert(pid, capture);
        Ok(())
    }

    /// Whether `pid`'s capture has started.
    pub fn records(&self, pid: u32) -> bool {
        self.captures.contains_key(&pid)
    }

    /// Records a batch of events; `stacks` holds every stack they name,
    /// `snapshots` the code objects freed lately, `copies` every native
    /// stack copy.
    pub fn record(
        &mut self,
        events: &[Event],
        stacks: &StackTable,
        snapshots: &mut CodeSnapshots,
        copies: &mut NativeCopies,
    ) -> io::Result<()> {
        self.batches += 1;
        // Every record of the batch was made before this.
        let taken_at = Instant::now();
        for event in events {
            if let Some(capture) = self.captures.get_mut(&event.tgid) {
                capture.record(event, stacks, snapshots, copies, (self.batches, taken_at))?;
            }
        }
        Ok(())
    }

    /// What each memory tick records of every process: a resident-set-size
    /// sample, and the threads renamed since the last look.
    pub fn sample(&mut self) -> io::Result<()> {
        for capture in self.captures.values_mut() {
            if let Some(rss) = capture.recorder.process().resident_set_size() {
                capture.recorder.memory_sample(rss)?;
            }
            for (tid, name) in capture.names.renamed() {
                if let Some(thread) = capture.threads.get(&tid) {
                    capture.recorder.thread_name(thread, &name)?;
                }
            }
        }
        Ok(())
    }

    /// The processes being recorded.
    pub fn pids(&self) -> impl Iterator<Item = u32> + '_ {
        self.captures.keys().copied()
    }

    /// The capture of `pid` misses `count` records (noted in the file).
    pub fn note_lost_records(&mut self, pid: u32, count: u64) {
        if let Some(capture) = self.captures.get_mut(&pid) {
            capture.recorder.note_lost_records(count);
            capture.lost_records = count;
        }
    }

    /// Ends the capture of `pid` (it exited), if it has one.
    pub fn finish_one(&mut self, pid: u32) -> Option<Finished> {
        let capture = self.captures.remove(&pid)?;
        Some(capture.finish(pid))
    }

    /// Ends every capture.
    pub fn finish(self) -> Vec<Finished> {
        self.captures
            .into_iter()
            .map(|(pid, capture)| capture.finish(pid))
            .collect()
    }
}

impl ProcessCapture {
    fn finish(self, pid: u32) -> Finished {
        Finished {
            pid,
            output: self.output,
            lost_records: self.lost_records,
            native_stacks_missing: self.native.as_ref().map_or(0, |native| native.missing),
            unnamed_code_objects: self.codes.unnamed(),
            result: self.recorder.finish(),
        }
    }

    fn record(
        &mut self,
        event: &Event,
        stacks: &StackTable,
        snapshots: &mut CodeSnapshots,
        copies: &mut NativeCopies,
        (batch, taken_at): (u64, Instant),
    ) -> io::Result<()> {
        let ProcessCapture {
            recorder,
            codes,
            threads,
            names,
            frames,
            native,
            addresses,
            ..
        } = self;
        let thread = thread(threads, names, recorder, event.tid, taken_at)?;
        if matches!(event.allocator, Allocator::Free | Allocator::Munmap) {
            return recorder.deallocation(thread, event.address, event.size, event.allocator);
        }
        frames.clear();
        if let Some(stack) = stacks.get(event.stack_id) {
            for died in codes.note(&stack.frames, event.tgid, snapshots) {
                recorder.code_object_died(died);
            }
            frames.extend(stack.frames.iter().map(|f| RawFrame {
                code: f.code,
                instruction_offset: i64::from(f.instruction_offset),
                is_entry: f.is_entry != 0,
            }));
            if stack.status & STATUS_TRUNCATED != 0 {
                frames.push(TRUNCATION_MARKER);
            }
        }
        if let Some(native) = native {
            let mut objects_changed = Ok(());
            let call = (event.tid, event.native_serial, event.timestamp_ns, batch);
            native.unwind(copies, call, addresses, |images| {
                objects_changed = recorder.loaded_objects_changed(images);
            });
            objects_changed?;
        }
        let stacks = Stacks {
            python: frames,
            native: addresses,
        };
        recorder.allocation(
            thread,
            stacks,
            codes,
            event.address,
            event.size,
            event.allocator,
        )
    }
}

/// The thread `tid` of `threads`, numbered the first time it records, and
/// named when its name is found (in records taken in at `taken_at`).
fn thread<'a>(
    threads: &'a mut HashMap<u32, RecordedThread>,
    names: &mut ThreadNames,
    recorder: &mut Recorder,
    tid: u32,
    taken_at: Instant,
) -> io::Result<&'a mut RecordedThread> {
    let next = threads.len() as u64 + MAIN_THREAD;
    let thread = match threads.entry(tid) {
        Entry::Occupied(known) => known.into_mut(),
        Entry::Vacant(new) => new.insert(RecordedThread::new(next, u64::from(tid))),
    };
    if let Some(name) = names.look(tid, taken_at) {
        recorder.thread_name(thread, &name)?;
    }
    Ok(thread)
}
