//! The plain data a flame graph page shows. The analysis side fills it (most
//! easily through [`crate::FlameGraphBuilder`]); this crate only checks and
//! renders it.

use serde::{Deserialize, Serialize};

use crate::error::ModelError;

/// Index into [`FlameGraph::strings`].
pub type StringId = u32;
/// Index into [`FlameGraph::nodes`].
pub type NodeId = u32;

/// Which allocations the graph accounts for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    /// Memory live at the high-water mark (memray's default).
    #[default]
    Peak,
    /// Memory still allocated when tracking stopped (`--leaks`).
    Leaks,
    /// Allocations freed soon after they were made (`--temporary-allocations`).
    Temporary,
}

/// Facts about the capture, shown in the page's header and stats panel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Usually the capture file's name; used as the page title.
    pub capture_name: String,
    pub command_line: String,
    pub pid: Option<u32>,
    /// Milliseconds since the Unix epoch.
    pub start_time_ms: u64,
    pub end_time_ms: u64,
    /// Peak heap memory in bytes (`memray stats`' `peak_memory`).
    pub peak_memory: u64,
    /// All allocation records in the capture.
    pub total_allocations: u64,
    pub kind: ReportKind,
    /// "pymalloc", "malloc", "mimalloc", ...
    pub python_allocator: String,
    pub has_native_traces: bool,
    pub trace_python_allocators: bool,
    /// Threads were merged: node threads carry no meaning, the selector is hidden.
    pub merge_threads: bool,
    /// Open the page in the inverted (callers at the bottom) view.
    pub inverted: bool,
    /// Warn that a leaks report over an arena allocator (pymalloc) shows arenas,
    /// not objects (memray's `--leaks` warning).
    pub pymalloc_leaks_warning: bool,
    /// The capture ends without a trailer (a killed process, a cut-off
    /// file) or is damaged part-way: the page shows only what was read
    /// before that point.
    pub cut_off: bool,
}

/// The call tree as parallel arrays, one entry per node.
///
/// Node 0 is the root (`<root>`). For every other node `i`, `parent[i] < i`
/// (parents come first), so one backwards pass sums a tree. `bytes` and
/// `n_allocations` are inclusive (a node counts its whole subtree), hence the
/// children of a node never hold more than the node itself; the root holds
/// the report's total (the peak for [`ReportKind::Peak`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nodes {
    /// `parent[0]` is 0 and means nothing.
    pub parent: Vec<NodeId>,
    pub function: Vec<StringId>,
    pub filename: Vec<StringId>,
    pub lineno: Vec<i32>,
    /// Index into [`FlameGraph::threads`].
    pub thread: Vec<u32>,
    pub bytes: Vec<u64>,
    pub n_allocations: Vec<u64>,
    /// False for frames the page hides by default (memray's own, the runpy
    /// bootstrap, ...).
    pub interesting: Vec<bool>,
    /// True for frames of the import machinery (importlib, `<frozen ...>`).
    pub import_system: Vec<bool>,
}

/// What identifies and flags one node, without its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeLabel {
    pub function: StringId,
    pub filename: StringId,
    pub lineno: i32,
    pub thread: u32,
    pub interesting: bool,
    pub import_system: bool,
}

impl Nodes {
    /// Appends a node and returns its id.
    pub fn push(
        &mut self,
        parent: NodeId,
        label: NodeLabel,
        bytes: u64,
        n_allocations: u64,
    ) -> NodeId {
        let id = self.len() as NodeId;
        self.parent.push(parent);
        self.function.push(label.function);
        self.filename.push(label.filename);
        self.lineno.push(label.lineno);
        self.thread.push(label.thread);
        self.bytes.push(bytes);
        self.n_allocations.push(n_allocations);
        self.interesting.push(label.interesting);
        self.import_system.push(label.import_system);
        id
    }

    pub fn label(&self, node: usize) -> NodeLabel {
        NodeLabel {
            function: self.function[node],
            filename: self.filename[node],
            lineno: self.lineno[node],
            thread: self.thread[node],
            interesting: self.interesting[node],
            import_system: self.import_system[node],
        }
    }

    pub fn len(&self) -> usize {
        self.parent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parent.is_empty()
    }
}

/// One point of the memory-over-time plot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemorySample {
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    pub rss: u64,
    pub heap: u64,
}

