//! Clock and resident-set-size readings for MEMORY_RECORDs.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `VmRSS` + `HugetlbPages` from /proc/self/status, in bytes (as memray reads it).
pub fn resident_set_size() -> u64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    status
        .lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(':')?;
            matches!(key, "VmRSS" | "HugetlbPages").then_some(value)
        })
        .filter_map(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .sum::<u64>()
        * 1024
}
