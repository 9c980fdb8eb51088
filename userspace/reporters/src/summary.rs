//! `memray summary`: per (function, file), the memory allocated there and
//! below, as memray's `SummaryReporter` computes it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use memray_analysis::{AllocationGroup, StackResolver};

use crate::processes::{processes_table, Together};
use crate::size::size_fmt;
use crate::table::{self, Align};

/// memray stops adding allocations once they cover this share of memory.
const MAX_MEMORY_RATIO: f64 = 0.95;

/// The column a summary is sorted by, 1-5 as on memray's command line.
pub const N_COLUMNS: usize = 5;

const HEADERS: [&str; 6] = [
    "Location",
    "Total Memory",
    "Total Memory %",
    "Own Memory",
    "Own Memory % ",
    "Allocation Count",
];

/// One (function, file) row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryRow {
    pub function: Arc<str>,
    pub file: Arc<str>,
    pub total_memory: u64,
    pub own_memory: u64,
    pub n_allocations: u64,
}

/// The summary's data: rows in first-seen order and the totals percentages use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub rows: Vec<SummaryRow>,
    pub total_memory: u64,
    pub total_allocations: u64,
}

impl Summary {
    /// memray's `aggregate_allocations` over groups in capture order.
    pub fn new(groups: &[AllocationGroup], stacks: &dyn StackResolver) -> Summary {
        let total_memory: u64 = groups.iter().map(|g| g.size).sum();
        let total_allocations = groups.iter().map(|g| g.n_allocations).sum();
        let threshold = MAX_MEMORY_RATIO * total_memory as f64;
        let mut rows: Vec<SummaryRow> = Vec::new();
        let mut index: HashMap<(Arc<str>, Arc<str>), usize> = HashMap::new();
        let mut row_for = |function: &Arc<str>, file: &Arc<str>| -> usize {
            *index
                .entry((function.clone(), file.clone()))
                .or_insert_with(|| {
                    rows.push(SummaryRow {
                        function: function.clone(),
                        file: file.clone(),
                        total_memory: 0,
                        own_memory: 0,
                        n_allocations: 0,
                    });
                    rows.len() - 1
                })
        };
        let unknown: Arc<str> = "???".into();
        let mut covered = 0u64;
        let mut own_and_total = Vec::new();
        for group in groups {
            if covered as f64 >= threshold {
                break;
            }
            covered += group.size;
            let stack = stacks.stack((&group.allocation).into());
            if stack.is_empty() {
                own_and_total.push((row_for(&unknown, &unknown), true, group));
                continue;
            }
            let mut visited = HashSet::new();
            for (depth, frame) in stack.iter().enumerate() {
                let row = row_for(&frame.function, &frame.filename);
                if visited.insert(row) {
                    own_and_total.push((row, depth == 0, group));
                }
            }
        }
        for (row, own, group) in own_and_total {
            let row = &mut rows[row];
            if own {
                row.own_memory += group.size;
            }
            row.total_memory += group.size;
            row.n_allocations += group.n_allocations;
        }
        Summary {
            rows,
            total_memory,
            total_allocations,
        }
    }

    /// Rows sorted by `sort_column` (1-5), largest first, at most `max_rows`.
    pub fn sorted(&self, sort_column: usize, max_rows: usize) -> Vec<&SummaryRow> {
        let key = |row: &SummaryRow| match sort_column {
            1 | 2 => row.total_memory,
            3 | 4 => row.own_memory,
            _ => row.n_allocations,
        };
        let mut rows: Vec<&SummaryRow> = self.rows.iter().collect();
        rows.sort_by_key(|row| std::cmp::Reverse(key(row)));
        rows.truncate(max_rows);
        rows
    }

    /// The table as text, fitted to `max_width` columns if given (memray
    /// fits its terminal), else as wide as its cells.
    pub fn render(&self, sort_column: usize, max_rows: usize, max_width: Option<usize>) -> String {
        let percent = |part: u64, whole: u64| {
            if whole == 0 {
                0.0
            } else {
                part as f64 / whole as f64 * 100.0
            }
        };
        let mut headers: Vec<String> = HEADERS.iter().map(|h| h.to_string()).collect();
        headers[sort_column] = format!("<{}>", headers[sort_column]);
        let rows: Vec<Vec<String>> = self
            .sorted(sort_column, max_rows)
            .into_iter()
            .map(|row| {
                vec![
                    format!("{} at {}", row.function, row.file),
                    size_fmt(row.total_memory),
                    format!("{:.2}%", percent(row.total_memory, self.total_memory)),
                    size_fmt(row.own_memory),
                    format!("{:.2}%", percent(row.own_memory, self.total_memory)),
                    row.n_allocations.to_string(),
                ]
            })
            .collect();
        let mut aligns = vec![Align::Right; HEADERS.len()];
        aligns[0] = Align::Left;
        table::render(&headers, &aligns, &rows, max_width)
    }
}

/// One process's summary in a report over several captures.
pub struct ProcessSummary {
    pub label: String,
    pub summary: Summary,
}

/// Each process's table (what its own `memray summary` prints) under its
/// name, then one row per process with its total and the processes'
/// total, and the peak of their summed heap over time.
pub fn render_processes(
    processes: &[ProcessSummary],
    together: &Together,
    sort_column: usize,
    max_rows: usize,
    max_width: Option<usize>,
) -> String {
    let mut out = String::new();
    for process in processes {
        out.push_str(&process.label);
        out.push('\n');
        out.push_str(&process.summary.render(sort_column, max_rows, max_width));
        out.push('\n');
    }
    let total_memory: u64 = processes.iter().map(|p| p.summary.total_memory).sum();
    let percent = |part: u64| {
        if total_memory == 0 {
            0.0
        } else {
            part as f64 / total_memory as f64 * 100.0
        }
    };
    let cells = |memory: u64, allocations: u64| {
        vec![
            size_fmt(memory),
            format!("{:.2}%", percent(memory)),
            allocations.to_string(),
        ]
    };
    out.push_str(&processes_table(
        processes,
        |p| &p.label,
        &["Total Memory", "Total Memory %", "Allocation Count"],
        |p| cells(p.summary.total_memory, p.summary.total_allocations),
        cells(
            total_memory,
            processes.iter().map(|p| p.summary.total_allocations).sum(),
        ),
        max_width,
    ));
    out.push_str(&format!(
        "Peak memory usage of all processes together: {} {}\n",
        size_fmt(together.peak),
        together.peak_note()
    ));
    out
}
