//! Checks that a tracepoint field sits where the probes read it.

use crate::Error;

const TRACEFS_ROOTS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// Fails unless `field` of tracepoint `category/event` is at `offset` in its
/// `format` file.
pub fn check_field(
    (category, event): (&str, &str),
    field: &str,
    offset: usize,
) -> Result<(), Error> {
    let format = TRACEFS_ROOTS
        .iter()
        .find_map(|root| std::fs::read_to_string(format!("{root}/events/{category}/{event}/format")).ok())
        .ok_or_else(|| Error::Tracepoint(format!(
            "cannot read the format of {category}/{event}: is tracefs mounted? (mount -t tracefs nodev /sys/kernel/tracing)"
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
