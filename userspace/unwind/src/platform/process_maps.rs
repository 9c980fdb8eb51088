//! The loaded objects of another process, from `/proc/PID/maps`: what
//! `dl_iterate_phdr` would list inside it, for unwinding its copied stacks.

use std::collections::BTreeMap;
use std::path::Path;

use memray_format::Image;
use python_frames::maps::{file_mappings, FileMapping};

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
    python_frames::reported_file(pid, Path::new(path))
        .to_string_lossy()
        .into_owned()
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
