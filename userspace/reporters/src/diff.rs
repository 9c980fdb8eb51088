//! `memray diff OLD NEW`: by allocating location (the leaf Python frame),
//! how the memory at the peak and the leaked memory changed.

use std::collections::HashMap;

use memray_analysis::{AllocationGroup, StackResolver};

use crate::size::size_fmt;
use crate::table::{self, Align};

/// Bytes and allocations per location label, in first-seen order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ByLocation {
    order: Vec<String>,
    totals: HashMap<String, (u64, u64)>,
}

impl ByLocation {
    pub fn new(groups: &[AllocationGroup], stacks: &dyn StackResolver) -> ByLocation {
        let mut by = ByLocation::default();
        for group in groups {
            let stack = stacks.python_stack(group.allocation.python_node, group.tid());
            let label = stack.first().map_or_else(
                || "<unknown location>".to_owned(),
                |f| format!("{} at {}:{}", f.function, f.filename, f.lineno),
            );
            let entry = by.totals.entry(label.clone()).or_insert_with(|| {
                by.order.push(label);
                (0, 0)
            });
            entry.0 += group.size;
            entry.1 += group.n_allocations;
        }
        by
    }

    fn get(&self, label: &str) -> (u64, u64) {
        self.totals.get(label).copied().unwrap_or_default()
    }

    fn total(&self) -> u64 {
        self.totals.values().map(|t| t.0).sum()
    }
}

/// One changed location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub location: String,
    pub old: (u64, u64),
    pub new: (u64, u64),
}

impl Change {
    pub fn delta(&self) -> i128 {
        i128::from(self.new.0) - i128::from(self.old.0)
    }
}

/// Locations whose bytes or counts differ, largest absolute change first.
pub fn changes(old: &ByLocation, new: &ByLocation) -> Vec<Change> {
    let mut labels: Vec<&String> = old.order.iter().collect();
    labels.extend(new.order.iter().filter(|l| !old.totals.contains_key(*l)));
    let mut changes: Vec<Change> = labels
        .into_iter()
        .map(|l| Change {
            location: l.clone(),
            old: old.get(l),
            new: new.get(l),
        })
        .filter(|c| c.old != c.new)
        .collect();
    changes.sort_by_key(|c| std::cmp::Reverse(c.delta().abs()));
    changes
}

fn signed_size(delta: i128) -> String {
    let sign = if delta < 0 { "-" } else { "+" };
    format!("{sign}{}", size_fmt(delta.unsigned_abs() as u64))
}

/// One section ("Peak memory", "Leaks") of the report.
pub fn render_section(title: &str, old: &ByLocation, new: &ByLocation, max_rows: usize) -> String {
    let total_delta = i128::from(new.total()) - i128::from(old.total());
    let mut out = format!(
        "{title}: {} -> {} ({})\n",
        size_fmt(old.total()),
        size_fmt(new.total()),
        signed_size(total_delta)
    );
    let all = changes(old, new);
    if all.is_empty() {
        out.push_str("No location changed.\n");
        return out;
    }
    let headers: Vec<String> = ["Location", "Old", "New", "Change", "Old count", "New count"]
        .iter()
        .map(|h| h.to_string())
        .collect();
    let rows: Vec<Vec<String>> = all
        .iter()
        .take(max_rows)
        .map(|c| {
            vec![
                c.location.clone(),
                size_fmt(c.old.0),
                size_fmt(c.new.0),
                signed_size(c.delta()),
                c.old.1.to_string(),
                c.new.1.to_string(),
            ]
        })
        .collect();
    let mut aligns = vec![Align::Right; headers.len()];
    aligns[0] = Align::Left;
    out.push_str(&table::render(&headers, &aligns, &rows, None));
    if all.len() > max_rows {
        out.push_str(&format!(
            "... and {} more locations\n",
            all.len() - max_rows
        ));
    }
    out
}
