//! Source lines around a frame, for the detail panel (memray's tree shows
//! them through `linecache`). Files are read once; unreadable ones show nothing.

use std::collections::HashMap;
use std::sync::Arc;

#[derive(Default)]
pub struct Sources {
    files: HashMap<Arc<str>, Option<Vec<String>>>,
}

/// Lines of a file around one line.
pub struct Excerpt<'s> {
    /// 1-based number of `lines[0]`.
    pub first_lineno: usize,
    pub lines: &'s [String],
}

impl Sources {
    /// Up to `height` lines of `filename` centred on `lineno` (1-based).
    pub fn around(
        &mut self,
        filename: &Arc<str>,
        lineno: i32,
        height: usize,
    ) -> Option<Excerpt<'_>> {
        let lines = self
            .files
            .entry(filename.clone())
            .or_insert_with(|| read_lines(filename))
            .as_deref()?;
        let line = usize::try_from(lineno)
            .ok()
            .filter(|&l| l >= 1 && l <= lines.len())?;
        let first = line.saturating_sub(height / 2).max(1);
        let last = (first + height).min(lines.len() + 1);
        Some(Excerpt {
            first_lineno: first,
            lines: &lines[first - 1..last - 1],
        })
    }
}

fn read_lines(filename: &str) -> Option<Vec<String>> {
    let bytes = std::fs::read(filename).ok()?;
    Some(
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(|line| line.replace('\t', "    "))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_is_centred_and_clamped_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.py");
        std::fs::write(
            &path,
            (1..=10).map(|i| format!("line{i}\n")).collect::<String>(),
        )
        .unwrap();
        let name: Arc<str> = path.to_str().unwrap().into();
        let mut sources = Sources::default();
        let middle = sources.around(&name, 5, 4).unwrap();
        assert_eq!((middle.first_lineno, middle.lines.len()), (3, 4));
        assert_eq!(middle.lines[2], "line5");
        let start = sources.around(&name, 1, 4).unwrap();
        assert_eq!((start.first_lineno, start.lines[0].as_str()), (1, "line1"));
        let end = sources.around(&name, 10, 4).unwrap();
        assert_eq!(end.lines.last().unwrap(), "line10");
        assert!(sources.around(&name, 11, 4).is_none());
        assert!(sources.around(&"/no/such/file.py".into(), 1, 4).is_none());
    }
}
