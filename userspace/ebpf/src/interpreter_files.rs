//! The files that may hold a CPython executable's interpreter code: the
//! executable itself and the libpython it links (found as the dynamic
//! loader would: its RUNPATH/RPATH, then the usual directories), so that
//! probes can be placed on the interpreter before the program starts.

use std::path::{Path, PathBuf};

use object::elf::{DT_NEEDED, DT_RPATH, DT_RUNPATH};
use object::read::elf::{Dyn, ElfFile64, FileHeader, SectionHeader};
use object::Endianness;

const SYSTEM_DIRECTORIES: [&str; 4] = [
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib",
    "/usr/local/lib",
];

/// `executable` first, then the libpython it needs, if found.
pub fn interpreter_files(executable: &Path) -> Vec<PathBuf> {
    let mut files = vec![executable.to_path_buf()];
    if let Some(library) = std::fs::read(executable)
        .ok()
        .and_then(|data| libpython(executable, &data))
    {
        files.push(library);
    }
    files
}

fn libpython(executable: &Path, data: &[u8]) -> Option<PathBuf> {
    let file = ElfFile64::<Endianness>::parse(data).ok()?;
    let endian = file.endian();
    let (entries, strings) = file
        .elf_header()
        .sections(endian, data)
        .ok()?
        .iter()
        .find_map(|section| section.dynamic(endian, data).ok().flatten())
        .map(|(entries, link)| {
            let strings = file
                .elf_header()
                .sections(endian, data)
                .ok()
                .and_then(|s| s.strings(endian, data, link).ok());
            (entries, strings)
        })?;
    let strings = strings?;
    let text = |entry: &object::elf::Dyn64<Endianness>| {
        entry
            .string(endian, strings)
            .ok()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    };
    let tag = |entry: &object::elf::Dyn64<Endianness>| entry.tag32(endian);
    let needed = entries
        .iter()
        .filter(|e| tag(e) == Some(DT_NEEDED))
        .filter_map(text)
        .find(|name| name.starts_with("libpython"))?;
    let origin = executable.parent().unwrap_or(Path::new("/"));
    let search: Vec<PathBuf> = entries
        .iter()
        .filter(|e| matches!(tag(e), Some(DT_RUNPATH | DT_RPATH)))
        .filter_map(text)
        .flat_map(|paths| {
            paths
                .split(':')
                .map(|dir| PathBuf::from(dir.replace("$ORIGIN", &origin.to_string_lossy())))
                .collect::<Vec<_>>()
        })
        .chain(SYSTEM_DIRECTORIES.iter().map(PathBuf::from))
        .collect();
    search
        .into_iter()
        .map(|dir| dir.join(&needed))
        .find(|candidate| candidate.is_file())
}
