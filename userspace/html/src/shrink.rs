//! Makes big models small enough for a browser: folds subtrees too narrow to
//! see into one node per parent and thread, and thins the memory samples.

use std::collections::HashMap;

use crate::model::{FlameGraph, MemorySample, NodeId, NodeLabel, Nodes};

/// Returns `graph` with every subtree holding fewer than `min_bytes` folded
/// into one "<N smaller stacks>" node under its parent (one per thread).
/// Temporal intervals are re-pointed at the node that now holds them.
pub fn fold_small_nodes(graph: &FlameGraph, min_bytes: u64) -> FlameGraph {
    let old = &graph.nodes;
    if min_bytes == 0 || old.is_empty() {
        return graph.clone();
    }
    let mut strings = graph.strings.clone();
    let empty = strings.len() as u32;
    strings.push(String::new());
    let mut new = Nodes::default();
    new.push(0, old.label(0), old.bytes[0], old.n_allocations[0]);
    // Where each old node went, and whether it kept a node of its own.
    let mut moved_to: Vec<NodeId> = vec![0; old.len()];
    let mut kept = vec![false; old.len()];
    kept[0] = true;
    // (new parent, thread) -> (fold node, number of subtrees folded into it).
    let mut folds: HashMap<(NodeId, u32), (NodeId, usize)> = HashMap::new();
    for i in 1..old.len() {
        let parent = old.parent[i] as usize;
        if !kept[parent] {
            moved_to[i] = moved_to[parent];
            continue;
        }
        let new_parent = moved_to[parent];
        if old.bytes[i] >= min_bytes {
            moved_to[i] = new.push(new_parent, old.label(i), old.bytes[i], old.n_allocations[i]);
            kept[i] = true;
            continue;
        }
        let thread = old.thread[i];
        let fold = folds.entry((new_parent, thread)).or_insert_with(|| {
            let label = NodeLabel {
                function: empty,
                filename: empty,
                lineno: 0,
                thread,
                interesting: true,
                import_system: false,
            };
            (new.push(new_parent, label, 0, 0), 0)
        });
        fold.1 += 1;
        let fold = fold.0 as usize;
        new.bytes[fold] += old.bytes[i];
        new.n_allocations[fold] += old.n_allocations[i];
        moved_to[i] = fold as NodeId;
    }
    // In node order: the labels' strings come out the same on every run.
    let mut folds: Vec<(NodeId, usize)> = folds.into_values().collect();
    folds.sort_unstable();
    let mut labels: HashMap<usize, u32> = HashMap::new();
    for (fold, count) in folds {
        new.function[fold as usize] = *labels.entry(count).or_insert_with(|| {
            strings.push(format!("<{count} smaller stacks>"));
            (strings.len() - 1) as u32
        });
    }
    let temporal = graph.temporal.as_ref().map(|temporal| {
        let mut temporal = temporal.clone();
        for interval in &mut temporal.intervals {
            interval.node = moved_to[interval.node as usize];
        }
        temporal
    });
    FlameGraph {
        metadata: graph.metadata.clone(),
        strings,
        threads: graph.threads.clone(),
        nodes: new,
        memory: graph.memory.clone(),
        processes: graph.processes.clone(),
        temporal,
        sources: graph.sources.clone(),
    }
}

/// At most about `max` samples: every `ceil(n / max)`-th one (memray's
/// stride), plus the heap peak so the plot's peak stays exact.
pub fn thin_memory_samples(samples: &[MemorySample], max: usize) -> Vec<MemorySample> {
    if max == 0 || samples.len() <= max {
        return samples.to_vec();
    }
    let stride = samples.len().div_ceil(max);
    let peak = samples
        .iter()
        .enumerate()
        .max_by_key(|(i, s)| (s.heap, std::cmp::Reverse(*i)))
        .map(|(i, _)| i)
        .unwrap_or(0);
    samples
        .iter()
        .enumerate()
        .filter(|(i, _)| i % stride == 0 || *i == peak)
        .map(|(_, s)| *s)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::tests::{frame, metadata};
    use crate::builder::FlameGraphBuilder;
    use crate::model::Interval;

    #[test]
    fn small_subtrees_fold_into_one_node_per_parent_and_thread() {
        let mut builder = FlameGraphBuilder::new(metadata());
        let main = builder.thread("main");
        let big = builder.add_stack(main, &[frame("main"), frame("big")], 1000, 1);
        let tiny = builder.add_stack(main, &[frame("main"), frame("tiny"), frame("deeper")], 5, 2);
        builder.add_stack(main, &[frame("main"), frame("small")], 7, 3);
        builder.add_interval(Interval {
            allocated_before: 0,
            deallocated_before: None,
            node: tiny,
            n_allocations: 2,
            bytes: 5,
        });
        let graph = builder.finish();
        let folded = fold_small_nodes(&graph, 10);
        folded.check().unwrap();
        assert_eq!(folded.total_bytes(), graph.total_bytes());
        assert_eq!(folded.nodes.len(), 4, "root, main, big, one fold");
        let fold = 3;
        assert_eq!(
            folded.strings[folded.nodes.function[fold] as usize],
            "<2 smaller stacks>"
        );
        assert_eq!(folded.nodes.bytes[fold], 12);
        assert_eq!(folded.nodes.n_allocations[fold], 5);
        assert_eq!(folded.nodes.bytes[big as usize], 1000);
        let interval = folded.temporal.unwrap().intervals[0];
        assert_eq!(
            interval.node, fold as u32,
            "intervals follow their folded node"
        );
    }

    #[test]
    fn zero_threshold_keeps_everything() {
        let mut builder = FlameGraphBuilder::new(metadata());
        let main = builder.thread("main");
        builder.add_stack(main, &[frame("a")], 1, 1);
        let graph = builder.finish();
        assert_eq!(fold_small_nodes(&graph, 0), graph);
    }

    #[test]
    fn thinning_keeps_the_stride_and_the_peak() {
        let samples: Vec<MemorySample> = (0..1000u64)
            .map(|i| MemorySample {
                time_ms: i,
                rss: 0,
                heap: if i == 333 { 1_000_000 } else { i },
            })
            .collect();
        let thin = thin_memory_samples(&samples, 100);
        assert_eq!(thin.len(), 101);
        assert!(thin.iter().any(|s| s.heap == 1_000_000));
        assert!(thin.windows(2).all(|w| w[0].time_ms < w[1].time_ms));
        assert_eq!(thin_memory_samples(&samples[..50], 100).len(), 50);
    }
}
