//! Binaries looked at for their headers and symbol tables: mapped rather
//! than read, as those are a small part of them (a libpython with its debug
//! information is over 20 MB, and each attach looks at it several times).

use std::fs::File;
use std::io;
use std::path::Path;

pub use memmap2::Mmap;

/// The file at `path`, mapped read-only.
pub fn map_file(path: &Path) -> io::Result<Mmap> {
    let file = File::open(path)?;
    // SAFETY: a read-only private mapping. A file truncated under us could
    // fault, as the dynamic loader's own mappings of it would; binaries in
    // use are replaced by rename, not rewritten, and every read of the
    // mapping is bounds-checked against its length.
    unsafe { Mmap::map(&file) }
}
