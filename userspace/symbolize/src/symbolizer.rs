//! Raw native return addresses of a capture, resolved with blazesym.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::SystemTime;

use blazesym::symbolize::source::{Elf, Source};
use blazesym::symbolize::{Input, Symbolized, Symbolizer};
use memray_format::{Frame, Image};
use memray_unwind::load_segments;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::comp_dirs::{CompDirs, UnitDirs};

/// One resolved frame, as memray's reports show a native frame. Its names are shared by
/// every frame of the capture that has them (a report clones frames by the million).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeFrame {
    /// The function, demangled; `<unknown>` when no symbol covers the address.
    pub function: Arc<str>,
    /// The source file as the line table names it (relative to the compilation directory
    /// unless absolute there); `<unknown>` without debug information.
    pub file: Arc<str>,
    /// The source line; 0 without debug information.
    pub line: u32,
}

impl NativeFrame {
    /// The frame as reports take it (no copy of the names).
    pub fn to_frame(&self) -> Frame {
        Frame {
            function: self.function.clone(),
            filename: self.file.clone(),
            lineno: i32::try_from(self.line).unwrap_or(i32::MAX),
        }
    }
}

const UNKNOWN: &str = "<unknown>";

/// Resolves the return addresses of one capture. Not `Send` (blazesym's symbolizer is not):
/// one per thread.
pub struct NativeSymbolizer {
    symbolizer: Symbolizer,
    /// The capture's segment generations, in the order of its MEMORY_MAP_START records.
    generations: Vec<Vec<Image>>,
    /// When the capture started, to tell files changed since; `None` to check segments only.
    recorded_at: Option<SystemTime>,
    resolved: FxHashMap<(u64, usize), Rc<[NativeFrame]>>,
    /// Every function and file name given out, each once.
    names: FxHashSet<Arc<str>>,
    /// Files already checked: whether they can be used.
    usable: HashMap<PathBuf, bool>,
    comp_dirs: HashMap<PathBuf, CompDirs>,
    warnings: Vec<String>,
    warned: HashSet<PathBuf>,
}

impl NativeSymbolizer {
    /// A symbolizer for a capture with these segment generations, in the order of its
    /// MEMORY_MAP_START records. Debug files are looked for beside each file, through build
    /// ids and debug links, in `/usr/lib/debug` and `/lib/debug`.
    pub fn new(generations: Vec<Vec<Image>>, recorded_at: Option<SystemTime>) -> Self {
        Self {
            symbolizer: Symbolizer::builder().build(),
            generations,
            recorded_at,
            resolved: FxHashMap::default(),
            names: FxHashSet::default(),
            usable: HashMap::new(),
            comp_dirs: HashMap::new(),
            warnings: Vec::new(),
            warned: HashSet::new(),
        }
    }

    /// The frames of the return address `ip` recorded under `generation` (counted as an
    /// allocation's `native_segment_generation`: 1 for the first MEMORY_MAP_START), innermost
    /// first (inlined functions expanded, as memray's libbacktrace does); empty when `ip` is
    /// outside every segment of that generation (memray drops those frames).
    pub fn frames(&mut self, ip: u64, generation: usize) -> Rc<[NativeFrame]> {
        if let Some(frames) = self.resolved.get(&(ip, generation)) {
            return frames.clone();
        }
        let frames: Rc<[NativeFrame]> = match self.object_of(ip, generation) {
            None => Rc::from([]),
            Some((path, offset)) if self.check(&path, generation) => self.resolve(&path, offset),
            Some(_) => Rc::from([self.unknown()]),
        };
        self.resolved.insert((ip, generation), frames.clone());
        frames
    }

