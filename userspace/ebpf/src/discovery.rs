//! Finding the CPython processes running on the machine (`attach --all`):
//! those that map a libpython or run an executable named `python…` are the
//! candidates; reading their interpreter's runtime (`PythonProcess::attach`)
//! decides.

use std::path::Path;

use python_frames::maps::file_mappings;

/// The pids of the processes that may be CPythons, ours left out.
pub fn python_candidates() -> Vec<u32> {
    let own = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != own && looks_like_python(pid))
        .collect()
}

/// Whether process `pid` runs an executable named `python…` or maps a
/// libpython (a kernel thread or a process gone meanwhile does neither).
pub fn looks_like_python(pid: u32) -> bool {
    let named_python = std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .and_then(|exe| Some(is_python_name(exe.file_name()?.to_str()?)))
        .unwrap_or(false);
    named_python
        || std::fs::read_to_string(format!("/proc/{pid}/maps"))
            .map(|maps| maps_libpython(&maps))
            .unwrap_or(false)
}

fn is_python_name(name: &str) -> bool {
    name.starts_with("python")
}

fn maps_libpython(maps: &str) -> bool {
    file_mappings(maps).any(|mapping| {
        Path::new(mapping.path)
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.starts_with("libpython"))
    })
}

/// The command line of process `pid`, its arguments separated by spaces
/// (empty if it is gone).
pub fn command_line(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            raw.split(|&b| b == 0)
                .filter(|arg| !arg.is_empty())
                .map(String::from_utf8_lossy)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// memray's name of a capture of process `pid`: `memray-<its name>.<pid>.bin`.
pub fn capture_name(pid: u32) -> String {
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    format!("memray-{}.{pid}.bin", name.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapped_libpython_makes_a_candidate() {
        let maps = "\
7f00-7f10 r-xp 00000000 fe:01 12 /usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0
";
        assert!(maps_libpython(maps));
        assert!(!maps_libpython(
            "7f00-7f10 r-xp 00000000 fe:01 12 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
        ));
        assert!(is_python_name("python3.12"));
        assert!(!is_python_name("bash"));
    }

    #[test]
    fn captures_are_named_after_the_process() {
        let pid = std::process::id();
        let comm = std::fs::read_to_string("/proc/self/comm").expect("comm");
        assert_eq!(
            capture_name(pid),
            format!("memray-{}.{pid}.bin", comm.trim_end())
        );
        assert!(!command_line(pid).is_empty());
    }
}
