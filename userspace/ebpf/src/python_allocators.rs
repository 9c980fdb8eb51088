//! `--trace-python-allocators`: the functions the interpreter's allocator
//! tables point to (RAW, MEM and OBJ domains), probed where they are, as
//! memray records them when it wraps the tables (PYMALLOC_* records; the
//! allocator calls they make underneath, libc's or each other's, are nested
//! and not recorded). The exported `PyObject_Malloc` family is inlined in LTO
//! builds, so the probes go on the functions behind the tables' pointers,
//! static ones included, found by address (stripped or not).
//!
//! Tables changed at start-up are probed as they are: with the debug hooks
//! (`PYTHONMALLOC=debug`, `-X dev`) the hooks are recorded, with
//! `PYTHONMALLOC=malloc` the interpreter's wrappers of libc's allocator, as
//! memray records them.

use iced_x86::{Decoder, DecoderOptions};
use python_frames::{AllocatorTables, PythonProcess};

use crate::inlined_copies::takes_address;
use crate::placed::Placed;
use crate::placement::return_placement;
use crate::{Error, Function, LibcImage};

/// Instructions of `PyObject_Malloc` looked at for a guard: it comes
/// right after the size check.
const GUARD_WINDOW: usize = 16;

/// One function to probe: entry and return probes, both at `offset`.
pub struct PythonAllocatorProbe {
    pub function: Function,
    /// The function's start in its file.
    pub file_offset: u64,
    /// Where the probes go, from the function's start.
    pub offset: u64,
}

/// The Python allocators to probe in the processes registered from now on.
#[derive(Default)]
pub struct PythonAllocators {
    enabled: bool,
    /// Why the allocators of processes could not be probed, in the order
    /// they were refused: each process's first reason, until it is placed
    /// (a process found starting is refused while its loader has not yet
    /// relocated the tables, then placed).
    refused: Vec<(i32, String)>,
}

impl PythonAllocators {
    pub fn enable(&mut self) {
        self.enabled = true;
    }

    /// The first reason a process's allocators could not be probed.
    pub fn refused(&self) -> Option<&str> {
        self.refused.first().map(|(_, why)| why.as_str())
    }

    /// The files and functions of `process`'s allocator tables not yet
    /// probed for `owner` (none unless enabled).
    pub fn unplaced(
        &mut self,
        process: &PythonProcess,
        owner: u32,
        placed: &Placed,
    ) -> Result<Vec<(LibcImage, Vec<PythonAllocatorProbe>)>, crate::python::Error> {
        if !self.enabled {
            return Ok(Vec::new());
        }
        let found = find(process, owner, placed);
        self.note(process.pid(), found.as_ref().err().map(ToString::to_string));
        found
    }

    /// The outcome of a try of process `pid`: refused with a reason, or
    /// placed. Tries go on after a refusal, the last ones perhaps on a
    /// process that is exiting: the first reason stands.
    fn note(&mut self, pid: i32, refusal: Option<String>) {
        let known = self.refused.iter().any(|&(refused, _)| refused == pid);
        match refusal {
            None => self.refused.retain(|&(refused, _)| refused != pid),
            Some(why) if !known => self.refused.push((pid, why)),
            Some(_) => {}
        }
    }
}

fn find(
    process: &PythonProcess,
    owner: u32,
    placed: &Placed,
) -> Result<Vec<(LibcImage, Vec<PythonAllocatorProbe>)>, crate::python::Error> {
    let pid = u32::try_from(process.pid()).map_err(|_| Error::InvalidPid(process.pid()))?;
    let mut files: Vec<(LibcImage, Vec<PythonAllocatorProbe>)> = Vec::new();
    let tables = process.allocator_tables()?;
    for table in tables {
        for (function, address) in Function::PYTHON.into_iter().zip(table.functions) {
            let known = files
                .iter()
                .position(|(image, _)| (image.text_range.0..image.text_range.1).contains(&address));
            let index = match known {
                Some(index) => index,
                None => {
                    let image = LibcImage::containing(pid, address)?
                        .ok_or_else(|| outside_any_file(pid, address))?;
                    files.push((image, Vec::new()));
                    files.len() - 1
                }
            };
            let (image, probes) = &mut files[index];
            let code = image
                .code_at(address)
                .ok_or_else(|| outside_any_file(pid, address))?;
            let placed = placed.contains(owner, image.file_id, code.file_offset)
                || probes.iter().any(|p| p.file_offset == code.file_offset);
            if placed {
                continue;
            }
            probes.push(PythonAllocatorProbe {
                function,
                file_offset: code.file_offset,
                offset: return_placement(code.bytes, arguments(function)).offset,
            });
        }
    }
    let object_malloc = tables_malloc(&tables);
    if let Some((image, _)) = files
        .iter()
        .find(|(image, _)| guards_inlined_copy(image, object_malloc))
    {
        return Err(Error::Process {
            pid,
            what: format!(
                "{} calls pymalloc through inlined copies where its allocator table still \
                     points to it (a PGO/LTO build): the probes would miss those calls, so \
                     --trace-python-allocators is not possible with --ebpf for this interpreter \
                     (in-process `memray run --trace-python-allocators` is)",
                image.path.display()
            ),
        }
        .into());
    }
    files.retain(|(_, probes)| !probes.is_empty());
    Ok(files)
}

/// The OBJ domain's `malloc`.
fn tables_malloc(tables: &AllocatorTables) -> u64 {
    tables[2].functions[0]
}

/// Whether `image`'s exported `PyObject_Malloc` compares the table's
/// pointer with `function` and runs its own copy of it when they are equal
/// (guarded devirtualization, which PGO builds do at every call through the
/// table: probing `function` then misses most calls).
fn guards_inlined_copy(image: &LibcImage, function: u64) -> bool {
    let Ok(accessor) = image.function("PyObject_Malloc") else {
        return false;
    };
    let start = image.address_of(accessor.file_offset);
    let mut decoder = Decoder::with_ip(64, accessor.bytes, start, DecoderOptions::NONE);
    decoder
        .iter()
        .take(GUARD_WINDOW)
        .any(|instruction| takes_address(&instruction, function))
}

/// The arguments the probes read: `ctx` first, then the function's own.
fn arguments(function: Function) -> usize {
    match function {
        Function::PymallocMalloc | Function::PymallocFree => 2,
        _ => 3,
    }
}

fn outside_any_file(pid: u32, address: u64) -> Error {
    Error::Process {
        pid,
        what: format!(
            "its Python allocator function at {address:#x} is in no mapped file: \
             --trace-python-allocators cannot probe it"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::PythonAllocators;

    #[test]
    fn a_process_placed_after_a_refusal_is_not_refused() {
        let mut allocators = PythonAllocators::default();
        allocators.note(7, Some("not relocated yet".into()));
        allocators.note(9, Some("a PGO build".into()));
        allocators.note(7, None);
        assert_eq!(allocators.refused(), Some("a PGO build"));
        allocators.note(9, None);
        assert_eq!(allocators.refused(), None);
    }

    #[test]
    fn a_process_keeps_its_first_reason() {
        let mut allocators = PythonAllocators::default();
        allocators.note(7, Some("a PGO build".into()));
        allocators.note(9, Some("another".into()));
        allocators.note(7, Some("it exited".into()));
        assert_eq!(allocators.refused(), Some("a PGO build"));
    }
}
