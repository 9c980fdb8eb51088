//! What the user chose to see of the latest [`Snapshot`]: the sort column,
//! the thread (or all of them merged), pause and scroll; and the table
//! rows that follow from it. Plain state, changed only by [`View::apply`].

use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;

use crate::snapshot::{Location, Snapshot};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    Total,
    Own,
    Allocations,
}

/// What a key asks of the view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Sort(SortBy),
    NextThread,
    PreviousThread,
    ToggleMerge,
    TogglePause,
    Scroll(isize),
}

/// One row of the table: the memory alive now that a location holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub location: Location,
    /// Bytes allocated with the location anywhere on the stack.
    pub total: u64,
    /// Bytes allocated by the location itself (the stack's leaf).
    pub own: u64,
    /// Allocations with the location on the stack.
    pub allocations: u64,
}

#[derive(Debug, Clone)]
pub struct View {
    pub sort: SortBy,
    /// Index into the snapshot's threads.
    pub thread: usize,
    pub merged: bool,
    /// While paused, the snapshot shown stays the one taken at the pause.
    pub paused: Option<Arc<Snapshot>>,
    /// The first row shown.
    pub scroll: usize,
}

impl Default for View {
    fn default() -> Self {
        View {
            sort: SortBy::Total,
            thread: 0,
            merged: false,
            paused: None,
            scroll: 0,
        }
    }
}

impl View {
    /// Applies a key's action; `latest` is the newest snapshot (kept while paused).
    pub fn apply(&mut self, action: Action, latest: &Arc<Snapshot>) {
        let threads = self.shown(latest).threads.len().max(1);
        match action {
            Action::Sort(sort) => self.sort = sort,
            Action::NextThread if !self.merged => self.thread = (self.thread + 1) % threads,
            Action::PreviousThread if !self.merged => {
                self.thread = (self.thread + threads - 1) % threads
            }
            Action::NextThread | Action::PreviousThread => {}
            Action::ToggleMerge => self.merged = !self.merged,
            Action::TogglePause => {
                self.paused = match self.paused {
                    Some(_) => None,
                    None => Some(latest.clone()),
                }
            }
            Action::Scroll(by) => self.scroll = self.scroll.saturating_add_signed(by),
        }
        if !matches!(action, Action::Scroll(_)) {
            self.scroll = 0;
        }
    }

    /// The snapshot on screen: the one frozen by a pause, else the latest.
    pub fn shown<'a>(&'a self, latest: &'a Arc<Snapshot>) -> &'a Arc<Snapshot> {
        self.paused.as_ref().unwrap_or(latest)
    }

    /// The thread shown (`None` when merged or before any allocation).
    pub fn thread_id(&self, snapshot: &Snapshot) -> Option<u64> {
        if self.merged {
            return None;
        }
        snapshot
            .threads
            .get(self.thread.min(snapshot.threads.len().saturating_sub(1)))
            .map(|&(tid, _)| tid)
    }

