//! `memray tree`'s model (memray's `TreeReporter.from_snapshot`): the
//! biggest allocation locations as a call tree, root first, each node holding
//! what was allocated below it. [`Tree::render`] is the plain-text form; the
//! interactive view is [`crate::tree_view`].

use std::collections::HashMap;
use std::fmt::Write;

use memray_analysis::{AllocationGroup, Frame, StackResolver};
use memray_format::{is_cpython_internal, is_frame_from_import_system, is_frame_interesting};

use crate::size::size_fmt;

/// memray's `MAX_STACKS`: frames deeper than the default recursion limit
/// (1000) / 2.5 are not added to the tree.
const MAX_DEPTH: usize = 400;

/// One frame of the tree and everything allocated below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeNode {
    /// `None` for the root.
    pub frame: Option<Frame>,
    pub size: u64,
    pub n_allocations: u64,
    /// The thread of the last location added below this frame, as memray
    /// labels it: `0x1f (name)`.
    pub thread: String,
    /// memray hides uninteresting frames (runpy, CPython's call machinery,
    /// the import system) by default, showing their children in their place.
    pub interesting: bool,
    pub import_system: bool,
    /// Biggest first.
    pub children: Vec<TreeNode>,
}

/// The locations left out of the tree because they are smaller than the
/// `cutoff` biggest ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Elided {
    pub cutoff: usize,
    pub locations: u64,
    pub allocations: u64,
    pub bytes: u64,
}

/// The tree built from at most `biggest` groups (by size), and what was left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    /// Counts every group, shown or elided.
    pub root: TreeNode,
    pub elided: Elided,
}

/// A node under construction: children found by frame.
#[derive(Default)]
struct Builder {
    size: u64,
    n_allocations: u64,
    thread: String,
    children: Vec<(Frame, Builder)>,
    index: HashMap<Frame, usize>,
}

impl Builder {
    fn child(&mut self, frame: &Frame) -> &mut Builder {
        let next = self.children.len();
        let i = *self.index.entry(frame.clone()).or_insert(next);
        if i == next {
            self.children.push((frame.clone(), Builder::default()));
        }
        &mut self.children[i].1
    }

    fn add(&mut self, group: &AllocationGroup) {
        self.size += group.size;
        self.n_allocations += group.n_allocations;
    }

    fn finish(self, frame: Option<Frame>) -> TreeNode {
        let mut children: Vec<TreeNode> = self
            .children
            .into_iter()
            .map(|(frame, child)| child.finish(Some(frame)))
            .collect();
        children.sort_by_key(|child| std::cmp::Reverse(child.size));
        let (interesting, import_system) = frame.as_ref().map_or((true, false), |f| {
            let import_system = is_frame_from_import_system(&f.function, &f.filename);
            (
                !import_system && is_frame_interesting(&f.function, &f.filename),
                import_system,
            )
        });
        TreeNode {
            frame,
            interesting,
            import_system,
            size: self.size,
            n_allocations: self.n_allocations,
            thread: self.thread,
            children,
        }
    }
}

impl Tree {
    /// Threads are not merged: pass groups split by thread, as memray does.
    pub fn new(groups: &[AllocationGroup], stacks: &dyn StackResolver, biggest: usize) -> Tree {
        let mut sorted: Vec<&AllocationGroup> = groups.iter().collect();
        sorted.sort_by_key(|g| std::cmp::Reverse(g.size));
        let mut root = Builder::default();
        let mut elided = Elided {
            cutoff: biggest,
            ..Elided::default()
        };
        for (i, group) in sorted.iter().enumerate() {
            root.add(group);
            if i >= biggest {
                elided.locations += 1;
                elided.allocations += group.n_allocations;
                elided.bytes += group.size;
                continue;
            }
            let thread = thread_label(stacks, group.tid());
            let stack = stacks.stack((&group.allocation).into());
            let mut node = &mut root;
            // Like memray, CPython's own frames of hybrid stacks are left out of the tree.
            let shown = stack.iter().rev().take(MAX_DEPTH);
            for frame in shown.filter(|f| !is_cpython_internal(&f.function, &f.filename)) {
                node = node.child(frame);
                node.add(group);
                node.thread.clone_from(&thread);
            }
        }
        Tree {
            root: root.finish(None),
            elided,
        }
    }

    /// The node's share of everything the tree counts, in percent.
    pub fn share(&self, bytes: u64) -> f64 {
        if self.root.size == 0 {
            0.0
        } else {
            bytes as f64 / self.root.size as f64 * 100.0
        }
    }

    /// The tree as text, for when stdout is not a terminal.
    pub fn render(&self) -> String {
        let total = self.root.size;
        let mut out = format!(
            "Allocation metadata\nPeak memory: {}  Allocations: {}\n\n📂 {} (100.00 %) <ROOT>\n",
            size_fmt(total),
            self.root.n_allocations,
            size_fmt(total)
        );
        self.render_children(&mut out, &self.root, "");
        if self.elided.locations > 0 {
            let _ = writeln!(
                out,
                "\nOnly the top {} allocation locations are shown; {} more ({}) are elided.",
                self.elided.cutoff,
                self.elided.locations,
                size_fmt(self.elided.bytes)
            );
        }
        out
    }

    fn render_children(&self, out: &mut String, node: &TreeNode, prefix: &str) {
        for (i, child) in node.children.iter().enumerate() {
            let last = i == node.children.len() - 1;
            let icon = if child.children.is_empty() {
                "📄"
            } else {
                "📂"
            };
            let frame = child.frame.as_ref().expect("only the root has no frame");
            let _ = writeln!(
                out,
                "{prefix}{}{icon} {} ({:.2} %) {}  {}:{}",
                if last { "└── " } else { "├── " },
                size_fmt(child.size),
                self.share(child.size),
                frame.function,
                frame.filename,
                frame.lineno
            );
            let deeper = format!("{prefix}{}", if last { "    " } else { "│   " });
            self.render_children(out, child, &deeper);
        }
    }
}

/// memray's `format_thread_name`: the tid in hex, then the name if known.
fn thread_label(stacks: &dyn StackResolver, tid: u64) -> String {
    match stacks.thread_name(tid) {
        Some(name) if !name.is_empty() => format!("{tid:#x} ({name})"),
        _ => format!("{tid:#x}"),
    }
}
