//! The allocation-size histogram of `memray stats`: 10 log-spaced bins,
//! computed with exactly memray's floating-point steps.

/// One bin: sizes in `min_bytes..=max_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bin {
    pub min_bytes: u64,
    pub max_bytes: u64,
    /// memray's upper bound (exclusive except for the last bin).
    pub upper: u64,
    pub count: u64,
}

/// Python's float floor division (`a // b`), which is not `(a / b).floor()`.
fn python_floor_div(a: f64, b: f64) -> f64 {
    let rem = a % b;
    let mut div = (a - rem) / b;
    if rem != 0.0 && (b < 0.0) != (rem < 0.0) {
        div -= 1.0;
    }
    if div != 0.0 {
        let floor = div.floor();
        if div - floor > 0.5 {
            floor + 1.0
        } else {
            floor
        }
    } else {
        (0.0f64).copysign(a / b)
    }
}

/// Bins `counts_by_size` (size → number of allocations) into `bins` bins.
/// Empty input gives no bins.
pub fn histogram(counts_by_size: &[(u64, u64)], bins: usize) -> Vec<Bin> {
    let Some(largest) = counts_by_size.iter().map(|(s, _)| *s).max() else {
        return Vec::new();
    };
    let smallest_nonzero = counts_by_size
        .iter()
        .map(|(s, _)| *s)
        .filter(|s| *s != 0)
        .min()
        .unwrap_or(1);
    let mut low = (smallest_nonzero as f64).ln();
    let high = (largest.max(1) as f64).ln();
    if low == high {
        low /= 2.0;
    }
    let step = (high - low) / bins as f64;
    let uppers: Vec<u64> = (0..bins)
        .map(|i| (low + step * (i + 1) as f64).exp() as u64)
        .collect();
    let mut counts = vec![0u64; bins];
    for &(size, count) in counts_by_size {
        let bucket = if size == 0 || step == 0.0 {
            0
        } else {
            let b = python_floor_div((size as f64).ln() - low, step);
            (b.max(0.0) as usize).min(bins - 1)
        };
        counts[bucket] += count;
    }
    let mut start = 0;
    uppers
        .iter()
        .zip(counts)
        .enumerate()
        .map(|(i, (&upper, count))| {
            let inclusive = i == bins - 1;
            let bin = Bin {
                min_bytes: start,
                max_bytes: if inclusive {
                    upper
                } else {
                    upper.wrapping_sub(1)
                },
                upper,
                count,
            };
            start = upper;
            bin
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_follow_memrays_log_steps() {
        // Values from memray's test_stats_reporter fixture shape: sizes 1..=1000.
        let data = [(1, 1), (10, 2), (100, 3), (1000, 4), (0, 5)];
        let bins = histogram(&data, 10);
        assert_eq!(bins.len(), 10);
        assert_eq!(bins[0].min_bytes, 0);
        assert_eq!(bins[9].max_bytes, bins[9].upper);
        assert_eq!(bins.iter().map(|b| b.count).sum::<u64>(), 15);
        // Size 0 goes into bin 0 with size 1.
        assert_eq!(bins[0].count, 6);
        assert_eq!(bins[9].count, 4);
        for pair in bins.windows(2) {
            assert_eq!(pair[0].max_bytes + 1, pair[1].min_bytes);
        }
    }

    #[test]
    fn a_single_size_halves_the_low_end() {
        let bins = histogram(&[(1024, 3)], 10);
        assert_eq!(bins[9].upper, 1024);
        assert_eq!(bins[9].count, 3);
        assert!(histogram(&[], 10).is_empty());
    }

    #[test]
    fn floor_division_matches_python() {
        assert_eq!(python_floor_div(7.0, 2.0), 3.0);
        assert_eq!(python_floor_div(-7.0, 2.0), -4.0);
        assert_eq!(python_floor_div(0.0, 2.0), 0.0);
    }
}
