//! Whether this process may load the probes: root, or CAP_BPF and CAP_PERFMON.

use crate::Error;

const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Fails with one line saying what is needed unless the probes can be loaded.
pub fn require() -> Result<(), Error> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return Ok(());
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if effective_capabilities(&status).is_some_and(allows_probes) {
        Ok(())
    } else {
        Err(Error::Privileges)
    }
}

fn effective_capabilities(status: &str) -> Option<u64> {
    let mask = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))?;
    u64::from_str_radix(mask.trim(), 16).ok()
}

fn allows_probes(capabilities: u64) -> bool {
    let has = |capability: u32| capabilities & (1 << capability) != 0;
    has(CAP_BPF) && has(CAP_PERFMON)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_both_capabilities() {
        let status = "Name:\tx\nCapEff:\t000000c000000000\n";
        assert_eq!(effective_capabilities(status), Some(0xc0_0000_0000));
        assert!(allows_probes(0xc0_0000_0000));
        assert!(!allows_probes(1 << CAP_BPF));
        assert!(!allows_probes(0));
    }
}
