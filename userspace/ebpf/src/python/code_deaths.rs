//! The probe on the interpreter's code object deallocation, which lets the
//! stack walk remember stacks by their code objects' addresses
//! (`ProcessWalk`). Placed only where every code object is freed through
//! that function: not where a PGO build may run copies of it inlined
//! behind guards, which the probe would miss.

use std::collections::HashMap;

use python_frames::PythonProcess;

use super::Error;
use crate::inlined_copies::address_taken;
use crate::placed::FileId;
use crate::placement::entry_placement;
use crate::LibcImage;

/// Where a process frees its code objects.
pub struct CodeDeathSite {
    pub image: LibcImage,
    /// The probe's place in the file.
    pub file_offset: u64,
}

/// Finds the sites, each function's file scanned once for inlined copies.
#[derive(Default)]
pub struct CodeDeaths {
    /// Whether code of the file takes the function's address, by file and
    /// the function's offset in it.
    inlined: HashMap<(FileId, u64), bool>,
}

impl CodeDeaths {
    /// Where to probe the deallocation of `process`'s code objects; `None`
    /// where the probe would not see every one.
    pub fn site(&mut self, process: &PythonProcess) -> Result<Option<CodeDeathSite>, Error> {
        let pid =
            u32::try_from(process.pid()).map_err(|_| crate::Error::InvalidPid(process.pid()))?;
        let Some(dealloc) = process.code_dealloc()? else {
            return Ok(None);
        };
        let Some(image) = LibcImage::containing(pid, dealloc)? else {
            return Ok(None);
        };
        let Some(code) = image.code_at(dealloc) else {
            return Ok(None);
        };
        // The probe reads no argument: it counts.
        let file_offset = code.file_offset + entry_placement(code.bytes, 0).offset;
        let inlined = *self
            .inlined
            .entry((image.file_id, code.file_offset))
            .or_insert_with(|| address_taken(image.text(), image.text_range.0, dealloc));
        Ok((!inlined).then_some(CodeDeathSite { image, file_offset }))
    }
}
