//! Memory over time: snapshots are thinned to at most `max_records`, keeping
//! every `ceil(n / max_records)`-th one, as memray does.

use memray_format::MemorySnapshot;

/// memray's default `--max-memory-records`.
pub const DEFAULT_MAX_MEMORY_RECORDS: usize = 10_000;

/// The stride memray applies to `n` snapshots (0 = no downsampling).
pub fn stride(n: usize, max_records: usize) -> usize {
    if max_records == 0 || n <= max_records {
        0
    } else {
        n.div_ceil(max_records)
    }
}

/// Keeps every `stride`-th snapshot starting with the first.
pub fn downsample(snapshots: Vec<MemorySnapshot>, stride: usize) -> Vec<MemorySnapshot> {
    if stride <= 1 {
        return snapshots;
    }
    snapshots.into_iter().step_by(stride).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsampling_keeps_at_most_max_plus_one() {
        let snapshots: Vec<MemorySnapshot> = (0..101)
            .map(|i| MemorySnapshot {
                time_ms: i,
                rss: i,
                heap: 0,
            })
            .collect();
        let s = stride(snapshots.len(), 50);
        assert_eq!(s, 3);
        let kept = downsample(snapshots, s);
        assert_eq!(kept.len(), 34);
        assert_eq!(kept[1].time_ms, 3);
        assert_eq!(stride(10, 10), 0);
    }
}
