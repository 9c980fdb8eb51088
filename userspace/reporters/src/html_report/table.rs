//! The table model of a capture (memray's `TableReporter`): one row per
//! thread (unless merged), allocator and top frame.

use std::collections::HashMap;

use memray_analysis::{AllocationGroup, AnalysisError, CaptureFile, StackResolver};
use memray_html::{ReportKind, Table, TableRow};

use super::stacks::thread_label;
use crate::input::{select, Selection};

/// memray's text for an allocation without a Python stack.
const NO_STACK: &str = "???";

/// The table of `capture`'s allocations that `selection` picks.
pub fn table_model(
    capture: &CaptureFile,
    selection: Selection,
    merge_threads: bool,
) -> Result<Table, AnalysisError> {
    let (overview, groups) = select(capture, selection, merge_threads)?;
    let kind = match selection {
        Selection::HighWaterMark => ReportKind::Peak,
        Selection::Leaks => ReportKind::Leaks,
        Selection::Temporary(_) => ReportKind::Temporary,
    };
    let metadata = super::page_metadata(capture, &overview, kind, merge_threads);
    Ok(Table {
        metadata,
        rows: rows(&groups, capture, merge_threads),
    })
}

/// Groups sharing the displayed fields become one row, in capture order. A
/// row shows the whole stack only when all its groups share it.
pub(super) fn rows(
    groups: &[AllocationGroup],
    stacks: &dyn StackResolver,
    merge_threads: bool,
) -> Vec<TableRow> {
    let mut rows: Vec<TableRow> = Vec::new();
    let mut row_of: HashMap<(String, &'static str, String), usize> = HashMap::new();
    for group in groups {
        let frames: Vec<String> = stacks
            .stack((&group.allocation).into())
            .iter()
            .map(|f| format!("{} at {}:{}", f.function, f.filename, f.lineno))
            .collect();
        let location = frames.first().map_or(NO_STACK, String::as_str).to_owned();
        let thread = thread_label(stacks, group.tid());
        let allocator = group.allocation.allocator.name();
        let key_thread = if merge_threads {
            String::new()
        } else {
            thread.clone()
        };
        let key = (key_thread, allocator, location.clone());
        match row_of.get(&key) {
            Some(&index) => {
                let row = &mut rows[index];
                row.size += group.size;
                row.n_allocations += group.n_allocations;
                if row.stack != frames {
                    row.stack.clear();
                }
            }
            None => {
                row_of.insert(key, rows.len());
                rows.push(TableRow {
                    process: String::new(),
                    thread,
                    size: group.size,
                    allocator: allocator.to_owned(),
                    n_allocations: group.n_allocations,
                    location,
                    stack: frames,
                });
            }
        }
    }
    rows
}
