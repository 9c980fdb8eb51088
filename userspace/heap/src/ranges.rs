//! Mapped address ranges, with memray's accounting of partial munmaps: an
//! unmapped range may free a mapping entirely, shrink it from one end, or
//! split it in two. Ranges are indexed by start address so a munmap only
//! looks at the mappings it can touch.

use std::collections::BTreeMap;

/// What one removal did to one mapping, with the bytes it took away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal<T> {
    /// The whole remaining range was unmapped.
    Freed(u64, T),
    /// One end was unmapped.
    Shrunk(u64, T),
    /// The middle was unmapped; the mapping is now two ranges.
    Split(u64, T),
}

impl<T> Removal<T> {
    pub fn bytes(&self) -> u64 {
        match self {
            Removal::Freed(b, _) | Removal::Shrunk(b, _) | Removal::Split(b, _) => *b,
        }
    }

    /// The value of the mapping it touched.
    pub fn value(&self) -> &T {
        match self {
            Removal::Freed(_, v) | Removal::Shrunk(_, v) | Removal::Split(_, v) => v,
        }
    }
}

/// Live ranges `[start, end)`, each carrying a value (overlaps are allowed,
/// as in memray, and counted once per range).
#[derive(Debug, Clone)]
pub struct RangeSet<T> {
    /// Keyed by (start, insertion number) so equal starts can coexist.
    ranges: BTreeMap<(u64, u64), (u64, T)>,
    next_id: u64,
    /// The longest range ever inserted: bounds how far left a range that
    /// reaches a given address can start.
    longest: u64,
}

impl<T> Default for RangeSet<T> {
    fn default() -> Self {
        RangeSet {
            ranges: BTreeMap::new(),
            next_id: 0,
            longest: 0,
        }
    }
}

impl<T: Clone> RangeSet<T> {
    /// Adds `[start, start + size)`; empty ranges are ignored.
    pub fn add(&mut self, start: u64, size: u64, value: T) {
        if size == 0 {
            return;
        }
        self.longest = self.longest.max(size);
        self.insert(start, start.saturating_add(size), value);
    }

    fn insert(&mut self, start: u64, end: u64, value: T) {
        self.ranges.insert((start, self.next_id), (end, value));
        self.next_id += 1;
    }

    /// Unmaps `[start, start + size)` from every range it intersects.
    pub fn remove(&mut self, start: u64, size: u64) -> Vec<Removal<T>> {
        let mut removals = Vec::new();
        if size == 0 {
            return removals;
        }
        let end = start.saturating_add(size);
        let lowest_start = start.saturating_sub(self.longest);
        let touched: Vec<(u64, u64)> = self
            .ranges
            .range((lowest_start, 0)..(end, 0))
            .filter(|(_, (range_end, _))| *range_end > start)
            .map(|(key, _)| *key)
            .collect();
        for key in touched {
            let (range_start, _) = key;
            let (range_end, value) = self.ranges.remove(&key).expect("key just listed");
            let cut_start = range_start.max(start);
            let cut_end = range_end.min(end);
            let bytes = cut_end - cut_start;
            let keeps_left = range_start < cut_start;
            let keeps_right = cut_end < range_end;
            if keeps_left {
                self.insert(range_start, cut_start, value.clone());
            }
            if keeps_right {
                self.insert(cut_end, range_end, value.clone());
            }
            removals.push(match (keeps_left, keeps_right) {
                (false, false) => Removal::Freed(bytes, value),
                (true, true) => Removal::Split(bytes, value),
                _ => Removal::Shrunk(bytes, value),
            });
        }
        removals
    }

    /// Every live range as `(size, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &T)> {
        self.ranges
            .iter()
            .map(|((start, _), (end, value))| (end - start, value))
    }

    pub fn total_bytes(&self) -> u64 {
        self.iter().map(|(size, _)| size).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: u64 = 4096;

    #[test]
    fn partial_unmaps_shrink_split_and_free() {
        let mut ranges = RangeSet::default();
        ranges.add(0x10000, 5 * P, 'a');
        let split = ranges.remove(0x10000 + P, P);
        assert_eq!(split, vec![Removal::Split(P, 'a')]);
        let shrunk = ranges.remove(0x10000, P);
        assert_eq!(shrunk, vec![Removal::Freed(P, 'a')]);
        assert_eq!(ranges.total_bytes(), 3 * P);
        let shrunk = ranges.remove(0x10000 + 4 * P, P);
        assert_eq!(shrunk, vec![Removal::Shrunk(P, 'a')]);
        assert_eq!(ranges.total_bytes(), 2 * P);
    }

    #[test]
    fn one_unmap_covers_several_contiguous_mappings() {
        let mut ranges = RangeSet::default();
        ranges.add(0x10000, 4 * P, 1);
        ranges.add(0x10000 + 4 * P, 4 * P, 2);
        let removed = ranges.remove(0x10000, 8 * P);
        assert_eq!(removed.iter().map(Removal::bytes).sum::<u64>(), 8 * P);
        assert_eq!(ranges.total_bytes(), 0);
    }

    #[test]
    fn unmapping_nothing_mapped_or_empty_does_nothing() {
        let mut ranges = RangeSet::default();
        ranges.add(0x10000, P, ());
        assert!(ranges.remove(0x20000, P).is_empty());
        assert!(ranges.remove(0x10000, 0).is_empty());
        ranges.add(0x30000, 0, ());
        assert_eq!(ranges.iter().count(), 1);
    }
}
