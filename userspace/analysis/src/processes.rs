//! Several processes' memory over time as one timeline: their snapshots
//! merged by timestamp, each process counting with its latest snapshot from
//! its first to its last one (before and after that it does not exist, or
//! its memory is gone). The peak of that sum is what the processes held at
//! the same moment, which the sum of their own peaks overstates.

use memray_format::MemorySnapshot;

/// The summed timeline: one sample at every time any process has a
/// snapshot, with the resident size and heap of every process alive then.
/// Each process's snapshots must be in time order, as a capture holds them.
pub fn combined_memory(processes: &[&[MemorySnapshot]]) -> Vec<MemorySnapshot> {
    let mut changes: Vec<(u64, usize, usize)> = Vec::new();
    for (process, snapshots) in processes.iter().enumerate() {
        changes.extend((0..snapshots.len()).map(|i| (snapshots[i].time_ms, process, i)));
    }
    changes.sort_unstable();
    let mut current: Vec<Option<MemorySnapshot>> = vec![None; processes.len()];
    let mut combined: Vec<MemorySnapshot> = Vec::new();
    let mut at = 0;
    while at < changes.len() {
        let time_ms = changes[at].0;
        // Every process whose snapshot falls at this time is applied first.
        while at < changes.len() && changes[at].0 == time_ms {
            let (_, process, index) = changes[at];
            current[process] = Some(processes[process][index]);
            at += 1;
        }
        let alive = current.iter().flatten();
        combined.push(MemorySnapshot {
            time_ms,
            rss: alive.clone().map(|s| s.rss).sum(),
            heap: alive.map(|s| s.heap).sum(),
        });
        // A process leaves after its last snapshot.
        for (process, snapshot) in current.iter_mut().enumerate() {
            let last = processes[process].last().map(|s| s.time_ms);
            if last == Some(time_ms) {
                *snapshot = None;
            }
        }
    }
    combined
}

/// The first sample holding the highest heap.
pub fn heap_peak(samples: &[MemorySnapshot]) -> Option<MemorySnapshot> {
    samples
        .iter()
        .copied()
        .reduce(|best, s| if s.heap > best.heap { s } else { best })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(time_ms: u64, heap: u64) -> MemorySnapshot {
        MemorySnapshot {
            time_ms,
            rss: heap * 2,
            heap,
        }
    }

    #[test]
    fn processes_add_up_only_while_they_live() {
        let parent = [at(0, 10), at(10, 20), at(20, 5), at(30, 5)];
        let worker = [at(5, 100), at(15, 50)];
        let late = [at(20, 1), at(40, 2)];
        let combined = combined_memory(&[&parent, &worker, &late]);
        let heaps: Vec<(u64, u64)> = combined.iter().map(|s| (s.time_ms, s.heap)).collect();
        assert_eq!(
            heaps,
            [
                (0, 10),
                (5, 110),
                (10, 120),
                (15, 70),
                // The worker is gone after its last snapshot (15).
                (20, 6),
                (30, 6),
                (40, 2),
            ]
        );
        assert_eq!(combined[2].rss, 240);
        assert_eq!(heap_peak(&combined), Some(at(10, 120)));
        // Less than the sum of the peaks (20 + 100 + 2).
        assert!(heap_peak(&combined).unwrap().heap < 122);
    }

    #[test]
    fn one_process_is_its_own_timeline() {
        let only = [at(0, 3), at(10, 7), at(20, 7)];
        assert_eq!(combined_memory(&[&only]), only);
        assert_eq!(heap_peak(&only), Some(at(10, 7)));
        assert_eq!(heap_peak(&[]), None);
    }
}
