//! The files that may hold a CPython executable's interpreter code: the
//! executable itself and the libpython it links (found as the dynamic
//! loader would, in the process's own file system), so that probes can be
//! placed on the interpreter before the program starts.

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

/// `executable` (a path from here) first, then the libpython it needs, if
/// found where process `pid`'s dynamic loader finds it: in the process's
/// own file system (it may be in a container), through the executable's
/// RPATH (unless it has a RUNPATH), the process's `LD_LIBRARY_PATH`, its
/// RUNPATH, then the usual directories.
pub fn interpreter_files(pid: u32, executable: &Path) -> Vec<PathBuf> {
    let mut files = vec![executable.to_path_buf()];
    if let Some(library) = python_frames::map_file(executable)
        .ok()
        .and_then(|data| libpython(pid, executable, &data))
    {
        files.push(library);
    }
    files
}

fn libpython(pid: u32, executable: &Path, data: &[u8]) -> Option<PathBuf> {
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
    let tagged = |wanted: u32| -> Vec<String> {
        entries
            .iter()
            .filter(|e| e.tag32(endian) == Some(wanted))
            .filter_map(text)
            .collect()
    };
    let needed = tagged(DT_NEEDED)
        .into_iter()
        .find(|name| name.starts_with("libpython"))?;
    let runpath = tagged(DT_RUNPATH);
    let rpath = if runpath.is_empty() {
        tagged(DT_RPATH)
    } else {
        Vec::new()
    };
    let origin = executable.parent().unwrap_or(Path::new("/"));
    let directories = |paths: &str| -> Vec<PathBuf> {
        paths
            .split(':')
            .filter_map(|dir| match dir.strip_prefix("$ORIGIN") {
                Some(rest) => Some(origin.join(rest.trim_start_matches('/'))),
                None => dir
                    .starts_with('/')
                    .then(|| python_frames::process_file(pid, Path::new(dir))),
            })
            .collect()
    };
    let search: Vec<PathBuf> = rpath
        .iter()
        .chain(library_path(pid).iter())
        .chain(runpath.iter())
        .flat_map(|paths| directories(paths))
        .chain(
            SYSTEM_DIRECTORIES
                .iter()
                .map(|dir| python_frames::process_file(pid, Path::new(dir))),
        )
        .collect();
    search
        .into_iter()
        .map(|dir| dir.join(&needed))
        .find(|candidate| candidate.is_file())
}

/// The `LD_LIBRARY_PATH` of process `pid`, if set.
fn library_path(pid: u32) -> Option<String> {
    let environment = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    environment
        .split(|&b| b == 0)
        .find_map(|variable| variable.strip_prefix(b"LD_LIBRARY_PATH="))
        .map(|value| String::from_utf8_lossy(value).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// pyenv's CPython finds its libpython through its RUNPATH; a process
    /// whose `LD_LIBRARY_PATH` holds another file of that name gets that
    /// one, as its loader would; both are reached through the process's
    /// root.
    #[test]
    fn libpython_is_where_the_process_loader_finds_it() {
        let python = memray_tests::interpreters::reference_python();
        let executable = python.path.canonicalize().expect("the interpreter");
        let own = std::process::id();
        let files = interpreter_files(own, &executable);
        let library = files.get(1).expect("pyenv's CPython links a libpython");
        assert!(
            library.starts_with(format!("/proc/{own}/root/")),
            "{files:?}"
        );
        let name = library.file_name().expect("a name");
        let directory = tempfile::tempdir().expect("tempdir");
        std::fs::write(directory.path().join(name), "").expect("write");
        let mut other = std::process::Command::new("sleep")
            .arg("60")
            .env("LD_LIBRARY_PATH", directory.path())
            .spawn()
            .expect("start sleep");
        // Spawning returns as the exec starts, before the new environment is there.
        let environment = format!("/proc/{}/environ", other.id());
        while std::fs::read(&environment).is_ok_and(|e| e.is_empty()) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let found = interpreter_files(other.id(), &executable);
        let wanted = python_frames::process_file(other.id(), &directory.path().join(name));
        let _ = other.kill();
        let _ = other.wait();
        assert_eq!(found.get(1), Some(&wanted), "{found:?}");
    }
}
