//! One thread as the capture knows it: its memray id, and the Python stack
//! last written for it, from which the FRAME_POP / FRAME_PUSH records that
//! turn it into the thread's current stack are computed.
//!
//! Frames are compared by code-object address; that is only sound while no
//! code object died since the comparison base was written (its address may
//! be reused), so each death bumps the recorder's code generation and every
//! thread then re-sends its whole stack.

use std::io;

use python_frames::RawFrame;

use crate::codes::CodeRegistry;
use crate::native::NativePath;
use crate::recorder::{CodeNamer, Writer};

#[derive(Clone, Copy, PartialEq, Eq)]
struct WrittenFrame {
    code: u64,
    instruction_offset: i64,
    is_entry: bool,
}

/// A thread of the recorded process. Its owner keeps it (thread-local
/// storage in-process, a map by kernel tid elsewhere) and hands it to the
/// recorder with each event of that thread.
pub struct RecordedThread {
    tid: u64,
    key: u64,
    /// Outermost first.
    written: Vec<WrittenFrame>,
    written_generation: u64,
    /// The last native stack recorded (`--native`).
    pub(crate) native_path: NativePath,
}

impl RecordedThread {
    /// `tid` is memray's thread id (1, 2, … in order of first use); `key`
    /// is the caller's own name for the thread, used by
    /// [`Recorder::name_other_thread`](crate::Recorder::name_other_thread).
    pub fn new(tid: u64, key: u64) -> RecordedThread {
        RecordedThread {
            tid,
            key,
            written: Vec::new(),
            written_generation: 0,
            native_path: NativePath::default(),
        }
    }

    pub fn tid(&self) -> u64 {
        self.tid
    }

    pub fn key(&self) -> u64 {
        self.key
    }

    /// The next event must send the whole stack (a new capture, after fork).
    pub fn forget_written(&mut self) {
        self.written.clear();
        self.native_path.clear();
    }

    /// Writes the pops and pushes that turn the last written stack into
    /// `stack` (innermost frame first). `entry_bits`: the frames' own entry
    /// bits are written (native traces on), else every frame is an entry.
    pub(crate) fn write_difference(
        &mut self,
        stack: &[RawFrame],
        entry_bits: bool,
        generation: u64,
        writer: &mut Writer,
        codes: &mut CodeRegistry,
        namer: &mut impl CodeNamer,
    ) -> io::Result<()> {
        // Without native frames memray always writes is_entry = 1; the hybrid
        // merge of a native capture needs the real bits (always set before 3.11).
        let current = stack.iter().rev().map(|f| WrittenFrame {
            code: f.code,
            instruction_offset: f.instruction_offset,
            is_entry: f.is_entry || !entry_bits,
        });
        let common = if generation == self.written_generation {
            self.written
                .iter()
                .zip(current.clone())
                .take_while(|(old, new)| *old == new)
                .count()
        } else {
            0
        };
        let pops = self.written.len() - common;
        if pops > 0 {
            writer.write_frame_pop(self.tid, pops as u32)?;
        }
        self.written.truncate(common);
        for frame in current.skip(common) {
            let id = codes.id_for(frame.code, writer, namer)?;
            writer.write_frame_push(self.tid, id, frame.instruction_offset, frame.is_entry)?;
            self.written.push(frame);
        }
        self.written_generation = generation;
        Ok(())
    }
}
