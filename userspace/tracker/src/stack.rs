//! Python stacks: the frames last written for a thread, and the FRAME_POP /
//! FRAME_PUSH records that turn them into the thread's current frames.
//!
//! Frames are compared by code-object address; that is only sound while no
//! code object died since the comparison base was written (its address may be
//! reused), so a code-object death bumps a global generation and every thread
//! then re-sends its whole stack.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::codes::CodeRegistry;
use crate::python::{self, Frames};
use crate::recorder::Writer;

static CODE_GENERATION: AtomicU64 = AtomicU64::new(0);

/// Called (under the writer lock) when a code object is deallocated.
pub fn invalidate_code_addresses() {
    CODE_GENERATION.fetch_add(1, Ordering::AcqRel);
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct WrittenFrame {
    code: u64,
    instruction_offset: i64,
    is_entry: bool,
}

/// One thread's view: what was written, and a reusable walk buffer.
#[derive(Default)]
pub struct ThreadStack {
    /// Outermost first.
    written: Vec<WrittenFrame>,
    written_generation: u64,
    walked: Frames,
}

impl ThreadStack {
    /// Reads the calling thread's Python frames (outside the writer lock).
    pub fn walk(&mut self) {
        python::walk_current_thread(&mut self.walked);
    }

    /// Writes the pops and pushes that turn the last written stack into the
    /// walked one. Runs under the writer lock.
    pub fn write_difference(
        &mut self,
        tid: u64,
        writer: &mut Writer,
        codes: &mut CodeRegistry,
    ) -> io::Result<()> {
        let generation = CODE_GENERATION.load(Ordering::Acquire);
        // Without native frames memray always writes is_entry = 1.
        let current = self
            .walked
            .innermost_first()
            .iter()
            .rev()
            .map(|f| WrittenFrame {
                code: f.code,
                instruction_offset: f.instruction_offset,
                is_entry: true,
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
            writer.write_frame_pop(tid, pops as u32)?;
        }
        self.written.truncate(common);
        for frame in current.skip(common) {
            let id = codes.id_for(frame.code, writer)?;
            writer.write_frame_push(tid, id, frame.instruction_offset, frame.is_entry)?;
            self.written.push(frame);
        }
        self.written_generation = generation;
        Ok(())
    }

    /// The next write must send the whole stack (a new capture file after fork).
    pub fn forget_written(&mut self) {
        self.written.clear();
    }
}
