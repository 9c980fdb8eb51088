//! memray 1.20's own tree reporter (`memray.reporters.tree.TreeReporter`),
//! run by the reference interpreter on a capture: the truth our `memray
//! tree` is compared with, in its interactive form and as plain text.

use std::path::Path;

use crate::reference::reference_memray;
use crate::run::stdout_of;

/// Builds memray's tree reporter for the peak of `sys.argv[1]`, keeping the
/// `sys.argv[2]` biggest locations (`memray tree -b`).
const BUILD_REPORTER: &str = r#"
import sys
from memray import FileReader
from memray._memray import size_fmt
from memray.reporters.tree import FrameTree, TreeReporter

path, biggest = sys.argv[1], int(sys.argv[2])
reader = FileReader(path)
records = reader.get_high_watermark_allocation_records(merge_threads=False)
# As `memray tree` does: hybrid stacks when the capture has native traces.
reporter = TreeReporter.from_snapshot(
    records, biggest_allocs=biggest, native_traces=reader.metadata.has_native_traces
)
"#;

/// memray's tree app, run headless by Textual's test driver: the label and
/// allocation count of every row it shows when it opens.
const OPENED_ROWS: &str = r#"
import asyncio

async def main():
    app = reporter.get_app()
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.pause()
        def visible(node):
            yield node
            if node.is_expanded:
                for child in node.children:
                    yield from visible(child)
        for node in visible(app.screen.query_one(FrameTree).root):
            print(node.label.plain, node.data.n_allocations, sep="\t")

asyncio.run(main())
"#;

/// Every node of memray's tree data, unfiltered, children biggest first,
/// labelled as the app labels them up to the function: depth, label and
/// allocation count; then the root's totals and the elided locations.
const ALL_NODES: &str = r#"
root = reporter.data

def walk(node, depth):
    icon = "\N{open file folder}" if node.children else "\N{page facing up}"
    share = 100 * node.value / root.value
    label = f"{icon} {size_fmt(node.value)} ({share:.2f} %) {node.location[0]}"
    print("node", depth, label, node.n_allocations, sep="\t")
    for child in sorted(node.children.values(), key=lambda c: c.value, reverse=True):
        walk(child, depth + 1)

walk(root, 0)
print("root", size_fmt(root.value), root.n_allocations, sep="\t")
elided = reporter.elided_locations
print("elided", elided.n_locations, size_fmt(elided.n_bytes), elided.n_allocations, sep="\t")
"#;

fn run(capture: &Path, biggest: usize, script: &str) -> String {
    stdout_of(
        reference_memray().python,
        [
            "-c",
            &format!("{BUILD_REPORTER}{script}"),
            capture.to_str().expect("utf-8 path"),
            &biggest.to_string(),
        ],
    )
}

/// A row of memray's opened tree app: the label up to the location
/// ("📂 2.000MB (98.03 %) main"), the location, and the allocation count.
#[derive(Debug)]
pub struct OpenedRow {
    pub head: String,
    pub location: String,
    pub allocations: String,
}

/// The rows memray's tree app shows when it opens on `capture` with `-b biggest`.
pub fn opened_rows(capture: &Path, biggest: usize) -> Vec<OpenedRow> {
    run(capture, biggest, OPENED_ROWS)
        .lines()
        .map(|line| {
            let (label, allocations) = line.rsplit_once('\t').expect("label<TAB>count");
            let (head, location) = label.split_once("  ").unwrap_or((label, ""));
            OpenedRow {
                head: head.to_owned(),
                location: location.to_owned(),
                allocations: allocations.to_owned(),
            }
        })
        .collect()
}

/// memray's whole tree for `capture` with `-b biggest`.
#[derive(Debug, Default, PartialEq)]
pub struct WholeTree {
    /// (depth, label up to the function, allocations) of every node, root first.
    pub nodes: Vec<(usize, String, u64)>,
    /// The root's size as memray prints sizes, and its allocation count.
    pub root_size: String,
    pub root_allocations: u64,
    /// Locations left out by `-b`, their size, and their allocation count.
    pub elided_locations: u64,
    pub elided_size: String,
    pub elided_allocations: u64,
}

pub fn whole_tree(capture: &Path, biggest: usize) -> WholeTree {
    let mut tree = WholeTree::default();
    let number = |text: &str| text.parse::<u64>().expect("a count");
    for line in run(capture, biggest, ALL_NODES).lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["node", depth, label, allocations] => tree.nodes.push((
                depth.parse().expect("a depth"),
                (*label).to_owned(),
                number(allocations),
            )),
            ["root", size, allocations] => {
                tree.root_size = (*size).to_owned();
                tree.root_allocations = number(allocations);
            }
            ["elided", locations, size, allocations] => {
                tree.elided_locations = number(locations);
                tree.elided_size = (*size).to_owned();
                tree.elided_allocations = number(allocations);
            }
            _ => panic!("unexpected line from memray's tree: {line}"),
        }
    }
    tree
}
