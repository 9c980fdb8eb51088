//! `memray table`: one row per allocation location, sortable and filterable
//! in the page.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::model::Metadata;

/// One allocation location (memray groups by thread unless merged, allocator
/// and top frame).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableRow {
    /// In a table over several processes, the process (its pid and command
    /// line); empty otherwise.
    pub process: String,
    /// Thread name; ignored when `metadata.merge_threads`.
    pub thread: String,
    pub size: u64,
    /// "malloc", "pymalloc_malloc", ...
    pub allocator: String,
    pub n_allocations: u64,
    /// The top frame, "function at file:line".
    pub location: String,
    /// The whole stack, innermost frame first (may be empty).
    pub stack: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub metadata: Metadata,
    pub rows: Vec<TableRow>,
}

/// Columns as parallel arrays over a string table.
#[derive(Serialize)]
pub struct TablePayload<'a> {
    meta: &'a Metadata,
    strings: Vec<&'a str>,
    /// Only over several processes (so one capture's page is unchanged).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    process: Vec<u32>,
    thread: Vec<u32>,
    size: Vec<u64>,
    allocator: Vec<u32>,
    count: Vec<u64>,
    location: Vec<u32>,
    stack: Vec<Vec<u32>>,
}

pub fn table_payload<'a>(table: &'a Table) -> TablePayload<'a> {
    let mut ids: HashMap<&str, u32> = HashMap::new();
    let mut strings: Vec<&str> = Vec::new();
    let mut intern = |text: &'a str| -> u32 {
        *ids.entry(text).or_insert_with(|| {
            strings.push(text);
            (strings.len() - 1) as u32
        })
    };
    let rows = &table.rows;
    let process = if rows.iter().any(|r| !r.process.is_empty()) {
        rows.iter().map(|r| intern(&r.process)).collect()
    } else {
        Vec::new()
    };
    let thread = rows.iter().map(|r| intern(&r.thread)).collect();
    let allocator = rows.iter().map(|r| intern(&r.allocator)).collect();
    let location = rows.iter().map(|r| intern(&r.location)).collect();
    let stack = rows
        .iter()
        .map(|r| r.stack.iter().map(|f| intern(f)).collect())
        .collect();
    TablePayload {
        meta: &table.metadata,
        strings,
        process,
        thread,
        size: rows.iter().map(|r| r.size).collect(),
        allocator,
        count: rows.iter().map(|r| r.n_allocations).collect(),
        location,
        stack,
    }
}
