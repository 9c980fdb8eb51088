//! What the interactive tree shows: which nodes are expanded, which frames
//! the filters hide, the rows that are visible because of both, and the
//! selected row. No terminal here.

use std::collections::HashSet;

use crate::tree::{Elided, Tree, TreeNode};

/// A node's position: the child index at each level below the root, in the
/// whole tree (hidden levels included).
pub type NodePath = Vec<usize>;

/// What a row stands for.
#[derive(Debug, Clone, Copy)]
pub enum Target<'t> {
    Node(&'t TreeNode),
    /// memray's "❓ … locations below the configured threshold" leaf.
    Elided(&'t Elided),
}

#[derive(Debug, Clone)]
pub struct Row<'t> {
    pub path: NodePath,
    pub target: Target<'t>,
    /// The tree lines drawn before the row (`│   ├── `).
    pub guides: String,
    pub expandable: bool,
    pub expanded: bool,
}

/// memray's `u` and `i` toggles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filters {
    /// Off by default: uninteresting frames give way to their children.
    pub show_uninteresting: bool,
    /// Hides import-system frames and everything below them.
    pub hide_import_system: bool,
}

pub struct Outline<'t> {
    tree: &'t Tree,
    filters: Filters,
    expanded: HashSet<NodePath>,
    rows: Vec<Row<'t>>,
    cursor: usize,
}

impl<'t> Outline<'t> {
    /// As memray opens it: uninteresting frames hidden, the root and the
    /// chain of biggest first children expanded, the root selected.
    pub fn new(tree: &'t Tree) -> Outline<'t> {
        Outline::with_filters(
            tree,
            Filters {
                show_uninteresting: false,
                hide_import_system: false,
            },
        )
    }

    fn with_filters(tree: &'t Tree, filters: Filters) -> Outline<'t> {
        let mut outline = Outline {
            tree,
            filters,
            expanded: HashSet::from([NodePath::new()]),
            rows: Vec::new(),
            cursor: 0,
        };
        let mut path = NodePath::new();
        let mut node = &tree.root;
        while let Some((subpath, first)) = outline.shown_children(node).into_iter().next() {
            path.extend(subpath);
            outline.expanded.insert(path.clone());
            node = first;
        }
        outline.refresh();
        outline
    }

    pub fn tree(&self) -> &'t Tree {
        self.tree
    }

    pub fn filters(&self) -> Filters {
        self.filters
    }

    pub fn rows(&self) -> &[Row<'t>] {
        &self.rows
    }

    pub fn cursor(&self) -> usize {
        self.cursor
    }

    pub fn selected(&self) -> &Row<'t> {
        &self.rows[self.cursor]
    }

    /// Moves the selection by `delta` rows, stopping at either end.
    pub fn move_by(&mut self, delta: isize) {
        let last = self.rows.len() - 1;
        self.cursor = self.cursor.saturating_add_signed(delta).min(last);
    }

    pub fn move_to_end(&mut self) {
        self.cursor = self.rows.len() - 1;
    }

    pub fn move_to_start(&mut self) {
        self.cursor = 0;
    }

    /// Enter / space: expands a collapsed node, collapses an expanded one.
    pub fn toggle(&mut self) {
        let row = self.selected();
        if !row.expandable {
            return;
        }
        let path = row.path.clone();
        if !self.expanded.remove(&path) {
            self.expanded.insert(path);
        }
        self.refresh();
    }

    /// Right arrow: expands, or steps into an already expanded node.
    pub fn expand_or_descend(&mut self) {
        let row = self.selected();
        if !row.expandable {
            return;
        }
        if row.expanded {
            self.move_by(1);
        } else {
            self.toggle();
        }
    }

    /// Left arrow: collapses, or steps out to the parent row.
    pub fn collapse_or_ascend(&mut self) {
        let row = self.selected();
        if row.expanded {
            self.toggle();
            return;
        }
        let parent = self.rows[..self.cursor]
            .iter()
            .rposition(|above| row.path.starts_with(&above.path));
        self.cursor = parent.unwrap_or(0);
    }