    /// The table for `snapshot`, sorted (ties by location, for a stable order).
    pub fn rows(&self, snapshot: &Snapshot) -> Vec<Row> {
        let tid = self.thread_id(snapshot);
        let mut rows: HashMap<&Location, Row> = HashMap::default();
        for group in &snapshot.groups {
            if !self.merged && Some(group.tid) != tid {
                continue;
            }
            for (depth, location) in group.stack.iter().enumerate() {
                // A recursive function counts once per stack.
                if group.stack[..depth].contains(location) {
                    continue;
                }
                let row = rows.entry(location).or_insert_with(|| Row {
                    location: location.clone(),
                    total: 0,
                    own: 0,
                    allocations: 0,
                });
                row.total += group.bytes;
                row.allocations += group.allocations;
                if depth == 0 {
                    row.own += group.bytes;
                }
            }
        }
        let mut rows: Vec<Row> = rows.into_values().collect();
        rows.sort_by(|a, b| {
            let key = |row: &Row| match self.sort {
                SortBy::Total => row.total,
                SortBy::Own => row.own,
                SortBy::Allocations => row.allocations,
            };
            key(b)
                .cmp(&key(a))
                .then_with(|| a.location.cmp(&b.location))
        });
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::LiveGroup;

    fn at(function: &str, line: i32) -> Location {
        Location {
            function: function.into(),
            file: "w.py".into(),
            line,
        }
    }

    fn group(tid: u64, bytes: u64, allocations: u64, stack: &[Location]) -> LiveGroup {
        LiveGroup {
            tid,
            bytes,
            allocations,
            stack: stack.into(),
        }
    }

    /// Thread 1: main → big (1000 B in 1 allocation), main → small (300 B
    /// in 30); thread 2: worker → small (50 B in 5).
    fn snapshot() -> Arc<Snapshot> {
        let (main, big, small, worker) = (
            at("main", 1),
            at("big", 5),
            at("small", 9),
            at("worker", 12),
        );
        Arc::new(Snapshot {
            threads: vec![(1, None), (2, Some("worker".into()))],
            groups: vec![
                group(1, 1000, 1, &[big.clone(), main.clone()]),
                group(1, 300, 30, &[small.clone(), main.clone()]),
                group(2, 50, 5, &[small, worker]),
            ],
            ..Snapshot::default()
        })
    }

    fn names(rows: &[Row]) -> Vec<(&str, u64, u64, u64)> {
        rows.iter()
            .map(|r| (&*r.location.function, r.total, r.own, r.allocations))
            .collect()
    }

    #[test]
    fn the_table_sums_what_each_location_holds_on_the_thread() {
        let latest = snapshot();
        let mut view = View::default();
        assert_eq!(
            names(&view.rows(&latest)),
            [
                ("main", 1300, 0, 31),
                ("big", 1000, 1000, 1),
                ("small", 300, 300, 30)
            ]
        );
        view.apply(Action::Sort(SortBy::Own), &latest);
        assert_eq!(names(&view.rows(&latest))[0].0, "big");
        view.apply(Action::Sort(SortBy::Allocations), &latest);
        assert_eq!(
            names(&view.rows(&latest))
                .iter()
                .map(|r| r.0)
                .collect::<Vec<_>>(),
            ["main", "small", "big"]
        );
    }

    #[test]
    fn threads_are_chosen_in_turn_or_merged() {
        let latest = snapshot();
        let mut view = View::default();
        view.apply(Action::NextThread, &latest);
        assert_eq!(view.thread_id(&latest), Some(2));
        assert_eq!(
            names(&view.rows(&latest)),
            [("small", 50, 50, 5), ("worker", 50, 0, 5)]
        );
        view.apply(Action::NextThread, &latest);
        assert_eq!(view.thread_id(&latest), Some(1));
        view.apply(Action::PreviousThread, &latest);
        assert_eq!(view.thread_id(&latest), Some(2));
        view.apply(Action::ToggleMerge, &latest);
        assert_eq!(view.thread_id(&latest), None);
        let merged = view.rows(&latest);
        assert_eq!(names(&merged)[0], ("main", 1300, 0, 31));
        assert!(names(&merged).contains(&("small", 350, 350, 35)));
    }

    #[test]
    fn a_pause_keeps_the_snapshot_until_resumed() {
        let first = snapshot();
        let mut view = View::default();
        view.apply(Action::TogglePause, &first);
        let newer = Arc::new(Snapshot {
            groups: Vec::new(),
            ..(*first).clone()
        });
        assert!(Arc::ptr_eq(view.shown(&newer), &first));
        view.apply(Action::TogglePause, &newer);
        assert!(Arc::ptr_eq(view.shown(&newer), &newer));
        assert!(view.rows(view.shown(&newer)).is_empty());
    }

    #[test]
    fn a_recursive_function_counts_once_per_stack() {
        let f = at("f", 3);
        let latest = Arc::new(Snapshot {
            threads: vec![(1, None)],
            groups: vec![group(1, 10, 1, &[f.clone(), f.clone(), at("main", 1)])],
            ..Snapshot::default()
        });
        assert_eq!(names(&View::default().rows(&latest))[0], ("f", 10, 10, 1));
    }
}