/// One process's heap over time, drawn beside the total on the memory plot
/// of a report over several processes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessMemory {
    /// How the page names the process (its pid and command line).
    pub name: String,
    pub samples: Vec<MemorySample>,
}

/// Allocations of one node that were live between two snapshots; snapshot
/// `k` is the span ending at memory sample `k` (snapshot `samples.len()`
/// is everything after the last sample).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interval {
    pub allocated_before: u32,
    /// `None`: never freed.
    pub deallocated_before: Option<u32>,
    pub node: NodeId,
    pub n_allocations: u64,
    pub bytes: u64,
}

/// Data for the temporal view (`memray flamegraph --temporal`): node values
/// are recomputed in the page for the time window the user picks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Temporal {
    pub intervals: Vec<Interval>,
    /// Heap high-water mark within each snapshot (one entry per snapshot,
    /// i.e. `memory.len() + 1`). `None` makes this a temporal *leaks* view:
    /// the window shows what was allocated in it and not freed by its end.
    pub high_water_mark_by_snapshot: Option<Vec<u64>>,
}

/// The text of a source file, for the tooltip's source line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFile {
    pub filename: StringId,
    /// `lines[0]` is line 1.
    pub lines: Vec<String>,
}

/// Everything a flame graph page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlameGraph {
    pub metadata: Metadata,
    pub strings: Vec<String>,
    /// Thread names, e.g. "0x1 (MainThread)".
    pub threads: Vec<String>,
    pub nodes: Nodes,
    /// Over several processes: the processes' summed memory.
    pub memory: Vec<MemorySample>,
    /// Over several processes: each one's own memory (empty for one capture).
    pub processes: Vec<ProcessMemory>,
    pub temporal: Option<Temporal>,
    pub sources: Vec<SourceFile>,
}

impl FlameGraph {
    /// The report's total: the root's bytes.
    pub fn total_bytes(&self) -> u64 {
        self.nodes.bytes.first().copied().unwrap_or(0)
    }

    /// Checks every invariant the page relies on.
    pub fn check(&self) -> Result<(), ModelError> {
        let nodes = &self.nodes;
        let n = nodes.len();
        if n == 0 {
            return Err(ModelError::NoRoot);
        }
        for (field, found) in [
            ("function", nodes.function.len()),
            ("filename", nodes.filename.len()),
            ("lineno", nodes.lineno.len()),
            ("thread", nodes.thread.len()),
            ("bytes", nodes.bytes.len()),
            ("n_allocations", nodes.n_allocations.len()),
            ("interesting", nodes.interesting.len()),
            ("import_system", nodes.import_system.len()),
        ] {
            if found != n {
                return Err(ModelError::LengthMismatch {
                    field,
                    found,
                    expected: n,
                });
            }
        }
        let strings = self.strings.len();
        let mut children_bytes = vec![0u64; n];
        for i in 0..n {
            let parent = nodes.parent[i];
            if i > 0 && parent as usize >= i {
                return Err(ModelError::ParentOrder { node: i, parent });
            }
            for (what, string) in [
                ("function of node", nodes.function[i]),
                ("filename of node", nodes.filename[i]),
            ] {
                if string as usize >= strings {
                    return Err(ModelError::BadString {
                        what,
                        index: i,
                        string,
                        len: strings,
                    });
                }
            }
            if nodes.thread[i] as usize >= self.threads.len().max(1) {
                return Err(ModelError::BadThread {
                    node: i,
                    thread: nodes.thread[i],
                    len: self.threads.len(),
                });
            }
            if i > 0 {
                children_bytes[parent as usize] += nodes.bytes[i];
            }
        }
        for (i, &children) in children_bytes.iter().enumerate() {
            if children > nodes.bytes[i] {
                return Err(ModelError::ChildrenExceedParent {
                    node: i,
                    children,
                    bytes: nodes.bytes[i],
                });
            }
        }
        if let Some(temporal) = &self.temporal {
            self.check_temporal(temporal)?;
        }
        for (index, source) in self.sources.iter().enumerate() {
            if source.filename as usize >= strings {
                return Err(ModelError::BadSourceFile {
                    index,
                    string: source.filename,
                    len: strings,
                });
            }
        }
        Ok(())
    }

