//! Self-contained HTML reports: memray's interactive flame graph (with the
//! memory-over-time plot and the temporal view) and its allocation table.
//!
//! The input is a plain data model ([`FlameGraph`], [`Table`]) that knows
//! nothing about capture files; the analysis side fills it, usually through
//! [`FlameGraphBuilder`]. Output is one HTML file with every style, script and
//! datum inline: it opens offline and makes no network request.
//!
//! ```
//! use memray_html::*;
//!
//! let metadata = Metadata {
//!     capture_name: "memray-app.bin".into(),
//!     command_line: "app.py".into(),
//!     pid: Some(42),
//!     start_time_ms: 0,
//!     end_time_ms: 1_500,
//!     peak_memory: 4096,
//!     total_allocations: 3,
//!     kind: ReportKind::Peak,
//!     python_allocator: "pymalloc".into(),
//!     has_native_traces: false,
//!     trace_python_allocators: false,
//!     merge_threads: false,
//!     inverted: false,
//!     pymalloc_leaks_warning: false,
//!     cut_off: false,
//! };
//! let mut graph = FlameGraphBuilder::new(metadata);
//! let main = graph.thread("0x1 (MainThread)");
//! let stack = [
//!     StackFrame { function: "<module>", filename: "app.py", lineno: 3, interesting: true, import_system: false },
//!     StackFrame { function: "load", filename: "app.py", lineno: 10, interesting: true, import_system: false },
//! ];
//! graph.add_stack(main, &stack, 4096, 3);
//! graph.add_memory_sample(MemorySample { time_ms: 0, rss: 9000, heap: 4096 });
//! let html = render_flamegraph(&graph.finish(), &PageOptions::default()).unwrap();
//! assert!(html.contains("memray-app.bin"));
//! ```
//!
//! Inside the page the data is compact: a string table, a deduplicated frame
//! table and parallel arrays (parents stored as gaps), subtrees narrower than
//! [`PageOptions::min_node_fraction`] folded, and memory samples thinned.

mod builder;
mod error;
mod model;
mod page;
mod shrink;
mod table;
mod wire;

pub use builder::{FlameGraphBuilder, StackFrame};
pub use error::ModelError;
pub use model::{
    FlameGraph, Interval, MemorySample, Metadata, NodeId, NodeLabel, Nodes, ProcessMemory,
    ReportKind, SourceFile, StringId, Temporal,
};
pub use shrink::{fold_small_nodes, thin_memory_samples};
pub use table::{Table, TableRow};

use std::borrow::Cow;

use page::{assemble, PageAssets};

const FLAMEGRAPH: PageAssets = PageAssets {
    report: "flame graph",
    body: include_str!("../assets/flamegraph.html"),
    css: include_str!("../assets/flamegraph.css"),
    js: concat!(
        include_str!("../assets/view_hash.js"),
        "\n",
        include_str!("../assets/flamegraph.js")
    ),
};

const TABLE: PageAssets = PageAssets {
    report: "table",
    body: include_str!("../assets/table.html"),
    css: include_str!("../assets/table.css"),
    js: include_str!("../assets/table.js"),
};

/// How much of a big model reaches the page.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PageOptions {
    /// Subtrees holding less than this share of the total are folded into
    /// one node per parent ([`fold_small_nodes`]); 0 keeps everything.
    pub min_node_fraction: f64,
    /// The memory plot keeps about this many samples (memray's
    /// `--max-memory-records`); temporal pages keep all, since their
    /// intervals are numbered by sample.
    pub max_memory_samples: usize,
}

impl Default for PageOptions {
    fn default() -> Self {
        PageOptions {
            // A thousandth of a pixel on a wide screen: invisible until zoomed
            // in a thousandfold.
            min_node_fraction: 1e-6,
            max_memory_samples: 10_000,
        }
    }
}

/// The flame graph page for `graph`.
pub fn render_flamegraph(graph: &FlameGraph, options: &PageOptions) -> Result<String, ModelError> {
    graph.check()?;
    let min_bytes = (graph.total_bytes() as f64 * options.min_node_fraction) as u64;
    let folded;
    let shown = if min_bytes > 0 {
        folded = fold_small_nodes(graph, min_bytes);
        &folded
    } else {
        graph
    };
    let memory = if shown.temporal.is_none() {
        Cow::Owned(thin_memory_samples(
            &shown.memory,
            options.max_memory_samples,
        ))
    } else {
        Cow::Borrowed(shown.memory.as_slice())
    };
    let title = format!("memray flamegraph: {}", graph.metadata.capture_name);
    let payload = wire::flamegraph_payload(shown, &memory);
    Ok(assemble(&FLAMEGRAPH, &title, &graph.metadata, &payload))
}

/// The table page for `table`.
pub fn render_table(table: &Table) -> String {
    let title = format!("memray table: {}", table.metadata.capture_name);
    assemble(
        &TABLE,
        &title,
        &table.metadata,
        &table::table_payload(table),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::tests::{frame, metadata};

    /// Nothing in a page may point outside it.
    fn assert_self_contained(html: &str) {
        for needle in ["http://", "https://", " src=", "@import", "url("] {
            assert!(!html.contains(needle), "page contains {needle:?}");
        }
    }

    #[test]
    fn flame_graph_pages_are_self_contained_and_carry_the_model() {
        let mut builder = FlameGraphBuilder::new(metadata());
        let main = builder.thread("MainThread");
        builder.add_stack(main, &[frame("</script><b>evil")], 64, 1);
        let html = render_flamegraph(&builder.finish(), &PageOptions::default()).unwrap();
        assert_self_contained(&html);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(
            !html.contains("</script><b>"),
            "data cannot close its script element"
        );
        assert!(html.contains("\\u003c/script>\\u003cb>evil"));
    }

    #[test]
    fn invalid_models_are_refused() {
        let mut graph = FlameGraphBuilder::new(metadata()).finish();
        graph.nodes.thread[0] = 7;
        assert!(render_flamegraph(&graph, &PageOptions::default()).is_err());
    }

    #[test]
    fn table_pages_are_self_contained() {
        let row = TableRow {
            process: String::new(),
            thread: "0x1".to_owned(),
            size: 10,
            allocator: "malloc".to_owned(),
            n_allocations: 1,
            location: "f at x.py:1".to_owned(),
            stack: vec!["f at x.py:1".to_owned()],
        };
        let html = render_table(&Table {
            metadata: metadata(),
            rows: vec![row],
        });
        assert_self_contained(&html);
        assert!(html.contains("f at x.py:1"));
    }
}
