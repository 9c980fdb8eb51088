//! The interpreter's memory allocator tables in another process: the
//! `PyMemAllocatorEx` of each domain (RAW, MEM, OBJ), whose functions every
//! `PyMem_RawMalloc`, `PyMem_Malloc` and `PyObject_Malloc` calls through a
//! pointer (what `--trace-python-allocators` records).
//!
//! Before 3.12 the tables are static variables (`_PyMem_Raw`, `_PyMem`,
//! `_PyObject`: in the symbol table, not the dynamic one). From 3.12 they
//! are `_PyRuntime.allocators.standard`, whose offset `_Py_DebugOffsets`
//! does not give: [`STANDARD_ALLOCATORS`], checked against the target.

use object::{Object, ObjectSegment, ObjectSymbol, SegmentFlags};

use crate::discover::PythonSymbols;
use crate::error::Error;
use crate::memory::MemoryExt;
use crate::process::{map_target_file, PythonProcess};

/// `offsetof(_PyRuntimeState, allocators.standard.raw)` by minor version,
/// from the CPython headers (`pycore_runtime.h`, `pycore_pymem.h`; 3.12.1,
/// 3.13.0 and Debian's 3.14.10, checked with their DWARF where there is
/// some). MEM and OBJ follow RAW.
const STANDARD_ALLOCATORS: [(u32, u64); 3] = [(12, 96), (13, 704), (14, 880)];

/// Pre-3.12 static tables, in domain order.
const STATIC_TABLES: [&str; 3] = ["_PyMem_Raw", "_PyMem", "_PyObject"];

/// `sizeof(PyMemAllocatorEx)`: `ctx` and four function pointers.
const TABLE_BYTES: u64 = 40;

/// One domain's `PyMemAllocatorEx`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocatorTable {
    pub ctx: u64,
    /// `malloc`, `calloc`, `realloc`, `free`: addresses in the process.
    pub functions: [u64; 4],
}

/// The RAW, MEM and OBJ domains' tables.
pub type AllocatorTables = [AllocatorTable; 3];

impl PythonProcess {
    /// The allocator tables as they are now. The RAW domain's functions
    /// must lie in the interpreter's code (only the interpreter's debug hooks
    /// replace them; anything else means the tables were not found where
    /// expected, or another tool wrapped them), the others' must be set.
    pub fn allocator_tables(&self) -> Result<AllocatorTables, Error> {
        let data = map_target_file(self.pid(), self.binary())?;
        let unreadable = |e: object::Error| Error::Elf {
            binary: self.binary().to_path_buf(),
            message: e.to_string(),
        };
        let file = object::File::parse(&*data).map_err(unreadable)?;
        let symbols = PythonSymbols::parse(self.binary(), &data)?
            .ok_or(Error::NotPython { pid: self.pid() })?;
        let bias = self.target().runtime.wrapping_sub(symbols.runtime);
        let addresses = self.table_addresses(&file, bias)?;
        let mut tables = [AllocatorTable {
            ctx: 0,
            functions: [0; 4],
        }; 3];
        for (table, address) in tables.iter_mut().zip(addresses) {
            let words = self
                .memory()
                .read_array::<{ TABLE_BYTES as usize }>(address)
                .ok_or(Error::Unreadable {
                    what: "the allocator tables",
                    address,
                })?;
            let word = |i: usize| u64::from_le_bytes(words[i * 8..i * 8 + 8].try_into().unwrap());
            *table = AllocatorTable {
                ctx: word(0),
                functions: [word(1), word(2), word(3), word(4)],
            };
        }
        let text = executable_ranges(&file, bias);
        let in_text = |at: &u64| text.iter().any(|&(start, end)| (start..end).contains(at));
        let looks_right = tables[0].functions.iter().all(in_text)
            && tables.iter().all(|t| t.functions.iter().all(|&f| f != 0));
        if !looks_right {
            return Err(Error::AllocatorTables {
                pid: self.pid(),
                at: addresses[0],
            });
        }
        Ok(tables)
    }

    /// Where the three tables are.
    fn table_addresses(&self, file: &object::File<'_>, bias: u64) -> Result<[u64; 3], Error> {
        let layout = self.layout();
        if (layout.major, layout.minor) < (3, 12) {
            let mut addresses = [0; 3];
            for (address, name) in addresses.iter_mut().zip(STATIC_TABLES) {
                let symbol = file
                    .symbols()
                    .find(|s| s.name() == Ok(name))
                    .ok_or_else(|| Error::NoAllocatorTables {
                        binary: self.binary().to_path_buf(),
                        why: format!("it has no {name} symbol (stripped?)"),
                    })?;
                *address = bias.wrapping_add(symbol.address());
            }
            return Ok(addresses);
        }
        let raw = STANDARD_ALLOCATORS
            .iter()
            .find(|&&(minor, _)| layout.major == 3 && minor == layout.minor)
            .map(|&(_, offset)| self.target().runtime + offset)
            .ok_or_else(|| Error::NoAllocatorTables {
                binary: self.binary().to_path_buf(),
                why: format!(
                    "their place in CPython {}.{} is not known",
                    layout.major, layout.minor
                ),
            })?;
        Ok([raw, raw + TABLE_BYTES, raw + 2 * TABLE_BYTES])
    }
}

/// The executable segments of an image loaded at `bias`: `[start, end)`.
fn executable_ranges(file: &object::File<'_>, bias: u64) -> Vec<(u64, u64)> {
    const EXECUTE: u32 = 1; // PF_X
    file.segments()
        .filter(|s| matches!(s.flags(), SegmentFlags::Elf { p_flags } if p_flags & EXECUTE != 0))
        .map(|s| {
            let start = bias.wrapping_add(s.address());
            (start, start + s.size())
        })
        .collect()
}