    fn check_temporal(&self, temporal: &Temporal) -> Result<(), ModelError> {
        let n = self.nodes.len();
        for (index, interval) in temporal.intervals.iter().enumerate() {
            if interval.node as usize >= n {
                return Err(ModelError::BadIntervalNode {
                    index,
                    node: interval.node,
                    len: n,
                });
            }
            if let Some(dealloc) = interval.deallocated_before {
                if dealloc < interval.allocated_before {
                    return Err(ModelError::BadIntervalOrder {
                        index,
                        alloc: interval.allocated_before,
                        dealloc,
                    });
                }
            }
        }
        if let Some(hwm) = &temporal.high_water_mark_by_snapshot {
            let expected = self.memory.len() + 1;
            if hwm.len() != expected {
                return Err(ModelError::BadSnapshotCount {
                    found: hwm.len(),
                    expected,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::FlameGraphBuilder;
    use crate::StackFrame;

    fn sample() -> FlameGraph {
        let metadata = Metadata {
            capture_name: "t.bin".to_owned(),
            command_line: String::new(),
            pid: None,
            start_time_ms: 0,
            end_time_ms: 0,
            peak_memory: 0,
            total_allocations: 0,
            kind: ReportKind::Leaks,
            python_allocator: "malloc".to_owned(),
            has_native_traces: false,
            trace_python_allocators: true,
            merge_threads: true,
            inverted: false,
            pymalloc_leaks_warning: false,
            cut_off: false,
        };
        let mut builder = FlameGraphBuilder::new(metadata);
        let thread = builder.thread("merged");
        let frame = |function| StackFrame {
            function,
            filename: "x.py",
            lineno: 3,
            interesting: true,
            import_system: false,
        };
        builder.add_stack(thread, &[frame("f"), frame("g")], 30, 3);
        builder.add_stack(thread, &[frame("f")], 12, 1);
        builder.finish()
    }

    /// Every node's children hold at most what the node holds, and the root
    /// holds everything.
    #[test]
    fn built_trees_keep_their_invariants() {
        let graph = sample();
        graph.check().unwrap();
        let nodes = &graph.nodes;
        let mut children = vec![0; nodes.len()];
        for i in 1..nodes.len() {
            children[nodes.parent[i] as usize] += nodes.bytes[i];
        }
        for (i, &sum) in children.iter().enumerate() {
            assert!(sum <= nodes.bytes[i], "node {i}");
        }
        assert_eq!(graph.total_bytes(), 42);
    }

    #[test]
    fn children_exceeding_their_parent_are_rejected() {
        let mut graph = sample();
        graph.nodes.bytes[2] = 1_000;
        assert!(matches!(
            graph.check(),
            Err(ModelError::ChildrenExceedParent { node: 1, .. })
        ));
    }

    #[test]
    fn parents_must_precede_children() {
        let mut graph = sample();
        graph.nodes.parent[1] = 2;
        assert_eq!(
            graph.check(),
            Err(ModelError::ParentOrder { node: 1, parent: 2 })
        );
    }

    #[test]
    fn ragged_arrays_and_bad_references_are_rejected() {
        let mut ragged = sample();
        ragged.nodes.lineno.pop();
        assert!(matches!(
            ragged.check(),
            Err(ModelError::LengthMismatch {
                field: "lineno",
                ..
            })
        ));

        let mut bad_string = sample();
        bad_string.nodes.function[1] = 99;
        assert!(matches!(
            bad_string.check(),
            Err(ModelError::BadString { .. })
        ));

        let mut empty = sample();
        empty.nodes = Nodes::default();
        assert_eq!(empty.check(), Err(ModelError::NoRoot));
    }

    #[test]
    fn temporal_data_is_checked() {
        let mut graph = sample();
        graph.temporal = Some(Temporal {
            intervals: vec![Interval {
                allocated_before: 2,
                deallocated_before: Some(1),
                node: 1,
                n_allocations: 1,
                bytes: 1,
            }],
            high_water_mark_by_snapshot: None,
        });
        assert!(matches!(
            graph.check(),
            Err(ModelError::BadIntervalOrder { .. })
        ));
        let temporal = graph.temporal.as_mut().unwrap();
        temporal.intervals[0].deallocated_before = None;
        temporal.high_water_mark_by_snapshot = Some(vec![0, 0]);
        assert_eq!(
            graph.check(),
            Err(ModelError::BadSnapshotCount {
                found: 2,
                expected: 1
            })
        );
    }
}
