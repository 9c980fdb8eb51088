//! Finding CPython inside another process: which mapped file exports
//! `_PyRuntime` (libpython, or the executable for static, stripped or LTO
//! builds), where it is loaded, and which version it is.

use std::path::{Path, PathBuf};

use object::read::macho::{FatArch, MachOFatFile32};
use object::{Architecture, BinaryFormat, FileKind, Object, ObjectSegment, ObjectSymbol};

use crate::error::Error;
use crate::maps::file_mappings;

/// The symbols of one executable or library (ELF, Mach-O, or one slice of a
/// universal Mach-O) that locate an interpreter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PythonSymbols {
    /// Link-time addresses (add the load bias).
    pub runtime: u64,
    pub py_version: Option<u64>,
    pub code_type: Option<u64>,
    /// Link-time address of the first loadable segment with file offset 0.
    pub first_segment: u64,
}

impl PythonSymbols {
    /// Parses an image; `Ok(None)` if it does not export `_PyRuntime`.
    pub fn parse(binary: &Path, data: &[u8]) -> Result<Option<PythonSymbols>, Error> {
        let unreadable = |e: object::Error| Error::Elf {
            binary: binary.to_path_buf(),
            message: e.to_string(),
        };
        let slice = this_architecture_slice(data).map_err(unreadable)?;
        let Some(slice) = slice else {
            return Ok(None);
        };
        let file = object::File::parse(slice).map_err(unreadable)?;
        // Mach-O prefixes C names with an underscore.
        let prefix = match file.format() {
            BinaryFormat::MachO => "_",
            _ => "",
        };
        let find = |name: &str| {
            file.dynamic_symbols()
                .chain(file.symbols())
                .find(|s| {
                    s.name().is_ok_and(|n| n.strip_prefix(prefix) == Some(name)) && s.address() != 0
                })
                .map(|s| s.address())
        };
        let Some(runtime) = find("_PyRuntime") else {
            return Ok(None);
        };
        let first_segment = file
            .segments()
            // Mach-O's __PAGEZERO also starts at offset 0, with nothing in the file.
            .filter(|s| s.file_range().0 == 0 && s.file_range().1 != 0)
            .map(|s| s.address() & !0xfff)
            .min()
            .unwrap_or(0);
        Ok(Some(PythonSymbols {
            runtime,
            py_version: find("Py_Version"),
            code_type: find("PyCode_Type"),
            first_segment,
        }))
    }
}

/// The slice of a universal Mach-O built for this machine's architecture
/// (`None` if it has none); any other file as it is.
fn this_architecture_slice(data: &[u8]) -> object::Result<Option<&[u8]>> {
    if FileKind::parse(data)? != FileKind::MachOFat32 {
        return Ok(Some(data));
    }
    let fat = MachOFatFile32::parse(data)?;
    let wanted = if cfg!(target_arch = "aarch64") {
        Architecture::Aarch64
    } else {
        Architecture::X86_64
    };
    fat.arches()
        .iter()
        .find(|arch| arch.architecture() == wanted)
        .map(|arch| arch.data(data))
        .transpose()
}

/// One file mapped into the target, with the address its offset 0 is mapped at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappedFile {
    pub path: PathBuf,
    pub base: u64,
}

/// Files mapped at offset 0 in a `/proc/<pid>/maps` text, in address order, each once.
pub fn files_mapped_at_offset_zero(maps: &str) -> Vec<MappedFile> {
    let mut files: Vec<MappedFile> = Vec::new();
    for mapping in file_mappings(maps).filter(|mapping| mapping.offset == 0) {
        // A deleted file keeps the kernel's mark, as `/proc/<pid>/exe` shows it too:
        // reading it then fails, naming it, rather than reading whatever took its name.
        let path = if mapping.deleted {
            PathBuf::from(format!("{} (deleted)", mapping.path))
        } else {
            PathBuf::from(mapping.path)
        };
        if !files.iter().any(|f| f.path == path) {
            files.push(MappedFile {
                path,
                base: mapping.start,
            });
        }
    }
    files
}

/// Whether a file's name says it is a Python executable or libpython.
pub fn looks_like_python(path: &Path) -> bool {
    file_name(path).contains("python")
}

/// `(major, minor)` from a name like `libpython3.9.so.1.0` or `python3.10`.
pub fn version_from_name(path: &Path) -> Option<(u32, u32)> {
    let name = file_name(path);
    let rest = &name[name.find("python")? + "python".len()..];
    let mut parts = rest.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_python_files_mapped_at_offset_zero() {
        let maps = "\
55d0c0000000-55d0c0001000 r--p 00000000 08:01 11 /usr/bin/python3.11
55d0c0001000-55d0c0100000 r-xp 00001000 08:01 11 /usr/bin/python3.11
7f0000000000-7f0000001000 r--p 00000000 08:01 12 /lib/libc.so.6
7f0000100000-7f0000101000 r--p 00000000 08:01 13 /opt/py/lib/libpython3.9.so.1.0
7f0000200000-7f0000201000 r--p 00000000 08:01 14 /opt/old py/libpython3.8.so.1.0 (deleted)
7ffd00000000-7ffd00001000 rw-p 00000000 00:00 0 [stack]
";
        let found: Vec<_> = files_mapped_at_offset_zero(maps)
            .into_iter()
            .filter(|f| looks_like_python(&f.path))
            .collect();
        assert_eq!(
            found,
            vec![
                MappedFile {
                    path: "/usr/bin/python3.11".into(),
                    base: 0x55d0c0000000
                },
                MappedFile {
                    path: "/opt/py/lib/libpython3.9.so.1.0".into(),
                    base: 0x7f0000100000
                },
                MappedFile {
                    path: "/opt/old py/libpython3.8.so.1.0 (deleted)".into(),
                    base: 0x7f0000200000
                },
            ]
        );
    }

    #[test]
    fn versions_from_file_names() {
        assert_eq!(
            version_from_name(Path::new("/x/libpython3.9.so.1.0")),
            Some((3, 9))
        );
        assert_eq!(
            version_from_name(Path::new("/usr/bin/python3.10")),
            Some((3, 10))
        );
        assert_eq!(version_from_name(Path::new("/usr/bin/python")), None);
    }
}
