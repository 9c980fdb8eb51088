//! Checks that a tracepoint field sits where the probes read it, mounting
//! tracefs where nothing has (systemd mounts it at boot; a container or a
//! minimal VM may not, and aya finds tracepoints through it too).

use std::ffi::CStr;

use crate::Error;

const TRACEFS_ROOTS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// Fails unless `field` of tracepoint `category/event` is at `offset` in its
/// `format` file.
pub fn check_field(
    (category, event): (&str, &str),
    field: &str,
    offset: usize,
) -> Result<(), Error> {
    let format = read_format(category, event)
        .or_else(|| mount().then(|| read_format(category, event)).flatten())
        .ok_or_else(|| Error::Tracepoint(format!(
            "cannot read the format of {category}/{event}: tracefs is not mounted and could not be (mount -t tracefs nodev /sys/kernel/tracing)"
        )))?;
    let found = format.lines().find_map(|line| field_offset(line, field));
    if found == Some(offset) {
        Ok(())
    } else {
        Err(Error::Tracepoint(format!(
            "{category}/{event}: field {field} is at {found:?} in this kernel, the probes read it at {offset}"
        )))
    }
}

fn read_format(category: &str, event: &str) -> Option<String> {
    TRACEFS_ROOTS.iter().find_map(|root| {
        std::fs::read_to_string(format!("{root}/events/{category}/{event}/format")).ok()
    })
}

/// Mounts tracefs where systemd would; whether it could.
fn mount() -> bool {
    const SOURCE: &CStr = c"nodev";
    const TARGET: &CStr = c"/sys/kernel/tracing";
    const KIND: &CStr = c"tracefs";
    // SAFETY: three NUL-terminated strings that outlive the call, and no
    // data (tracefs takes no required options).
    let mounted = unsafe {
        libc::mount(
            SOURCE.as_ptr(),
            TARGET.as_ptr(),
            KIND.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    mounted == 0
}

/// `offset` of a format line such as `field:pid_t pid;<TAB>offset:24;<TAB>size:4;<TAB>signed:1;`
/// when it declares `field`.
fn field_offset(line: &str, field: &str) -> Option<usize> {
    let mut parts = line.split(';');
    let declaration = parts.next()?.trim();
    if declaration.rsplit(' ').next()? != field {
        return None;
    }
    parts.next()?.trim().strip_prefix("offset:")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::field_offset;

    #[test]
    fn reads_the_offset_of_the_named_field() {
        let line = "\tfield:pid_t child_pid;\toffset:20;\tsize:4;\tsigned:1;";
        assert_eq!(field_offset(line, "child_pid"), Some(20));
        assert_eq!(field_offset(line, "pid"), None);
    }
}
