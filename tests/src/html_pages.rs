//! Reading the data HTML reports embed: our pages' JSON payload and the
//! `packed_data` of memray 1.20's pages, flattened into comparable trees.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

/// One frame on a node's path: (thread, function, file, line).
pub type PathFrame = (String, String, String, u64);

/// What a node carries: inclusive bytes and allocations, and its flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeValues {
    pub bytes: u64,
    pub n_allocations: u64,
    pub interesting: bool,
    pub import_system: bool,
}

/// A flame graph as `path from the root -> values` (the root has the empty path).
pub type FlatTree = BTreeMap<Vec<PathFrame>, NodeValues>;

/// Temporal intervals as (alloc snapshot, dealloc snapshot, node path, count, bytes), sorted.
pub type FlatIntervals = Vec<(u64, Option<u64>, Vec<PathFrame>, u64, u64)>;

fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("page lacks {start:?}"))
        + start.len();
    let to = html[from..].find(end).expect("end of embedded data") + from;
    &html[from..to]
}

/// Our page's JSON payload.
pub fn our_payload(page: &Path) -> Value {
    let html = std::fs::read_to_string(page).expect("read our page");
    let json = between(
        &html,
        r#"<script type="application/json" id="memray-data">"#,
        "</script>",
    );
    serde_json::from_str(json).expect("our payload is JSON")
}

/// memray's `packed_data` (flame graphs: an object; tables: a list).
pub fn memray_packed_data(page: &Path) -> Value {
    let html = std::fs::read_to_string(page).expect("read memray's page");
    serde_json::from_str(between(&html, "const packed_data = ", ";\n")).expect("packed_data")
}

/// memray's `memory_records`.
pub fn memray_memory_records(page: &Path) -> Vec<Value> {
    let html = std::fs::read_to_string(page).expect("read memray's page");
    serde_json::from_str(between(&html, "const memory_records = ", ";\n")).expect("memory_records")
}

fn u(value: &Value) -> u64 {
    value.as_u64().expect("a number")
}

/// Undoes the `html.escape` memray applies to names in its pages.
pub fn unescape_html(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// Our page's tree and, per node, its path.
pub fn our_tree(payload: &Value) -> (FlatTree, Vec<Vec<PathFrame>>) {
    let strings = &payload["strings"];
    let frames = &payload["frames"];
    let nodes = &payload["nodes"];
    let threads = &payload["threads"];
    let text = |v: &Value| strings[u(v) as usize].as_str().unwrap().to_owned();
    let mut paths: Vec<Vec<PathFrame>> = Vec::new();
    let mut tree = FlatTree::new();
    for i in 0..nodes["frame"].as_array().unwrap().len() {
        let path = if i == 0 {
            Vec::new()
        } else {
            let frame = u(&nodes["frame"][i]) as usize;
            let parent = i - u(&nodes["parent_gap"][i]) as usize;
            let mut path = paths[parent].clone();
            path.push((
                threads[u(&nodes["thread"][i]) as usize]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                text(&frames["function"][frame]),
                text(&frames["filename"][frame]),
                u(&frames["lineno"][frame]),
            ));
            path
        };
        let flags = u(&nodes["flags"][i]);
        tree.insert(
            path.clone(),
            NodeValues {
                bytes: u(&nodes["bytes"][i]),
                n_allocations: u(&nodes["count"][i]),
                interesting: flags & 1 != 0,
                import_system: flags & 2 != 0,
            },
        );
        paths.push(path);
    }
    (tree, paths)
}

/// memray's tree (values are zero in temporal pages) and, per node, its path.
/// memray's cut marker is named by `name`; ours by the function.
pub fn memray_tree(packed: &Value) -> (FlatTree, BTreeMap<u64, Vec<PathFrame>>) {
    let strings = &packed["strings"];
    let nodes = &packed["nodes"];
    let text = |field: &str, i: usize| {
        unescape_html(strings[u(&nodes[field][i]) as usize].as_str().unwrap())
    };
    let number = |field: &str, i: usize| nodes[field].get(i).map_or(0, u);
    let mut tree = FlatTree::new();
    let mut paths = BTreeMap::new();
    let mut pending = vec![(0usize, Vec::new())];
    while let Some((i, path)) = pending.pop() {
        tree.insert(
            path.clone(),
            NodeValues {
                bytes: number("value", i),
                n_allocations: number("n_allocations", i),
                interesting: number("interesting", i) == 1,
                import_system: number("import_system", i) == 1,
            },
        );
        for child in nodes["children"][i].as_array().unwrap() {
            let c = u(child) as usize;
            let function = if text("name", c) == "<STACK TOO DEEP>" {
                "<STACK TOO DEEP>".to_owned()
            } else {
                text("function", c)
            };
            let mut child_path = path.clone();
            child_path.push((
                text("thread_id", c),
                function,
                text("filename", c),
                number("lineno", c),
            ));
            pending.push((c, child_path));
        }
        paths.insert(i as u64, path);
    }
    (tree, paths)
}

/// memray's temporal intervals, nodes replaced by their paths.
pub fn memray_intervals(packed: &Value) -> FlatIntervals {
    let (_, paths) = memray_tree(packed);
    let mut out: FlatIntervals = packed["intervals"]
        .as_array()
        .expect("a temporal page")
        .iter()
        .map(|i| {
            (
                u(&i[0]),
                i[1].as_u64(),
                paths[&u(&i[2])].clone(),
                u(&i[3]),
                u(&i[4]),
            )
        })
        .collect();
    out.sort();
    out
}

/// Our page's temporal intervals, nodes replaced by their paths.
pub fn our_intervals(payload: &Value) -> FlatIntervals {
    let (_, paths) = our_tree(payload);
    let t = &payload["temporal"];
    let column = |name: &str| t[name].as_array().expect("a temporal page").clone();
    let (alloc, dealloc, node, count, bytes) = (
        column("alloc"),
        column("dealloc"),
        column("node"),
        column("count"),
        column("bytes"),
    );
    let mut out: FlatIntervals = (0..alloc.len())
        .map(|i| {
            let freed = dealloc[i].as_i64().unwrap();
            let freed = (freed >= 0).then_some(freed as u64);
            (
                u(&alloc[i]),
                freed,
                paths[u(&node[i]) as usize].clone(),
                u(&count[i]),
                u(&bytes[i]),
            )
        })
        .collect();
    out.sort();
    out
}
