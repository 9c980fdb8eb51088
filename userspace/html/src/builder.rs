//! Builds a [`FlameGraph`] from stacks, interning strings and merging
//! common prefixes so callers never handle indices themselves.

use std::collections::HashMap;

use crate::model::{
    FlameGraph, Interval, MemorySample, Metadata, NodeId, NodeLabel, Nodes, ProcessMemory,
    SourceFile, StringId, Temporal,
};

/// One frame of a stack, as the analysis side knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackFrame<'a> {
    pub function: &'a str,
    pub filename: &'a str,
    pub lineno: i32,
    pub interesting: bool,
    pub import_system: bool,
}

/// Identity of a node: the same frame under the same parent in the same thread.
type NodeKey = (NodeId, StringId, StringId, i32, u32);

/// Accumulates stacks into a [`FlameGraph`].
pub struct FlameGraphBuilder {
    graph: FlameGraph,
    string_ids: HashMap<String, StringId>,
    thread_ids: HashMap<String, u32>,
    node_ids: HashMap<NodeKey, NodeId>,
}

impl FlameGraphBuilder {
    pub fn new(metadata: Metadata) -> Self {
        let mut builder = FlameGraphBuilder {
            graph: FlameGraph {
                metadata,
                strings: Vec::new(),
                threads: Vec::new(),
                nodes: Nodes::default(),
                memory: Vec::new(),
                processes: Vec::new(),
                temporal: None,
                sources: Vec::new(),
            },
            string_ids: HashMap::new(),
            thread_ids: HashMap::new(),
            node_ids: HashMap::new(),
        };
        let root = builder.intern("<root>");
        let empty = builder.intern("");
        let label = NodeLabel {
            function: root,
            filename: empty,
            lineno: 0,
            thread: 0,
            interesting: true,
            import_system: false,
        };
        builder.graph.nodes.push(0, label, 0, 0);
        builder
    }

    /// The id of `text` in the string table, adding it if new.
    pub fn intern(&mut self, text: &str) -> StringId {
        if let Some(&id) = self.string_ids.get(text) {
            return id;
        }
        let id = self.graph.strings.len() as StringId;
        self.graph.strings.push(text.to_owned());
        self.string_ids.insert(text.to_owned(), id);
        id
    }

    /// The index of the thread called `name`, adding it if new.
    pub fn thread(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.thread_ids.get(name) {
            return id;
        }
        let id = self.graph.threads.len() as u32;
        self.graph.threads.push(name.to_owned());
        self.thread_ids.insert(name.to_owned(), id);
        id
    }

