//! Why a report model cannot be rendered.

/// A model that breaks one of the invariants documented on [`crate::FlameGraph`]
/// or [`crate::Table`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModelError {
    #[error("the flame graph has no root node")]
    NoRoot,
    #[error("node array `{field}` has {found} entries, expected {expected}")]
    LengthMismatch {
        field: &'static str,
        found: usize,
        expected: usize,
    },
    #[error("node {node} has parent {parent}; parents must come before their children")]
    ParentOrder { node: usize, parent: u32 },
    #[error("{what} {index} refers to string {string}, but the table has {len} strings")]
    BadString {
        what: &'static str,
        index: usize,
        string: u32,
        len: usize,
    },
    #[error("node {node} refers to thread {thread}, but there are {len} threads")]
    BadThread {
        node: usize,
        thread: u32,
        len: usize,
    },
    #[error("the children of node {node} hold {children} bytes, more than its own {bytes}")]
    ChildrenExceedParent {
        node: usize,
        children: u64,
        bytes: u64,
    },
    #[error("temporal interval {index} refers to node {node}, but there are {len} nodes")]
    BadIntervalNode { index: usize, node: u32, len: usize },
    #[error("temporal interval {index} is deallocated (snapshot {dealloc}) before it is allocated (snapshot {alloc})")]
    BadIntervalOrder {
        index: usize,
        alloc: u32,
        dealloc: u32,
    },
    #[error(
        "high_water_mark_by_snapshot has {found} entries, expected one per snapshot ({expected})"
    )]
    BadSnapshotCount { found: usize, expected: usize },
    #[error("source file {index} refers to string {string}, but the table has {len} strings")]
    BadSourceFile {
        index: usize,
        string: u32,
        len: usize,
    },
}
