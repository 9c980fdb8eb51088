//! Source lines for the tooltips, embedded per memray's
//! `--confidential-files` rule. Only the lines the graph refers to are
//! embedded, so a page never carries more of a file than its frames show.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;

use memray_html::FlameGraphBuilder;

/// Which files' lines may appear in a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConfidentialFiles {
    /// Every file is confidential: no source line is embedded.
    All,
    /// No file is confidential.
    None,
    /// memray's guess: `.py` files and world-readable or executable files
    /// are not confidential.
    #[default]
    Default,
}

impl ConfidentialFiles {
    /// From the command-line value: "all", "none" or "default".
    pub fn from_name(name: &str) -> Option<ConfidentialFiles> {
        match name {
            "all" => Some(ConfidentialFiles::All),
            "none" => Some(ConfidentialFiles::None),
            "default" => Some(ConfidentialFiles::Default),
            _ => None,
        }
    }

    fn allows(self, filename: &str) -> bool {
        match self {
            ConfidentialFiles::All => false,
            ConfidentialFiles::None => true,
            ConfidentialFiles::Default => !looks_confidential(filename),
        }
    }
}

/// memray's `is_confidential_file`: anything but a `.py` file, unless it is
/// world-readable or executable (files that cannot be examined count as
/// confidential).
fn looks_confidential(filename: &str) -> bool {
    if filename.ends_with(".py") {
        return false;
    }
    match std::fs::metadata(filename) {
        Ok(metadata) => metadata.permissions().mode() & 0o115 == 0,
        Err(_) => true,
    }
}

/// The lines a flame graph's frames point at, by file.
#[derive(Debug, Default)]
pub struct SourceLines {
    wanted: BTreeMap<String, BTreeSet<u32>>,
}

impl SourceLines {
    /// Line numbers below 1 point at no line of the file.
    pub fn want(&mut self, filename: &str, lineno: i32) {
        let Ok(lineno @ 1..) = u32::try_from(lineno) else {
            return;
        };
        match self.wanted.get_mut(filename) {
            Some(lines) => {
                lines.insert(lineno);
            }
            None => {
                self.wanted
                    .insert(filename.to_owned(), BTreeSet::from([lineno]));
            }
        }
    }

    /// Reads the wanted lines of every file `policy` allows and embeds them
    /// (other lines stay empty); unreadable files are left out.
    pub fn embed(self, policy: ConfidentialFiles, builder: &mut FlameGraphBuilder) {
        for (filename, wanted) in self.wanted {
            if !policy.allows(&filename) {
                continue;
            }
            let Ok(bytes) = std::fs::read(&filename) else {
                continue;
            };
            let text = String::from_utf8_lossy(&bytes);
            let last = wanted.last().copied().unwrap_or(0) as usize;
            let lines: Vec<String> = text
                .lines()
                .take(last)
                .enumerate()
                .map(|(i, line)| {
                    if wanted.contains(&(i as u32 + 1)) {
                        line.to_owned()
                    } else {
                        String::new()
                    }
                })
                .collect();
            builder.add_source(&filename, lines);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A fresh directory of this test process (no tempfile dependency here).
    fn scratch_dir(test: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("memray-sources-{}-{test}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn file_with_mode(dir: &std::path::Path, name: &str, mode: u32) -> String {
        let path = dir.join(name);
        fs::write(&path, "first\nsecret = 1\nthird\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path.to_string_lossy().into_owned()
    }

    #[test]
    fn the_default_rule_follows_memray() {
        let dir = scratch_dir("rule");
        let private = file_with_mode(&dir, "key.pem", 0o600);
        let readable = file_with_mode(&dir, "notes.txt", 0o644);
        let executable = file_with_mode(&dir, "tool", 0o700);
        let python = file_with_mode(&dir, "app.py", 0o600);
        assert!(looks_confidential(&private));
        assert!(!looks_confidential(&readable));
        assert!(!looks_confidential(&executable));
        assert!(!looks_confidential(&python));
        assert!(looks_confidential("/no/such/file.txt"));
        fs::remove_dir_all(dir).unwrap();
    }

    fn embedded(policy: ConfidentialFiles, file: &str) -> Vec<Vec<String>> {
        let mut lines = SourceLines::default();
        lines.want(file, 2);
        let mut builder = FlameGraphBuilder::new(crate::html_report::tests::metadata());
        lines.embed(policy, &mut builder);
        builder
            .finish()
            .sources
            .into_iter()
            .map(|s| s.lines)
            .collect()
    }

    #[test]
    fn only_wanted_lines_of_allowed_files_are_embedded() {
        let dir = scratch_dir("embed");
        let private = file_with_mode(&dir, "key.pem", 0o600);
        assert!(embedded(ConfidentialFiles::Default, &private).is_empty());
        assert!(embedded(ConfidentialFiles::All, &private).is_empty());
        assert_eq!(
            embedded(ConfidentialFiles::None, &private),
            [vec!["".to_owned(), "secret = 1".to_owned()]]
        );
        assert_eq!(
            ConfidentialFiles::from_name("none"),
            Some(ConfidentialFiles::None)
        );
        assert_eq!(ConfidentialFiles::from_name("some"), None);
        fs::remove_dir_all(dir).unwrap();
    }
}
