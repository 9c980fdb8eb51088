//! What reports over several processes' captures share (a `--follow-fork`
//! run's `<out>` and `<out>.<pid>`, a directory of `attach --ebpf --all`
//! captures): how a process is named, and the processes' memory together,
//! whose peak is the peak of their summed heap over time, not the sum of
//! their own peaks (processes seldom peak at the same moment).

use memray_analysis::processes::{combined_memory, heap_peak};
use memray_analysis::{MemorySnapshot, Overview};
use memray_format::Header;

use crate::size::size_fmt;
use crate::table::{self, Align};

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

    /// What the total's peak is, in words, for the terminal reports.
    pub fn peak_note(&self) -> String {
        format!(
            "(the peak of their summed heap over time; the sum of their own peaks is {})",
            size_fmt(self.sum_of_peaks)
        )
    }
}

/// The terminal table of a report over several processes: the process
/// first, then its `cells` under `headers`, and a last row, `total`, for
/// all of them.
pub(crate) fn processes_table<P>(
    processes: &[P],
    label: impl Fn(&P) -> &str,
    headers: &[&str],
    cells: impl Fn(&P) -> Vec<String>,
    total: Vec<String>,
    max_width: Option<usize>,
) -> String {
    let headers: Vec<String> = std::iter::once("Process")
        .chain(headers.iter().copied())
        .map(str::to_owned)
        .collect();
    let mut rows: Vec<Vec<String>> = processes
        .iter()
        .map(|p| {
            std::iter::once(label(p).to_owned())
                .chain(cells(p))
                .collect()
        })
        .collect();
    rows.push(
        std::iter::once(format!("All {} processes", processes.len()))
            .chain(total)
            .collect(),
    );
    let mut aligns = vec![Align::Right; headers.len()];
    aligns[0] = Align::Left;
    table::render(&headers, &aligns, &rows, max_width)
}
