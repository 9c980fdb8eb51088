//! The loaded objects of another process, from `/proc/PID/maps`: what
//! `dl_iterate_phdr` would list inside it, for unwinding its copied stacks.

use std::collections::BTreeMap;
use std::path::Path;

use memray_format::Image;

use super::elf_file::program_loads;

/// The ELF objects process `pid` maps with executable code (the vdso and
/// deleted files left out), with their load bias and `PT_LOAD` segments,
/// read through `/proc/PID/root` (the process may live in another mount
/// namespace). Empty if its maps cannot be read (it exited).
pub fn process_images(pid: u32) -> Vec<Image> {
    let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) else {
        return Vec::new();
    };
    // By file, its first executable mapping.
    let mut code: BTreeMap<&str, FileMapping> = BTreeMap::new();
    for mapping in file_mappings(&maps) {
        if mapping.executable && !mapping.deleted {
            code.entry(mapping.path).or_insert(mapping);
        }
    }
    code.into_values()
        .filter_map(|mapping| image_at(pid, mapping.path, mapping.start, mapping.offset))
        .collect()
}

/// The object of process `pid` whose file `path` is mapped at `address` from file offset
/// `offset` (page-aligned, as mmap takes it): its load bias from the `PT_LOAD` segment
/// that starts in that page. `None` if the file cannot be read or has no such segment.
pub fn image_at(pid: u32, path: &str, address: u64, offset: u64) -> Option<Image> {
    const PAGE: u64 = 0xfff;
    let loads = program_loads(Path::new(&in_root(pid, path)))?;
    let (segment, _) = loads
        .iter()
        .find(|(_, file_offset)| file_offset & !PAGE == offset)?;
    Some(Image {
        filename: path.to_owned(),
        load_address: address.wrapping_sub(segment.vaddr & !PAGE),
        segments: loads.iter().map(|(segment, _)| *segment).collect(),
    })
}

/// `path` of process `pid`, as this process reaches it.
pub fn in_root(pid: u32, path: &str) -> String {
    format!("/proc/{pid}/root{path}")
}

/// One line of `/proc/PID/maps` that maps a file.
#[derive(Debug, PartialEq, Eq)]
pub struct FileMapping<'a> {
    /// `[start, end)`.
    pub start: u64,
    pub end: u64,
    /// The file offset mapped at `start`.
    pub offset: u64,
    pub executable: bool,
    /// The file was deleted (or replaced) since it was mapped: `path` now
    /// names another file, or none.
    pub deleted: bool,
    /// As the process sees it (spaces kept, ` (deleted)` left out).
    pub path: &'a str,
}

/// The file mappings of a `/proc/PID/maps` text, in address order
/// (anonymous and special mappings such as `[vdso]` left out).
pub fn file_mappings(maps: &str) -> impl Iterator<Item = FileMapping<'_>> {
    maps.lines().filter_map(|line| {
        let mut fields = line.splitn(6, ' ');
        let (range, permissions, offset) = (fields.next()?, fields.next()?, fields.next()?);
        let path = fields.nth(2)?.trim_start();
        if !path.starts_with('/') {
            return None;
        }
        let (path, deleted) = match path.strip_suffix(" (deleted)") {
            Some(path) => (path, true),
            None => (path, false),
        };
        let (start, end) = range.split_once('-')?;
        Some(FileMapping {
            start: u64::from_str_radix(start, 16).ok()?,
            end: u64::from_str_radix(end, 16).ok()?,
            offset: u64::from_str_radix(offset, 16).ok()?,
            executable: permissions.contains('x'),
            deleted,
            path,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_mappings_keep_spaces_and_tell_deleted_files() {
        let maps = "\
7f0000000000-7f0000028000 r--p 00000000 fe:01 1234 /usr/lib/x86_64-linux-gnu/libc.so.6
7f0000028000-7f000017d000 r-xp 00028000 fe:01 1234 /usr/lib/x86_64-linux-gnu/libc.so.6
7f1000000000-7f1000001000 r-xp 00000000 fe:01 99 /opt/my lib/libx.so (deleted)
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]
7ffe00000000-7ffe00002000 rw-p 00000000 00:00 0
";
        let found: Vec<_> = file_mappings(maps).collect();
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(
            found[1],
            FileMapping {
                start: 0x7f0000028000,
                end: 0x7f000017d000,
                offset: 0x28000,
                executable: true,
                deleted: false,
                path: "/usr/lib/x86_64-linux-gnu/libc.so.6",
            }
        );
        assert!(!found[0].executable);
        assert_eq!(
            (found[2].path, found[2].deleted),
            ("/opt/my lib/libx.so", true)
        );
    }

    #[test]
    fn this_process_maps_its_executable_and_libc() {
        let images = process_images(std::process::id());
        let executable = std::env::current_exe().unwrap();
        let ours = images
            .iter()
            .find(|image| image.filename == executable.to_string_lossy())
            .expect("the executable");
        let code = this_process_maps_its_executable_and_libc as *const () as u64;
        let inside = ours.segments.iter().any(|segment| {
            let start = ours.load_address + segment.vaddr;
            (start..start + segment.memsz).contains(&code)
        });
        assert!(inside, "{ours:?} holds {code:#x}");
        assert!(images
            .iter()
            .any(|image| image.filename.contains("libc.so")));
    }
}
