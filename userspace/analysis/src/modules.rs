//! Which top-level module a stack belongs to, with the rules of memray's
//! `module_tools.py` and the paths the capture header recorded.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use crate::stack::Frame;

/// The interpreter's search paths as recorded in a v13 header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathInfo {
    /// The stdlib directory (`LIBDEST`), if known.
    pub stdlib: Option<PathBuf>,
    pub site_packages: Vec<PathBuf>,
    pub sys_path: Vec<PathBuf>,
}

impl PathInfo {
    /// From the header's raw strings; empty entries mean "unknown".
    pub fn from_header(libdest: &str, site_packages: &[String], sys_path: &[String]) -> PathInfo {
        let paths = |list: &[String]| {
            list.iter()
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .collect()
        };
        PathInfo {
            stdlib: (!libdest.is_empty()).then(|| PathBuf::from(libdest)),
            site_packages: paths(site_packages),
            sys_path: paths(sys_path),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ModuleType {
    Stdlib,
    Other,
}

/// Resolves file names to modules, caching per file name.
#[derive(Debug, Default)]
pub struct ModuleResolver {
    paths: PathInfo,
    cache: HashMap<String, (String, ModuleType)>,
}

/// Dotted module name of a path relative to a search directory.
fn path_to_module(relative: &Path) -> String {
    let trimmed: PathBuf = if relative.file_name().is_some_and(|n| n == "__init__.py") {
        relative.parent().map(Path::to_path_buf).unwrap_or_default()
    } else if relative.extension().is_some_and(|e| e == "py") {
        relative.with_extension("")
    } else {
        relative.to_path_buf()
    };
    trimmed
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(".")
}

impl ModuleResolver {
    pub fn new(paths: PathInfo) -> ModuleResolver {
        ModuleResolver {
            paths,
            cache: HashMap::new(),
        }
    }

    fn classify(&self, filename: &str) -> (String, ModuleType) {
        if filename.is_empty() {
            return ("unknown".to_owned(), ModuleType::Other);
        }
        if let Some(rest) = filename.strip_prefix("<frozen ") {
            let name = rest
                .strip_suffix('>')
                .unwrap_or(&rest[..rest.len().saturating_sub(1)]);
            return (name.to_owned(), ModuleType::Stdlib);
        }
        let path = Path::new(filename);
        let relative_to = |base: &PathBuf| path.strip_prefix(base).ok().map(path_to_module);
        if let Some(module) = self.paths.site_packages.iter().find_map(relative_to) {
            return (module, ModuleType::Other);
        }
        if let Some(module) = self.paths.stdlib.as_ref().and_then(relative_to) {
            return (module, ModuleType::Stdlib);
        }
        if let Some(module) = self.paths.sys_path.iter().find_map(relative_to) {
            return (module, ModuleType::Other);
        }
        let name = path.file_name().map(Path::new).unwrap_or(path);
        (path_to_module(name), ModuleType::Other)
    }

    /// The top-level package of the first non-stdlib frame, walking leaf to
    /// root; `<root>` for memray's own frames or when there is none.
    pub fn module_for_stack(&mut self, stack: &[Frame]) -> String {
        for frame in stack {
            let filename: &str = &frame.filename;
            if !self.cache.contains_key(filename) {
                let classified = self.classify(filename);
                self.cache.insert(filename.to_owned(), classified);
            }
            let (module, kind) = &self.cache[filename];
            if *kind != ModuleType::Stdlib {
                let top_level = module.split('.').next().unwrap_or_default();
                if top_level == "memray" {
                    return "<root>".to_owned();
                }
                return top_level.to_owned();
            }
        }
        "<root>".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver() -> ModuleResolver {
        ModuleResolver::new(PathInfo::from_header(
            "/usr/lib/python3.11",
            &["/venv/lib/python3.11/site-packages".to_owned()],
            &["/project".to_owned(), "/usr/lib/python3.11".to_owned()],
        ))
    }

    fn stack(files: &[&str]) -> Vec<Frame> {
        files.iter().map(|f| Frame::new("f", f, 1)).collect()
    }

    #[test]
    fn first_non_stdlib_frame_names_the_module() {
        let mut r = resolver();
        let s = stack(&[
            "/usr/lib/python3.11/json/decoder.py",
            "<frozen importlib._bootstrap>",
            "/venv/lib/python3.11/site-packages/numpy/core/__init__.py",
        ]);
        assert_eq!(r.module_for_stack(&s), "numpy");
        assert_eq!(r.module_for_stack(&stack(&["/project/app/main.py"])), "app");
        assert_eq!(r.module_for_stack(&stack(&["/elsewhere/tool.py"])), "tool");
        assert_eq!(r.module_for_stack(&stack(&["<string>"])), "<string>");
    }

    #[test]
    fn memray_and_stdlib_only_stacks_are_root() {
        let mut r = resolver();
        let memray = "/venv/lib/python3.11/site-packages/memray/commands/run.py";
        assert_eq!(r.module_for_stack(&stack(&[memray])), "<root>");
        assert_eq!(
            r.module_for_stack(&stack(&["/usr/lib/python3.11/runpy.py"])),
            "<root>"
        );
        assert_eq!(r.module_for_stack(&[]), "<root>");
    }
}
