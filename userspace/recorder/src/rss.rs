//! Clock and resident-set-size readings for MEMORY_RECORDs, and how often
//! to take them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// memray's default `memory_interval_ms`: how often RSS is sampled.
pub const MEMORY_INTERVAL: Duration = Duration::from_millis(10);

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The process a capture describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    /// The calling process itself (the preload tracker).
    Current,
    /// Another process, by pid (the eBPF consumer).
    Other(u32),
}

impl Process {
    pub fn pid(self) -> u32 {
        match self {
            Process::Current => std::process::id(),
            Process::Other(pid) => pid,
        }
    }

    /// `VmRSS` + `HugetlbPages` from its `/proc/…/status`, in bytes (as
    /// memray reads it); 0 when unreadable (the process is gone).
    pub fn resident_set_size(self) -> u64 {
        let status = match self {
            Process::Current => std::fs::read_to_string("/proc/self/status"),
            Process::Other(pid) => std::fs::read_to_string(format!("/proc/{pid}/status")),
        };
        let Ok(status) = status else {
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
}
