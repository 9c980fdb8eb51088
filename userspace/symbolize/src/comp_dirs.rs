//! The directories of an object's DWARF units, by address. memray (libbacktrace) names a
//! source file as the unit's line table writes it: its directory entry joined with its name
//! (`Objects/call.c`, `../csu/libc-start.c`, `/src/ext/m.c`), where blazesym also puts the
//! unit's compilation directory in front of a relative entry (`/tmp/python-build…/Objects/
//! call.c`, `./csu/../csu/libc-start.c`): knowing the unit's directories, the symbolizer
//! takes it off again.

use std::borrow::Cow;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use gimli::{DwarfSections, EndianSlice, RunTimeEndian};
use object::{CompressionFormat, Object, ObjectSection};

/// A unit's compilation directory, and the directory entries of its line table that
/// blazesym shows as written (absolute ones, and entry 0: the compilation directory).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct UnitDirs {
    comp_dir: String,
    kept_whole: HashSet<String>,
}

impl UnitDirs {
    /// A file as memray names it, from blazesym's directory and file name.
    pub fn as_line_table_names_it(&self, dir: &str, file: &str) -> String {
        if file.starts_with('/') {
            return file.to_owned();
        }
        let entry = match dir.strip_prefix(self.comp_dir.trim_end_matches('/')) {
            Some(rest) if !self.kept_whole.contains(dir) && rest.starts_with('/') => &rest[1..],
            _ => dir,
        };
        if entry.is_empty() {
            file.to_owned()
        } else {
            format!("{}/{file}", entry.trim_end_matches('/'))
        }
    }
}

/// The address ranges of an object's units, each with its directories.
#[derive(Debug, Default)]
pub struct CompDirs {
    /// `(start, end, directories)`, sorted by start.
    units: Vec<(u64, u64, Rc<UnitDirs>)>,
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

    /// The directories of the unit holding `address`.
    pub fn at(&self, address: u64) -> Option<&UnitDirs> {
        let after = self.units.partition_point(|&(start, ..)| start <= address);
        // Units may nest or overlap (a unit's ranges need not be contiguous): the nearest
        // start at or below the address that also covers it.
        self.units[..after]
            .iter()
            .rev()
            .find(|&&(_, end, _)| address < end)
            .map(|(_, _, dirs)| &**dirs)
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

fn read_units(file: &object::File<'_>) -> Result<Vec<(u64, u64, Rc<UnitDirs>)>, gimli::Error> {
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
        let mut kept_whole = HashSet::from([comp_dir.clone()]);
        if let Some(program) = &unit.line_program {
            for entry in program.header().include_directories() {
                let Ok(name) = dwarf.attr_string(&unit, *entry) else {
                    continue;
                };
                if name.starts_with(b"/") {
                    kept_whole.insert(name.to_string_lossy().into_owned());
                }
            }
        }
        let dirs = Rc::new(UnitDirs {
            comp_dir,
            kept_whole,
        });
        let mut ranges = dwarf.unit_ranges(&unit)?;
        while let Some(range) = ranges.next()? {
            units.push((range.begin, range.end, dirs.clone()));
        }
    }
    Ok(units)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(comp_dir: &str, absolute_entries: &[&str]) -> UnitDirs {
        let mut kept_whole: HashSet<String> =
            absolute_entries.iter().map(|e| e.to_string()).collect();
        kept_whole.insert(comp_dir.to_owned());
        UnitDirs {
            comp_dir: comp_dir.to_owned(),
            kept_whole,
        }
    }

    #[test]
    fn only_the_compilation_directory_goes() {
        // CPython: `ceval.c` under the relative entry `Python`.
        let python = unit("/tmp/build/Python-3.11", &[]);
        assert_eq!(
            python.as_line_table_names_it("/tmp/build/Python-3.11/Python", "ceval.c"),
            "Python/ceval.c"
        );
        // glibc: `../csu` under `./csu`, and a file in the compilation directory itself.
        let glibc = unit("./csu", &[]);
        assert_eq!(
            glibc.as_line_table_names_it("./csu/../csu", "libc-start.c"),
            "../csu/libc-start.c"
        );
        assert_eq!(glibc.as_line_table_names_it("./csu", "x.c"), "./csu/x.c");
        // Absolute entries stay whole, even inside the compilation directory.
        let ext = unit("/work/build/", &["/work/build/../src", "/src/ext"]);
        assert_eq!(
            ext.as_line_table_names_it("/work/build/../src", "m.c"),
            "/work/build/../src/m.c"
        );
        assert_eq!(
            ext.as_line_table_names_it("/src/ext", "m.c"),
            "/src/ext/m.c"
        );
        assert_eq!(
            ext.as_line_table_names_it("/work/build/inc", "m.h"),
            "inc/m.h"
        );
        assert_eq!(ext.as_line_table_names_it("/x", "/abs/m.c"), "/abs/m.c");
        assert_eq!(UnitDirs::default().as_line_table_names_it("", "m.c"), "m.c");
    }

    #[test]
    fn the_unit_covering_an_address() {
        let named = |name: &str| Rc::new(unit(name, &[]));
        let dirs = CompDirs {
            units: vec![
                (0x100, 0x200, named("a")),
                (0x150, 0x160, named("b")),
                (0x300, 0x400, named("c")),
            ],
        };
        let at = |address| dirs.at(address).map(|unit| unit.comp_dir.as_str());
        assert_eq!(at(0x120), Some("a"));
        assert_eq!(at(0x155), Some("b"));
        assert_eq!(at(0x170), Some("a"));
        assert_eq!(at(0x250), None);
        assert_eq!(at(0x3ff), Some("c"));
        assert_eq!(at(0x50), None);
    }
}
