//! Locations as memray's tree shows them: a Python file under one of the
//! tracked process's `sys.path` directories becomes its module name
//! (`memray.commands.run:83`), anything else stays a path.

use std::path::{Path, PathBuf};

pub struct ModuleNames {
    roots: Vec<PathBuf>,
}

impl ModuleNames {
    /// The `sys.path` entries that are directories on this machine, in order.
    pub fn new(sys_path: &[String]) -> ModuleNames {
        ModuleNames {
            roots: sys_path
                .iter()
                .map(PathBuf::from)
                .filter(|path| path.is_dir())
                .collect(),
        }
    }

    /// `module:line`, or the bare file when the line is unknown.
    pub fn location(&self, filename: &str, lineno: i32) -> String {
        if lineno == 0 {
            filename.to_owned()
        } else {
            format!("{}:{lineno}", self.module(filename))
        }
    }

    fn module(&self, filename: &str) -> String {
        let Some(stem) = filename.strip_suffix(".py") else {
            return filename.to_owned();
        };
        let stem = Path::new(stem);
        self.roots
            .iter()
            .find_map(|root| stem.strip_prefix(root).ok())
            .map_or_else(
                || filename.to_owned(),
                |relative| {
                    let dotted = relative.to_string_lossy().replace('/', ".");
                    dotted.replace(".__init__", "")
                },
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_files_under_sys_path_become_modules() {
        let root = tempfile::tempdir().unwrap();
        let root_str = root.path().to_str().unwrap().to_owned();
        let names = ModuleNames::new(&[format!("{root_str}/missing"), root_str.clone()]);
        assert_eq!(
            names.location(&format!("{root_str}/pkg/mod.py"), 3),
            "pkg.mod:3"
        );
        assert_eq!(
            names.location(&format!("{root_str}/pkg/__init__.py"), 1),
            "pkg:1"
        );
        assert_eq!(names.location("/elsewhere/x.py", 7), "/elsewhere/x.py:7");
        assert_eq!(names.location("<frozen runpy>", 88), "<frozen runpy>:88");
        assert_eq!(
            names.location(&format!("{root_str}/pkg/mod.py"), 0),
            format!("{root_str}/pkg/mod.py")
        );
    }
}
