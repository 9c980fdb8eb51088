//! The compilation directories of an object's DWARF units, by address. memray (libbacktrace)
//! names a source file as the unit's line table writes it (`Objects/call.c`,
//! `../csu/libc-start.c`), where blazesym joins the unit's compilation directory in front
//! (`/tmp/python-build…/Objects/call.c`, `./csu/../csu/libc-start.c`): knowing that
//! directory, the symbolizer takes it off again.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use gimli::{DwarfSections, EndianSlice, RunTimeEndian};
use object::{CompressionFormat, Object, ObjectSection};

/// The address ranges of an object's units, each with its compilation directory.
#[derive(Debug, Default)]
pub struct CompDirs {
    /// `(start, end, compilation directory)`, sorted by start.
    units: Vec<(u64, u64, String)>,
}

impl CompDirs {
    /// The units of the object at `path`, or of its separate debug file (found through its
    /// build id under `/usr/lib/debug/.build-id`) when it has no DWARF of its own; none when
    /// neither can be read.
    pub fn load(path: &Path) -> CompDirs {
        let Ok(data) = std::fs::read(path) else {
            return CompDirs::default();
        };
        let Ok(file) = object::File::parse(&*data) else {
            return CompDirs::default();
        };
        if file.section_by_name(".debug_info").is_some() {
            return CompDirs::of_object(&file);
        }
        let Some(debug_file) = build_id_debug_file(&file) else {
            return CompDirs::default();
        };
        match std::fs::read(debug_file) {
            Ok(debug_data) => match object::File::parse(&*debug_data) {
                Ok(debug) => CompDirs::of_object(&debug),
                Err(_) => CompDirs::default(),
            },
            Err(_) => CompDirs::default(),
        }
    }

    fn of_object(file: &object::File<'_>) -> CompDirs {
        let mut units = read_units(file).unwrap_or_default();
        units.sort_unstable_by_key(|&(start, ..)| start);
        CompDirs { units }
    }

    /// The compilation directory of the unit holding `address`.
    pub fn at(&self, address: u64) -> Option<&str> {
        let after = self.units.partition_point(|&(start, ..)| start <= address);
        // Units may nest or overlap (a unit's ranges need not be contiguous): the nearest
        // start at or below the address that also covers it.
        self.units[..after]
            .iter()
            .rev()
            .find(|&&(_, end, _)| address < end)
            .map(|(_, _, dir)| dir.as_str())
    }
}

/// A file as memray (libbacktrace) names it: its line-table directory entry joined with its
/// name, where blazesym puts the unit's compilation directory in front of a relative entry.
/// `dir` and `file` are blazesym's; a file in the compilation directory itself (entry 0,
/// which libbacktrace joins too) keeps the whole path.
pub fn as_line_table_names_it(dir: &str, file: &str, comp_dir: &str) -> String {
    let comp_dir = comp_dir.trim_end_matches('/');
    let entry = match dir.strip_prefix(comp_dir) {
        Some(rest) if !comp_dir.is_empty() && rest.starts_with('/') => &rest[1..],
        _ => dir,
    };
    if entry.is_empty() || file.starts_with('/') {
        file.to_owned()
    } else {
        format!("{}/{file}", entry.trim_end_matches('/'))
    }
}

/// Debian's place for the debug file of an object with a build id.
fn build_id_debug_file(file: &object::File<'_>) -> Option<PathBuf> {
    let id = file.build_id().ok()??;
    let hex: String = id.iter().map(|byte| format!("{byte:02x}")).collect();
    let (directory, rest) = hex.split_at_checked(2)?;
    Some(Path::new("/usr/lib/debug/.build-id").join(format!("{directory}/{rest}.debug")))
}

/// A section's bytes, inflated when compressed with zlib (as `objcopy
/// --compress-debug-sections` leaves them); `None` for other compressions.
fn section_data<'a>(section: &object::Section<'a, '_>) -> Option<Cow<'a, [u8]>> {
    let compressed = section.compressed_data().ok()?;
    match compressed.format {
        CompressionFormat::None => Some(Cow::Borrowed(compressed.data)),
        CompressionFormat::Zlib => miniz_oxide::inflate::decompress_to_vec_zlib(compressed.data)
            .ok()
            .map(Cow::Owned),
        _ => None,
    }
}

fn read_units(file: &object::File<'_>) -> Result<Vec<(u64, u64, String)>, gimli::Error> {
    let endian = if file.is_little_endian() {
        RunTimeEndian::Little
    } else {
        RunTimeEndian::Big
    };
    let sections = DwarfSections::load(|id| {
        Ok::<_, gimli::Error>(
            file.section_by_name(id.name())
                .and_then(|section| section_data(&section))
                .unwrap_or(Cow::Borrowed(&[])),
        )
    })?;
    let dwarf = sections.borrow(|section| EndianSlice::new(section, endian));
    let mut units = Vec::new();
    let mut headers = dwarf.units();
    while let Some(header) = headers.next()? {
        let unit = dwarf.unit(header)?;
        let Some(comp_dir) = unit.comp_dir.map(|dir| dir.to_string_lossy().into_owned()) else {
            continue;
        };
        let mut ranges = dwarf.unit_ranges(&unit)?;
        while let Some(range) = ranges.next()? {
            units.push((range.begin, range.end, comp_dir.clone()));
        }
    }
    Ok(units)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_compilation_directory_goes() {
        let names = |dir, file, comp_dir| as_line_table_names_it(dir, file, comp_dir);
        // CPython: `ceval.c` under the relative entry `Python`.
        assert_eq!(
            names(
                "/tmp/build/Python-3.11/Python",
                "ceval.c",
                "/tmp/build/Python-3.11"
            ),
            "Python/ceval.c"
        );
        // glibc: `../csu` under `./csu`, and a file in the compilation directory itself.
        assert_eq!(
            names("./csu/../csu", "libc-start.c", "./csu"),
            "../csu/libc-start.c"
        );
        assert_eq!(
            names("./nptl", "pthread_create.c", "./nptl"),
            "./nptl/pthread_create.c"
        );
        // An absolute entry outside the compilation directory stays whole.
        assert_eq!(names("/src/ext", "m.c", "/work/build/"), "/src/ext/m.c");
        assert_eq!(names("/src/extra", "m.c", "/src/ext"), "/src/extra/m.c");
        assert_eq!(names("", "m.c", ""), "m.c");
        assert_eq!(names("/x", "/abs/m.c", "/x"), "/abs/m.c");
    }

    #[test]
    fn the_unit_covering_an_address() {
        let dirs = CompDirs {
            units: vec![
                (0x100, 0x200, "a".into()),
                (0x150, 0x160, "b".into()),
                (0x300, 0x400, "c".into()),
            ],
        };
        assert_eq!(dirs.at(0x120), Some("a"));
        assert_eq!(dirs.at(0x155), Some("b"));
        assert_eq!(dirs.at(0x170), Some("a"));
        assert_eq!(dirs.at(0x250), None);
        assert_eq!(dirs.at(0x3ff), Some("c"));
        assert_eq!(dirs.at(0x50), None);
    }
}
