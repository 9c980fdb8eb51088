//! The loaded objects of another process, from `/proc/PID/maps`: what
//! `dl_iterate_phdr` would list inside it, for unwinding its copied stacks.

use std::collections::BTreeMap;
use std::path::Path;

use memray_format::Image;

use super::elf_file::load_segments;

/// The ELF objects process `pid` maps with executable code (the vdso and
/// deleted files left out), with their load bias and `PT_LOAD` segments,
/// read through `/proc/PID/root` (the process may live in another mount
/// namespace). Empty if its maps cannot be read (it exited).
pub fn process_images(pid: u32) -> Vec<Image> {
    let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) else {
        return Vec::new();
    };
    // By file: its mappings at file offset 0, and its first executable one.
    let mut files: BTreeMap<&str, (Vec<u64>, Option<u64>)> = BTreeMap::new();
    for line in maps.lines() {
        let Some(mapping) = Mapping::parse(line) else {
            continue;
        };
        let file = files.entry(mapping.path).or_default();
        if mapping.offset == 0 {
            file.0.push(mapping.start);
        }
        if mapping.executable && file.1.is_none() {
            file.1 = Some(mapping.start);
        }
    }
    files
        .into_iter()
        .filter_map(|(path, (starts, code))| {
            // The loader's mappings of an object are contiguous: its first one is the
            // nearest at offset 0 below its code (the file may be mapped elsewhere as data).
            let code = code?;
            let start = starts.into_iter().filter(|&start| start <= code).max()?;
            let segments = load_segments(Path::new(&in_root(pid, path)))?;
            // The first PT_LOAD (file offset 0) is mapped at `start`.
            let first = segments.iter().map(|segment| segment.vaddr).min()?;
            Some(Image {
                filename: path.to_owned(),
                load_address: start.wrapping_sub(first & !0xfff),
                segments,
            })
        })
        .collect()
}

/// `path` of process `pid`, as this process reaches it.
pub fn in_root(pid: u32, path: &str) -> String {
    format!("/proc/{pid}/root{path}")
}

/// One line of `/proc/PID/maps` that maps a file.
struct Mapping<'a> {
    start: u64,
    offset: u64,
    executable: bool,
    path: &'a str,
}

impl<'a> Mapping<'a> {
    fn parse(line: &'a str) -> Option<Mapping<'a>> {
        let mut fields = line.splitn(6, ' ');
        let (range, permissions, offset) = (fields.next()?, fields.next()?, fields.next()?);
        let path = fields.nth(2)?.trim_start();
        if !path.starts_with('/') || path.ends_with(" (deleted)") {
            return None;
        }
        Some(Mapping {
            start: u64::from_str_radix(range.split('-').next()?, 16).ok()?,
            offset: u64::from_str_radix(offset, 16).ok()?,
            executable: permissions.contains('x'),
            path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
