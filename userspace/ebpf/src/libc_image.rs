//! The C library a process runs: found through `/proc/PID/maps`, opened
//! through `/proc/PID/root` (so a process in another mount namespace or
//! root directory gets its own libc), and its functions located in the ELF
//! file.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use object::{Object, ObjectSegment, ObjectSymbol};
use python_frames::maps::{file_mappings, FileMapping};

use crate::Error;

/// One process's libc: the file as seen from here and where its code is mapped.
pub struct LibcImage {
    /// `/proc/PID/root/<path in the process>`: attachable from outside
    /// ([`python_frames::reported_file`]).
    pub path: PathBuf,
    /// The file's (device, inode): the same libc seen through different paths.
    pub file_id: (u64, u64),
    data: python_frames::Mmap,
    /// The process's executable mapping of libc, `[start, end)`.
    pub text_range: (u64, u64),
    /// The file offset mapped at `text_range.0`.
    text_offset: u64,
}

/// A function of libc: its bytes and where they are in the file.
pub struct LibcFunction<'a> {
    /// Offset in the file: what the kernel's uprobes are attached by.
    pub file_offset: u64,
    pub bytes: &'a [u8],
}

impl LibcImage {
    pub fn of_process(pid: u32) -> Result<LibcImage, Error> {
        LibcImage::mapped(pid, is_libc)?.ok_or_else(|| Error::Process {
            pid,
            what: "no C library (libc.so.6) is mapped".to_string(),
        })
    }

    /// The first library mapped executable in process `pid` whose path
    /// `wanted` accepts (libc, or a third-party allocator's), if any.
    pub fn mapped(pid: u32, wanted: impl Fn(&str) -> bool) -> Result<Option<LibcImage>, Error> {
        let maps = read_maps(pid)?;
        let Some(text) = executable_mappings(&maps).find(|m| wanted(m.path)) else {
            return Ok(None);
        };
        let path = python_frames::reported_file(pid, Path::new(text.path));
        let unreadable = |e: std::io::Error| Error::Process {
            pid,
            what: format!("cannot read {}: {e}", path.display()),
        };
        let metadata = std::fs::metadata(&path).map_err(unreadable)?;
        let data = python_frames::map_file(&path).map_err(unreadable)?;
        Ok(Some(LibcImage {
            file_id: (metadata.dev(), metadata.ino()),
            path,
            data,
            text_range: (text.start, text.end),
            text_offset: text.offset,
        }))
    }

    /// The file process `pid` runs the code at `address` from, if any.
    pub fn containing(pid: u32, address: u64) -> Result<Option<LibcImage>, Error> {
        let maps = read_maps(pid)?;
        let Some(text) = executable_mappings(&maps).find(|m| (m.start..m.end).contains(&address))
        else {
            return Ok(None);
        };
        LibcImage::mapped(pid, |path| path == text.path)
    }

    /// Where a file offset of the executable mapping is in the process.
    pub fn address_of(&self, file_offset: u64) -> u64 {
        self.text_range
            .0
            .wrapping_add(file_offset.wrapping_sub(self.text_offset))
    }

    /// Where the code at `address` in the process (in
    /// [`LibcImage::text_range`]) is in the file, and the file's bytes from there.
    pub fn code_at(&self, address: u64) -> Option<LibcFunction<'_>> {
        let (start, end) = self.text_range;
        if !(start..end).contains(&address) {
            return None;
        }
        let file_offset = address - start + self.text_offset;
        let bytes = self.data.get(usize::try_from(file_offset).ok()?..)?;
        Some(LibcFunction { file_offset, bytes })
    }

    /// The bytes of the executable mapping, from `text_range.0`.
    pub fn text(&self) -> &[u8] {
        let (start, end) = self.text_range;
        let from = usize::try_from(self.text_offset).unwrap_or(usize::MAX);
        let to = from.saturating_add(usize::try_from(end - start).unwrap_or(usize::MAX));
        self.data
            .get(from..to.min(self.data.len()))
            .unwrap_or_default()
    }

    /// The function defined under `symbol` in the dynamic symbol table.
    pub fn function(&self, symbol: &str) -> Result<LibcFunction<'_>, Error> {
        find_function(&self.data, symbol, false).ok_or_else(|| Error::Symbol {
            library: self.path.clone(),
            symbol: symbol.to_string(),
        })
    }
}

/// Where the function `symbol` of the ELF file `data` starts in the file
/// (its dynamic symbol table or, not stripped, its full one), if it has it.
pub fn function_offset(data: &[u8], symbol: &str) -> Option<u64> {
    find_function(data, symbol, true).map(|function| function.file_offset)
}

/// The function defined under `symbol` in the dynamic symbol table of the
/// ELF file `data` (and in the full one if `all_symbols`).
fn find_function<'a>(data: &'a [u8], symbol: &str, all_symbols: bool) -> Option<LibcFunction<'a>> {
    let file = object::File::parse(data).ok()?;
    let defined = |s: &object::Symbol<'_, '_>| s.is_definition() && s.name() == Ok(symbol);
    let found = file
        .dynamic_symbols()
        .find(defined)
        .or_else(|| all_symbols.then(|| file.symbols().find(defined)).flatten())?;
    let address = found.address();
    let file_offset = file.segments().find_map(|segment| {
        let (start, size) = (segment.address(), segment.size());
        let (file_start, file_size) = segment.file_range();
        (address >= start && address - start < file_size.min(size))
            .then(|| address - start + file_start)
    })?;
    let start = usize::try_from(file_offset).ok()?;
    let end = start.saturating_add(usize::try_from(found.size()).ok()?);
    let bytes = data.get(start..end)?;
    Some(LibcFunction { file_offset, bytes })
}

fn is_libc(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name == "libc.so.6" || (name.starts_with("libc-") && name.ends_with(".so"))
}

fn read_maps(pid: u32) -> Result<String, Error> {
    let maps_path = format!("/proc/{pid}/maps");
    std::fs::read_to_string(&maps_path).map_err(|e| Error::Process {
        pid,
        what: format!("cannot read {maps_path}: {e}"),
    })
}

/// The executable file mappings of a `/proc/PID/maps` text, in address order.
fn executable_mappings(maps: &str) -> impl Iterator<Item = FileMapping<'_>> {
    file_mappings(maps).filter(|mapping| mapping.executable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_executable_libc_mapping() {
        let maps = "\
7f0000000000-7f0000028000 r--p 00000000 fe:01 1234 /usr/lib/x86_64-linux-gnu/libc.so.6
7f0000028000-7f000017d000 r-xp 00028000 fe:01 1234 /usr/lib/x86_64-linux-gnu/libc.so.6
7f1000000000-7f1000001000 r-xp 00000000 fe:01 99 /usr/lib/libcrypt.so.1
";
        let libc = executable_mappings(maps).find(|m| is_libc(m.path));
        let libc = libc.expect("libc's text");
        assert_eq!(
            (libc.path, libc.start, libc.end, libc.offset),
            (
                "/usr/lib/x86_64-linux-gnu/libc.so.6",
                0x7f0000028000,
                0x7f000017d000,
                0x28000
            )
        );
        assert_eq!(
            executable_mappings("7f1-7f2 r-xp 0 fe:01 9 /usr/lib/libcrypt.so.1")
                .find(|m| is_libc(m.path)),
            None
        );
    }
}
