//! `memray tree` as plain text: the biggest peak allocations as a call tree,
//! root first, with each node's share of the peak (memray's `TreeReporter`
//! data; the interactive view is memray's Textual app).

use std::collections::HashMap;
use std::fmt::Write;

use memray_analysis::{AllocationGroup, Frame, StackResolver};

use crate::size::size_fmt;

#[derive(Debug, Default)]
struct Node {
    size: u64,
    n_allocations: u64,
    children: Vec<(Frame, Node)>,
    index: HashMap<Frame, usize>,
}

impl Node {
    fn child(&mut self, frame: &Frame) -> &mut Node {
        let next = self.children.len();
        let i = *self.index.entry(frame.clone()).or_insert(next);
        if i == next {
            self.children.push((frame.clone(), Node::default()));
        }
        &mut self.children[i].1
    }
}

/// The tree built from at most `biggest` groups (by size), and what was left out.
pub struct Tree {
    root: Node,
    elided_locations: u64,
    elided_bytes: u64,
    biggest: usize,
}

impl Tree {
    pub fn new(groups: &[AllocationGroup], stacks: &dyn StackResolver, biggest: usize) -> Tree {
        let mut sorted: Vec<&AllocationGroup> = groups.iter().collect();
        sorted.sort_by_key(|g| std::cmp::Reverse(g.size));
        let mut root = Node::default();
        let (mut elided_locations, mut elided_bytes) = (0, 0);
        for (i, group) in sorted.iter().enumerate() {
            root.size += group.size;
            root.n_allocations += group.n_allocations;
            if i >= biggest {
                elided_locations += 1;
                elided_bytes += group.size;
                continue;
            }
            let stack = stacks.python_stack(group.allocation.python_node, group.tid());
            let mut node = &mut root;
            for frame in stack.iter().rev() {
                node = node.child(frame);
                node.size += group.size;
                node.n_allocations += group.n_allocations;
            }
        }
        Tree {
            root,
            elided_locations,
            elided_bytes,
            biggest,
        }
    }

    pub fn render(&self) -> String {
        let total = self.root.size;
        let mut out = format!(
            "Allocation metadata\nPeak memory: {}  Allocations: {}\n\n📂 {} (100.00 %) <ROOT>\n",
            size_fmt(total),
            self.root.n_allocations,
            size_fmt(total)
        );
        render_children(&mut out, &self.root, total, "");
        if self.elided_locations > 0 {
            let _ = writeln!(
                out,
                "\nOnly the top {} allocation locations are shown; {} more ({}) are elided.",
                self.biggest,
                self.elided_locations,
                size_fmt(self.elided_bytes)
            );
        }
        out
    }
}

fn render_children(out: &mut String, node: &Node, total: u64, prefix: &str) {
    let mut children: Vec<&(Frame, Node)> = node.children.iter().collect();
    children.sort_by_key(|(_, n)| std::cmp::Reverse(n.size));
    for (i, (frame, child)) in children.iter().enumerate() {
        let last = i == children.len() - 1;
        let percent = if total == 0 {
            0.0
        } else {
            child.size as f64 / total as f64 * 100.0
        };
        let icon = if child.children.is_empty() {
            "📄"
        } else {
            "📂"
        };
        let _ = writeln!(
            out,
            "{prefix}{}{icon} {} ({percent:.2} %) {}  {}:{}",
            if last { "└── " } else { "├── " },
            size_fmt(child.size),
            frame.function,
            frame.filename,
            frame.lineno
        );
        let deeper = format!("{prefix}{}", if last { "    " } else { "│   " });
        render_children(out, child, total, &deeper);
    }
}