    /// Adds `bytes` and `n_allocations` to every node on the path of `stack`
    /// (outermost frame first) in `thread`, creating nodes as needed, and
    /// returns the innermost node (the root for an empty stack). Pass zeros to
    /// only create the path, e.g. for nodes that temporal intervals refer to.
    pub fn add_stack(
        &mut self,
        thread: u32,
        stack: &[StackFrame<'_>],
        bytes: u64,
        n_allocations: u64,
    ) -> NodeId {
        self.add_stack_under(0, thread, stack, bytes, n_allocations)
    }

    /// Like [`FlameGraphBuilder::add_stack`], with `stack` starting below
    /// `parent` (a node standing for a process, say), whose ancestors get
    /// the values too.
    pub fn add_stack_under(
        &mut self,
        parent: NodeId,
        thread: u32,
        stack: &[StackFrame<'_>],
        bytes: u64,
        n_allocations: u64,
    ) -> NodeId {
        let mut ancestor = parent;
        while ancestor != 0 {
            self.add_to(ancestor, bytes, n_allocations);
            ancestor = self.graph.nodes.parent[ancestor as usize];
        }
        let mut node = parent;
        self.add_to(0, bytes, n_allocations);
        for frame in stack {
            let function = self.intern(frame.function);
            let filename = self.intern(frame.filename);
            let key = (node, function, filename, frame.lineno, thread);
            node = match self.node_ids.get(&key) {
                Some(&child) => child,
                None => {
                    let label = NodeLabel {
                        function,
                        filename,
                        lineno: frame.lineno,
                        thread,
                        interesting: frame.interesting,
                        import_system: frame.import_system,
                    };
                    let child = self.graph.nodes.push(node, label, 0, 0);
                    self.node_ids.insert(key, child);
                    child
                }
            };
            self.add_to(node, bytes, n_allocations);
        }
        node
    }

    pub fn add_memory_sample(&mut self, sample: MemorySample) {
        self.graph.memory.push(sample);
    }

    /// Adds one process's own line to the memory plot (reports over several
    /// processes, whose memory samples are the processes' sum).
    pub fn add_process_memory(&mut self, process: ProcessMemory) {
        self.graph.processes.push(process);
    }

    /// Records a temporal interval; switches the page to the temporal view.
    pub fn add_interval(&mut self, interval: Interval) {
        self.temporal().intervals.push(interval);
    }

    /// Sets the per-snapshot high-water marks (temporal peak view).
    pub fn set_high_water_mark_by_snapshot(&mut self, marks: Vec<u64>) {
        self.temporal().high_water_mark_by_snapshot = Some(marks);
    }

    /// Embeds the lines of `filename` so tooltips can show source lines.
    pub fn add_source(&mut self, filename: &str, lines: Vec<String>) {
        let filename = self.intern(filename);
        self.graph.sources.push(SourceFile { filename, lines });
    }

    pub fn finish(mut self) -> FlameGraph {
        if self.graph.threads.is_empty() {
            self.graph.threads.push("merged thread".to_owned());
        }
        self.graph
    }

    fn temporal(&mut self) -> &mut Temporal {
        self.graph.temporal.get_or_insert_with(Temporal::default)
    }

    fn add_to(&mut self, node: NodeId, bytes: u64, n_allocations: u64) {
        let nodes = &mut self.graph.nodes;
        nodes.bytes[node as usize] += bytes;
        nodes.n_allocations[node as usize] += n_allocations;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn metadata() -> Metadata {
        Metadata {
            capture_name: "test.bin".to_owned(),
            command_line: "python test.py".to_owned(),
            pid: Some(1),
            end_time_ms: 1000,
            python_allocator: "pymalloc".to_owned(),
            ..Metadata::default()
        }
    }

    pub(crate) fn frame(function: &str) -> StackFrame<'_> {
        StackFrame {
            function,
            filename: "test.py",
            lineno: 1,
            interesting: true,
            import_system: false,
        }
    }

    #[test]
    fn shared_prefixes_share_nodes_and_values_are_inclusive() {
        let mut builder = FlameGraphBuilder::new(metadata());
        let main = builder.thread("MainThread");
        let a = builder.add_stack(main, &[frame("main"), frame("a")], 100, 1);
        let b = builder.add_stack(main, &[frame("main"), frame("b")], 50, 2);
        let again = builder.add_stack(main, &[frame("main"), frame("a")], 10, 1);
        let graph = builder.finish();
        assert_eq!(a, again);
        assert_ne!(a, b);
        assert_eq!(graph.nodes.len(), 4, "root, main, a, b");
        assert_eq!(graph.total_bytes(), 160);
        assert_eq!(graph.nodes.bytes[1], 160, "main holds both children");
        assert_eq!(graph.nodes.n_allocations[a as usize], 2);
        graph.check().unwrap();
    }

    #[test]
    fn threads_split_identical_stacks() {
        let mut builder = FlameGraphBuilder::new(metadata());
        let one = builder.thread("one");
        let two = builder.thread("two");
        let a = builder.add_stack(one, &[frame("f")], 1, 1);
        let b = builder.add_stack(two, &[frame("f")], 1, 1);
        assert_ne!(a, b);
        assert_eq!(builder.thread("two"), two);
    }
}
