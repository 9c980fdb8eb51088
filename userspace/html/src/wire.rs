//! The compact JSON the pages' scripts read: a string table, a deduplicated
//! frame table and parallel arrays, with parents stored as small gaps.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::model::{FlameGraph, MemorySample, Metadata};

/// Bit set in `nodes.flags` for interesting frames.
const INTERESTING: u8 = 1;
/// Bit set in `nodes.flags` for frames of the import system.
const IMPORT_SYSTEM: u8 = 2;

#[derive(Serialize)]
pub struct FlameGraphPayload<'a> {
    meta: &'a Metadata,
    strings: &'a [String],
    threads: &'a [String],
    frames: Frames,
    nodes: WireNodes,
    memory: Memory,
    temporal: Option<WireTemporal<'a>>,
    /// File string id -> lines, by id so the page's bytes are the same every run.
    sources: BTreeMap<u32, &'a [String]>,
}

#[derive(Serialize, Default)]
struct Frames {
    function: Vec<u32>,
    filename: Vec<u32>,
    lineno: Vec<i32>,
}

#[derive(Serialize, Default)]
struct WireNodes {
    /// `i - parent[i]` (0 for the root): mostly 1, so short.
    parent_gap: Vec<u32>,
    frame: Vec<u32>,
    thread: Vec<u32>,
    bytes: Vec<u64>,
    count: Vec<u64>,
    flags: Vec<u8>,
}

#[derive(Serialize, Default)]
struct Memory {
    time: Vec<u64>,
    rss: Vec<u64>,
    heap: Vec<u64>,
    /// Only over several processes (so one capture's page is unchanged).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    processes: Vec<ProcessLine>,
}

/// One process's own heap line.
#[derive(Serialize)]
struct ProcessLine {
    name: String,
    time: Vec<u64>,
    heap: Vec<u64>,
}

#[derive(Serialize)]
struct WireTemporal<'a> {
    alloc: Vec<u32>,
    /// -1: never freed.
    dealloc: Vec<i64>,
    node: Vec<u32>,
    count: Vec<u64>,
    bytes: Vec<u64>,
    hwm: Option<&'a [u64]>,
}

/// `memory` replaces `graph.memory` (e.g. thinned).
pub fn flamegraph_payload<'a>(
    graph: &'a FlameGraph,
    memory: &[MemorySample],
) -> FlameGraphPayload<'a> {
    FlameGraphPayload {
        meta: &graph.metadata,
        strings: &graph.strings,
        threads: &graph.threads,
        frames: Frames::default(),
        nodes: WireNodes::default(),
        memory: Memory {
            time: memory.iter().map(|s| s.time_ms).collect(),
            rss: memory.iter().map(|s| s.rss).collect(),
            heap: memory.iter().map(|s| s.heap).collect(),
            processes: graph
                .processes
                .iter()
                .map(|p| ProcessLine {
                    name: p.name.clone(),
                    time: p.samples.iter().map(|s| s.time_ms).collect(),
                    heap: p.samples.iter().map(|s| s.heap).collect(),
                })
                .collect(),
        },
        temporal: graph.temporal.as_ref().map(|t| WireTemporal {
            alloc: t.intervals.iter().map(|i| i.allocated_before).collect(),
            dealloc: t
                .intervals
                .iter()
                .map(|i| i.deallocated_before.map_or(-1, i64::from))
                .collect(),
            node: t.intervals.iter().map(|i| i.node).collect(),
            count: t.intervals.iter().map(|i| i.n_allocations).collect(),
            bytes: t.intervals.iter().map(|i| i.bytes).collect(),
            hwm: t.high_water_mark_by_snapshot.as_deref(),
        }),
        sources: graph
            .sources
            .iter()
            .map(|s| (s.filename, s.lines.as_slice()))
            .collect(),
    }
    .with_nodes(graph)
}

impl FlameGraphPayload<'_> {
    fn with_nodes(mut self, graph: &FlameGraph) -> Self {
        let nodes = &graph.nodes;
        let mut frame_ids: HashMap<(u32, u32, i32), u32> = HashMap::new();
        for i in 0..nodes.len() {
            let key = (nodes.function[i], nodes.filename[i], nodes.lineno[i]);
            let frames = &mut self.frames;
            let frame = *frame_ids.entry(key).or_insert_with(|| {
                frames.function.push(key.0);
                frames.filename.push(key.1);
                frames.lineno.push(key.2);
                (frames.function.len() - 1) as u32
            });
            let wire = &mut self.nodes;
            wire.parent_gap
                .push(i as u32 - if i == 0 { 0 } else { nodes.parent[i] });
            wire.frame.push(frame);
            wire.thread.push(nodes.thread[i]);
            wire.bytes.push(nodes.bytes[i]);
            wire.count.push(nodes.n_allocations[i]);
            let mut flags = 0;
            if nodes.interesting[i] {
                flags |= INTERESTING;
            }
            if nodes.import_system[i] {
                flags |= IMPORT_SYSTEM;
            }
            wire.flags.push(flags);
        }
        self
    }
}