    /// memray's `e`: toggles the node and each only child below it.
    pub fn toggle_linear_group(&mut self) {
        let Target::Node(mut node) = self.selected().target else {
            return;
        };
        let mut path = self.selected().path.clone();
        loop {
            let children = self.shown_children(node);
            if !children.is_empty() && !self.expanded.remove(&path) {
                self.expanded.insert(path.clone());
            }
            match children.as_slice() {
                [(subpath, only)] => {
                    path.extend(subpath);
                    node = only;
                }
                _ => break,
            }
        }
        self.refresh();
    }

    /// memray's `u`; like memray, starts over from the opening view.
    pub fn toggle_uninteresting(&mut self) {
        let mut filters = self.filters;
        filters.show_uninteresting = !filters.show_uninteresting;
        *self = Outline::with_filters(self.tree, filters);
    }

    /// memray's `i`; like memray, starts over from the opening view.
    pub fn toggle_import_system(&mut self) {
        let mut filters = self.filters;
        filters.hide_import_system = !filters.hide_import_system;
        *self = Outline::with_filters(self.tree, filters);
    }

    /// The children shown under `node`, biggest first, each with its path
    /// relative to `node`: hidden uninteresting frames give way to their own
    /// children (memray's `add_children`).
    fn shown_children(&self, node: &'t TreeNode) -> Vec<(NodePath, &'t TreeNode)> {
        let mut shown = Vec::new();
        for (i, child) in node.children.iter().enumerate() {
            if self.filters.hide_import_system && child.import_system {
                continue;
            }
            if child.interesting || self.filters.show_uninteresting {
                shown.push((vec![i], child));
            } else {
                shown.extend(self.shown_children(child).into_iter().map(
                    |(mut path, grandchild)| {
                        path.insert(0, i);
                        (path, grandchild)
                    },
                ));
            }
        }
        shown
    }

    /// Rebuilds the visible rows, keeping the selection on the same node
    /// (or its nearest visible ancestor).
    fn refresh(&mut self) {
        let mut selected = self
            .rows
            .get(self.cursor)
            .map(|row| row.path.clone())
            .unwrap_or_default();
        self.rows.clear();
        let root = &self.tree.root;
        let elided = self.tree.elided.locations > 0;
        self.push_rows(root, NodePath::new(), String::new(), String::new(), elided);
        if elided && self.expanded.contains(&NodePath::new()) {
            self.rows.push(Row {
                path: vec![root.children.len()],
                target: Target::Elided(&self.tree.elided),
                guides: "└── ".to_owned(),
                expandable: false,
                expanded: false,
            });
        }
        self.cursor = loop {
            if let Some(i) = self.rows.iter().position(|row| row.path == selected) {
                break i;
            }
            if selected.pop().is_none() {
                break 0;
            }
        };
    }

