//! Where the allocator probes go in one library: an entry probe on each
//! function, its cookie naming the function, and a return probe on those
//! that return an allocation.

use memray_ebpf_common::Function;

use crate::libc_image::LibcImage;
use crate::placement::entry_placement;
use crate::Error;

/// File offsets in one library.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllocatorSites {
    pub entries: Vec<u64>,
    /// One per entry: its `Function::cookie`.
    pub cookies: Vec<u64>,
    pub returns: Vec<u64>,
}

impl AllocatorSites {
    /// libc's allocator functions (an older libc has no `reallocarray`:
    /// nothing calls it there).
    pub fn libc(libc: &LibcImage) -> Result<AllocatorSites, Error> {
        let functions = Function::ALL.map(|f| (f, f.symbol(), f != Function::Reallocarray));
        AllocatorSites::of(libc, &functions)
    }

    /// Each `(function, symbol, required)` of `library`, probed as that
    /// allocator function; a symbol not required is skipped where missing.
    /// A function with a return probe keeps its entry probe beside it, at
    /// its first instruction (one trap for both); the others take the first
    /// instruction the kernel emulates (`placement`).
    pub fn of(
        library: &LibcImage,
        functions: &[(Function, &str, bool)],
    ) -> Result<AllocatorSites, Error> {
        let mut sites = AllocatorSites::default();
        let mut probed = Vec::new();
        for &(function, symbol, required) in functions {
            let code = match library.function(symbol) {
                Ok(code) => code,
                Err(_) if !required => continue,
                Err(error) => return Err(error),
            };
            // Aliases (glibc's memalign and aligned_alloc) are one function.
            if probed.contains(&code.file_offset) {
                continue;
            }
            probed.push(code.file_offset);
            let entry_offset = if function.has_return_probe() || function.is_syscall_wrapper() {
                0
            } else {
                entry_placement(code.bytes, 1).offset
            };
            sites.entries.push(code.file_offset + entry_offset);
            sites.cookies.push(function.cookie());
            if function.has_return_probe() {
                sites.returns.push(code.file_offset);
            }
        }
        Ok(sites)
    }
}
