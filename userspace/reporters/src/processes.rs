//! What reports over several processes' captures share (a `--follow-fork`
//! run's `<out>` and `<out>.<pid>`, a directory of `attach --ebpf --all`
//! captures): how a process is named, and the processes' memory together,
//! whose peak is the peak of their summed heap over time, not the sum of
//! their own peaks (processes seldom peak at the same moment).

use memray_analysis::processes::{combined_memory, heap_peak};
use memray_analysis::{MemorySnapshot, Overview};
use memray_format::Header;

/// How reports name a process: its pid, then its command line (the pid
/// first, since a fork pool's processes share their command line).
pub fn process_label(header: &Header) -> String {
    format!("pid {}: {}", header.pid, header.command_line)
}

/// The processes' memory over time, summed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Together {
    /// A sample at every time any process has one.
    pub memory: Vec<MemorySnapshot>,
    /// The highest summed heap (0 without any memory snapshot).
    pub peak: u64,
    /// When the summed heap first reached `peak` (milliseconds since the epoch).
    pub peak_time_ms: Option<u64>,
    /// What adding the processes' own peaks would claim instead.
    pub sum_of_peaks: u64,
}

impl Together {
    /// From each process's overview, made with every memory snapshot kept
    /// (no `--max-memory-records` thinning, which could skip the peak).
    pub fn new(overviews: &[&Overview]) -> Together {
        let timelines: Vec<&[MemorySnapshot]> =
            overviews.iter().map(|o| o.memory.as_slice()).collect();
        let memory = combined_memory(&timelines);
        let peak = heap_peak(&memory);
        Together {
            peak: peak.map_or(0, |s| s.heap),
            peak_time_ms: peak.map(|s| s.time_ms),
            sum_of_peaks: overviews.iter().map(|o| o.high_water_mark.bytes).sum(),
            memory,
        }
    }
}
