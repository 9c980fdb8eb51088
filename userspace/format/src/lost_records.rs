//! How many records a capture misses (the eBPF mode's probes found their
//! ring buffer full), written after the trailer: memray stops reading at the
//! trailer, so its reader and reporters see the capture as if it were not
//! there. Text ending in a newline, so that no trimming of the zero padding
//! that follows a capture can cut it.

const PREFIX: &[u8] = b"\nmemray-rs lost records: ";

/// Appends the note for `count` lost records (none for 0).
pub(crate) fn append(out: &mut Vec<u8>, count: u64) {
    if count > 0 {
        out.extend_from_slice(PREFIX);
        out.extend_from_slice(count.to_string().as_bytes());
        out.push(b'\n');
    }
}

/// The longest note (`u64::MAX` lost).
pub(crate) const MAX_LEN: usize = PREFIX.len() + 20 + 1;

/// The count in the note at the start of `after_trailer`, if there is one.
pub(crate) fn read(after_trailer: &[u8]) -> Option<u64> {
    let rest = after_trailer.strip_prefix(PREFIX)?;
    let end = rest.iter().position(|&b| b == b'\n')?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_reads_back_and_none_is_written_for_zero() {
        for count in [1, 34_324, u64::MAX] {
            let mut out = Vec::new();
            append(&mut out, count);
            assert!(out.len() <= MAX_LEN);
            out.extend_from_slice(&[0; 16]);
            assert_eq!(read(&out), Some(count));
        }
        let mut out = Vec::new();
        append(&mut out, 0);
        assert!(out.is_empty());
        assert_eq!(read(&[0; 64]), None);
    }
}
