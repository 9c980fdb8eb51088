//! The one reader of `/proc/PID/maps` text: which files a process maps, where and how.
//! Here because this is the lowest crate that needs it (finding the interpreter);
//! `memray-unwind` (another process's objects), `memray-ebpf` (its libc and allocators)
//! and the benchmarks read maps through it too.

/// One line of `/proc/PID/maps` that maps a file.
#[derive(Debug, PartialEq, Eq)]
pub struct FileMapping<'a> {
    /// `[start, end)`.
    pub start: u64,
    pub end: u64,
    /// The file offset mapped at `start`.
    pub offset: u64,
    pub executable: bool,
    /// The file was deleted (or replaced) since it was mapped: `path` now
    /// names another file, or none.
    pub deleted: bool,
    /// As the process sees it (spaces kept, ` (deleted)` left out).
    pub path: &'a str,
}

/// The file mappings of a `/proc/PID/maps` text, in address order
/// (anonymous and special mappings such as `[vdso]` left out).
pub fn file_mappings(maps: &str) -> impl Iterator<Item = FileMapping<'_>> {
    maps.lines().filter_map(|line| {
        let mut fields = line.splitn(6, ' ');
        let (range, permissions, offset) = (fields.next()?, fields.next()?, fields.next()?);
        let path = fields.nth(2)?.trim_start();
        if !path.starts_with('/') {
            return None;
        }
        let (path, deleted) = match path.strip_suffix(" (deleted)") {
            Some(path) => (path, true),
            None => (path, false),
        };
        let (start, end) = range.split_once('-')?;
        Some(FileMapping {
            start: u64::from_str_radix(start, 16).ok()?,
            end: u64::from_str_radix(end, 16).ok()?,
            offset: u64::from_str_radix(offset, 16).ok()?,
            executable: permissions.contains('x'),
            deleted,
            path,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_mappings_keep_spaces_and_tell_deleted_files() {
        let maps = "\
7f0000000000-7f0000028000 r--p 00000000 fe:01 1234 /usr/lib/x86_64-linux-gnu/libc.so.6
7f0000028000-7f000017d000 r-xp 00028000 fe:01 1234 /usr/lib/x86_64-linux-gnu/libc.so.6
7f1000000000-7f1000001000 r-xp 00000000 fe:01 99 /opt/my lib/libx.so (deleted)
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]
7ffe00000000-7ffe00002000 rw-p 00000000 00:00 0
";
        let found: Vec<_> = file_mappings(maps).collect();
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(
            found[1],
            FileMapping {
                start: 0x7f0000028000,
                end: 0x7f000017d000,
                offset: 0x28000,
                executable: true,
                deleted: false,
                path: "/usr/lib/x86_64-linux-gnu/libc.so.6",
            }
        );
        assert!(!found[0].executable);
        assert_eq!(
            (found[2].path, found[2].deleted),
            ("/opt/my lib/libx.so", true)
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_maps_its_own_executable() {
        let maps = std::fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps");
        let executable = std::env::current_exe().expect("current_exe");
        let code = this_process_maps_its_own_executable as *const () as u64;
        let holding = file_mappings(&maps)
            .find(|mapping| (mapping.start..mapping.end).contains(&code))
            .expect("a file mapping holds this function");
        assert!(holding.executable, "{holding:?}");
        assert_eq!(holding.path, executable.to_str().unwrap());
    }
}