    /// `guides` goes before this node's row, `indent` before its children's
    /// guides; `more_follow` when a row at the children's level comes after
    /// them (the root's elided leaf).
    fn push_rows(
        &mut self,
        node: &'t TreeNode,
        path: NodePath,
        guides: String,
        indent: String,
        more_follow: bool,
    ) {
        let children = self.shown_children(node);
        let expanded = !children.is_empty() && self.expanded.contains(&path);
        self.rows.push(Row {
            path: path.clone(),
            target: Target::Node(node),
            guides,
            expandable: !children.is_empty(),
            expanded,
        });
        if !expanded {
            return;
        }
        let count = children.len();
        for (i, (subpath, child)) in children.into_iter().enumerate() {
            let last = i + 1 == count && !more_follow;
            let (branch, continuation) = if last {
                ("└── ", "    ")
            } else {
                ("├── ", "│   ")
            };
            let mut child_path = path.clone();
            child_path.extend(subpath);
            self.push_rows(
                child,
                child_path,
                format!("{indent}{branch}"),
                format!("{indent}{continuation}"),
                false,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use memray_analysis::Frame;

    use super::*;

    fn node(name: &str, size: u64, children: Vec<TreeNode>) -> TreeNode {
        TreeNode {
            frame: Some(Frame::new(name, "f.py", 1)),
            size,
            n_allocations: 1,
            thread: "0x1".to_owned(),
            interesting: true,
            import_system: false,
            children,
        }
    }

    fn tree_of(children: Vec<TreeNode>, elided_locations: u64) -> Tree {
        let mut root = node("", children.iter().map(|c| c.size).sum(), children);
        root.frame = None;
        Tree {
            root,
            elided: Elided {
                cutoff: 3,
                locations: elided_locations,
                allocations: 1,
                bytes: 5,
            },
        }
    }

    /// root ─ main ─┬ big ─ leaf
    ///              └ small
    fn sample(elided_locations: u64) -> Tree {
        let main = node(
            "main",
            30,
            vec![
                node("big", 20, vec![node("leaf", 20, vec![])]),
                node("small", 10, vec![]),
            ],
        );
        tree_of(vec![main], elided_locations)
    }

    fn names(outline: &Outline<'_>) -> Vec<String> {
        outline
            .rows()
            .iter()
            .map(|row| match row.target {
                Target::Node(n) => {
                    let name = n.frame.as_ref().map_or("<ROOT>", |f| &f.function);
                    format!("{}{name}", row.guides)
                }
                Target::Elided(_) => format!("{}?", row.guides),
            })
            .collect()
    }

    #[test]
    fn opens_with_the_first_child_chain_expanded() {
        let tree = sample(1);
        let outline = Outline::new(&tree);
        assert_eq!(
            names(&outline),
            [
                "<ROOT>",
                "├── main",
                "│   ├── big",
                "│   │   └── leaf",
                "│   └── small",
                "└── ?"
            ]
        );
        assert_eq!(outline.cursor(), 0);
    }

    #[test]
    fn collapsing_keeps_the_selection_on_the_node() {
        let tree = sample(0);
        let mut outline = Outline::new(&tree);
        outline.move_by(2);
        outline.toggle();
        assert_eq!(
            names(&outline),
            ["<ROOT>", "└── main", "    ├── big", "    └── small"]
        );
        assert_eq!(outline.cursor(), 2);
        outline.collapse_or_ascend();
        assert_eq!(
            outline.cursor(),
            1,
            "left on a collapsed node goes to its parent"
        );
        outline.collapse_or_ascend();
        assert_eq!(names(&outline), ["<ROOT>", "└── main"]);
        outline.expand_or_descend();
        outline.expand_or_descend();
        assert_eq!(outline.cursor(), 2, "right on an expanded node enters it");
    }

    #[test]
    fn selection_stops_at_both_ends() {
        let tree = sample(1);
        let mut outline = Outline::new(&tree);
        outline.move_by(-3);
        assert_eq!(outline.cursor(), 0);
        outline.move_by(100);
        assert!(matches!(outline.selected().target, Target::Elided(_)));
        outline.toggle();
        assert_eq!(outline.rows().len(), 6, "the elided leaf does not expand");
    }

    #[test]
    fn linear_group_toggles_only_children_down_to_a_fork() {
        let tree = sample(0);
        let mut outline = Outline::new(&tree);
        outline.move_by(1);
        outline.toggle();
        outline.move_by(-1);
        outline.toggle();
        assert_eq!(names(&outline), ["<ROOT>"]);
        outline.toggle_linear_group();
        assert_eq!(
            names(&outline),
            [
                "<ROOT>",
                "└── main",
                "    ├── big",
                "    │   └── leaf",
                "    └── small"
            ]
        );
    }

    #[test]
    fn uninteresting_frames_give_way_to_their_children_until_shown() {
        let mut runpy = node(
            "run_path",
            30,
            vec![node("main", 20, vec![]), node("other", 10, vec![])],
        );
        runpy.interesting = false;
        let mut importlib = node("_find_and_load", 5, vec![node("<module>", 5, vec![])]);
        (importlib.interesting, importlib.import_system) = (false, true);
        let tree = tree_of(vec![runpy, importlib], 0);
        let mut outline = Outline::new(&tree);
        assert_eq!(
            names(&outline),
            ["<ROOT>", "├── main", "├── other", "└── <module>"]
        );
        outline.move_by(1);
        outline.collapse_or_ascend();
        assert_eq!(outline.cursor(), 0, "the parent row is the root");
        outline.toggle_uninteresting();
        assert_eq!(
            names(&outline),
            [
                "<ROOT>",
                "├── run_path",
                "│   ├── main",
                "│   └── other",
                "└── _find_and_load"
            ]
        );
        outline.toggle_import_system();
        assert_eq!(
            names(&outline),
            ["<ROOT>", "└── run_path", "    ├── main", "    └── other"]
        );
        outline.toggle_uninteresting();
        assert_eq!(names(&outline), ["<ROOT>", "├── main", "└── other"]);
    }
}
