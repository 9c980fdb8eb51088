//! memray's code-object ids: a sequential id (from 1) per live code object,
//! announced with a CODE_OBJECT record the first time a frame uses it.

use std::io;

use rustc_hash::FxHashMap;

use python_frames::RawFrame;

use crate::recorder::{CodeNamer, Writer};

/// The outermost frame of a stack cut short (the frames above it were not
/// walked): no code object lives at this address, the recorder names it.
pub const TRUNCATION_MARKER: RawFrame = RawFrame {
    code: u64::MAX,
    instruction_offset: 0,
    is_entry: true,
};

/// The ids given so far in one capture.
#[derive(Default)]
pub struct CodeRegistry {
    ids: FxHashMap<u64, u64>,
    last_id: u64,
}

impl CodeRegistry {
    /// The id of the code object at `address`, writing its CODE_OBJECT record first if new.
    pub fn id_for(
        &mut self,
        address: u64,
        writer: &mut Writer,
        namer: &mut impl CodeNamer,
    ) -> io::Result<u64> {
        if let Some(&id) = self.ids.get(&address) {
            return Ok(id);
        }
        self.last_id += 1;
        let id = self.last_id;
        if address == TRUNCATION_MARKER.code {
            // Not asked of the namer: nothing is there to read.
            writer.write_code_object(id, b"<truncated stack>", b"<memray>", 0, &[])?;
        } else {
            match namer.code(address) {
                Some(code) => writer.write_code_object(
                    id,
                    code.name.as_bytes(),
                    code.filename.as_bytes(),
                    code.firstlineno,
                    &code.linetable,
                )?,
                None => writer.write_code_object(id, b"<unknown>", b"<unknown>", 0, &[])?,
            }
        }
        self.ids.insert(address, id);
        Ok(id)
    }

    /// The code object at `address` died: a new one may take its place.
    pub fn forget(&mut self, address: u64) {
        self.ids.remove(&address);
    }
}
