//! Mount tables (`/proc/PID/mountinfo`): where a file of a process in
//! another mount namespace (a container) is in this one. `/proc/PID/root`
//! reaches it only while the process lives; the filesystem it is on is
//! usually mounted here too (a container's root is a directory or an
//! overlay of the host), and then the file has a lasting path.

use std::path::{Path, PathBuf};

/// One line of a mount table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// `major:minor` of the filesystem.
    pub device: String,
    /// The directory of the filesystem mounted (`/` for all of it).
    pub root: PathBuf,
    pub mount_point: PathBuf,
}

/// The mounts of a `mountinfo` text, in its order (later ones over earlier).
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            // id, parent id, major:minor, root, mount point, …
            let mut fields = line.split(' ').skip(2);
            Some(Mount {
                device: fields.next()?.to_string(),
                root: PathBuf::from(unescape(fields.next()?)),
                mount_point: PathBuf::from(unescape(fields.next()?)),
            })
        })
        .collect()
}

/// Where `path` of a process with mount table `theirs` may be in the
/// namespace with mount table `ours`: the same file of the same filesystem,
/// through each of our mounts that holds it (best first). The caller checks
/// that a candidate is the same file.
pub fn translations(theirs: &[Mount], ours: &[Mount], path: &Path) -> Vec<PathBuf> {
    // The last mount on the longest prefix is the one that covers it.
    let Some(mount) = theirs
        .iter()
        .rev()
        .filter(|mount| path.starts_with(&mount.mount_point))
        .max_by_key(|mount| mount.mount_point.components().count())
    else {
        return Vec::new();
    };
    let Ok(inside) = path.strip_prefix(&mount.mount_point) else {
        return Vec::new();
    };
    let in_filesystem = mount.root.join(inside);
    ours.iter()
        .rev()
        .filter(|our| our.device == mount.device)
        .filter_map(|our| {
            let rest = in_filesystem.strip_prefix(&our.root).ok()?;
            Some(our.mount_point.join(rest))
        })
        .collect()
}

/// mountinfo writes space, tab, newline and backslash in octal (`\040`).
fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut rest = field;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 4);
        match code.and_then(|digits| u8::from_str_radix(digits, 8).ok()) {
            Some(byte) => {
                out.push(char::from(byte));
                rest = &rest[at + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw
31 27 0:40 / /var/lib/docker/overlay2/abc/merged rw - overlay overlay rw
32 27 0:41 / /tmp rw - tmpfs tmpfs rw
";

    #[test]
    fn a_container_root_on_a_host_directory() {
        // pivot_root into /tmp/box (on the host's tmpfs), a bind mount of
        // /opt/python 3 at /opt/py.
        let container = parse_mountinfo(
            "100 99 0:41 /box / rw - tmpfs tmpfs rw\n\
             101 100 8:1 /opt/python\\0403 /opt/py ro - ext4 /dev/sda1 rw\n",
        );
        let host = parse_mountinfo(HOST);
        assert_eq!(
            translations(&container, &host, Path::new("/usr/lib/libc.so.6")),
            [PathBuf::from("/tmp/box/usr/lib/libc.so.6")]
        );
        assert_eq!(
            translations(&container, &host, Path::new("/opt/py/bin/python3")),
            [PathBuf::from("/opt/python 3/bin/python3")]
        );
    }

    #[test]
    fn an_overlay_root_is_the_hosts_merged_directory() {
        let container = parse_mountinfo("200 199 0:40 / / rw - overlay overlay rw\n");
        let host = parse_mountinfo(HOST);
        assert_eq!(
            translations(&container, &host, Path::new("/usr/lib/libpython3.12.so")),
            [PathBuf::from(
                "/var/lib/docker/overlay2/abc/merged/usr/lib/libpython3.12.so"
            )]
        );
    }

    #[test]
    fn a_filesystem_mounted_only_in_the_container_has_none() {
        let container = parse_mountinfo("300 299 0:99 / / rw - tmpfs tmpfs rw\n");
        let host = parse_mountinfo(HOST);
        assert!(translations(&container, &host, Path::new("/usr/lib/libc.so.6")).is_empty());
    }
}