    /// The warnings found since the last call, one per file: a mapped file that is missing
    /// or changed since the capture.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// The file whose segment holds `ip`, and the virtual offset memray looks up there:
    /// `ip - 1` (inside the call instruction) less the load address.
    fn object_of(&self, ip: u64, generation: usize) -> Option<(PathBuf, u64)> {
        let objects = self.generations.get(generation.checked_sub(1)?)?;
        let object = objects.iter().find(|object| {
            object.segments.iter().any(|segment| {
                let start = object.load_address.wrapping_add(segment.vaddr);
                start <= ip && ip < start.wrapping_add(segment.memsz)
            })
        })?;
        Some((
            PathBuf::from(&object.filename),
            ip.wrapping_sub(1).wrapping_sub(object.load_address),
        ))
    }

    /// Whether `path` is the file the capture mapped; warns once per file when it is not.
    fn check(&mut self, path: &Path, generation: usize) -> bool {
        if let Some(&usable) = self.usable.get(path) {
            return usable;
        }
        let recorded = self.generations[generation - 1]
            .iter()
            .find(|object| Path::new(&object.filename) == path)
            .map(|object| object.segments.clone());
        let problem = match (std::fs::metadata(path), load_segments(path)) {
            (Err(_), _) => Some("is missing"),
            (Ok(_), segments) if segments != recorded => Some("changed since the capture"),
            (Ok(metadata), _) if self.modified_since_capture(&metadata) => {
                Some("changed since the capture")
            }
            _ => None,
        };
        if let Some(problem) = problem {
            if self.warned.insert(path.to_path_buf()) {
                self.warnings.push(format!(
                    "warning: {} {problem}: its native frames are shown as {UNKNOWN}",
                    path.display()
                ));
            }
        }
        self.usable.insert(path.to_path_buf(), problem.is_none());
        problem.is_none()
    }

    fn modified_since_capture(&self, metadata: &std::fs::Metadata) -> bool {
        match (self.recorded_at, metadata.modified()) {
            (Some(recorded_at), Ok(modified)) => modified > recorded_at,
            _ => false,
        }
    }

    fn resolve(&mut self, path: &Path, offset: u64) -> Rc<[NativeFrame]> {
        let source = Source::Elf(Elf::new(path));
        let Ok(Symbolized::Sym(symbol)) = self
            .symbolizer
            .symbolize_single(&source, Input::VirtOffset(offset))
        else {
            return Rc::from([self.unknown()]);
        };
        let no_unit = UnitDirs::default();
        if !self.comp_dirs.contains_key(path) {
            self.comp_dirs
                .insert(path.to_path_buf(), CompDirs::load(path));
        }
        let unit = self.comp_dirs[path].at(offset).unwrap_or(&no_unit);
        // blazesym lists inlined functions outermost first, each with its own location.
        let locations = symbol
            .inlined
            .iter()
            .rev()
            .map(|inlined| (&*inlined.name, inlined.code_info.as_ref()))
            .chain(std::iter::once((
                &*symbol.name,
                symbol.code_info.as_deref(),
            )));
        let names = &mut self.names;
        locations
            .map(|(function, code)| NativeFrame {
                function: shared(names, function),
                // The file as its unit's line table names it.
                file: match code {
                    None => shared(names, UNKNOWN),
                    Some(code) => {
                        let dir = code.dir.as_deref().unwrap_or(Path::new(""));
                        let file = unit.as_line_table_names_it(
                            &dir.to_string_lossy(),
                            &code.file.to_string_lossy(),
                        );
                        shared(names, &file)
                    }
                },
                line: code.and_then(|code| code.line).unwrap_or(0),
            })
            .collect()
    }

    fn unknown(&mut self) -> NativeFrame {
        let unknown = shared(&mut self.names, UNKNOWN);
        NativeFrame {
            function: unknown.clone(),
            file: unknown,
            line: 0,
        }
    }
}

/// The one copy of `name` in `names`.
fn shared(names: &mut FxHashSet<Arc<str>>, name: &str) -> Arc<str> {
    match names.get(name) {
        Some(known) => known.clone(),
        None => {
            let name: Arc<str> = name.into();
            names.insert(name.clone());
            name
        }
    }
}
