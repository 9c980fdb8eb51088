//! memray's `FrameTree` (a trie of stacks: node 0 is the root, new nodes get
//! 1, 2, 3… in creation order) and its deduplicating frame `Registry`.

use std::hash::{Hash, Hasher};

// Keys here are small integers: SipHash would dominate the replay's
// per-FRAME_PUSH cost.
use rustc_hash::{FxHashMap, FxHasher};

#[derive(Default, Debug, Clone)]
pub struct FrameTree {
    /// `(frame_id, parent)` of nodes 1..; index 0 of the vector is node 1.
    nodes: Vec<(u64, u32)>,
    children: FxHashMap<(u32, u64), u32>,
}

impl FrameTree {
    /// The child of `parent` for `frame_id`, created if new.
    #[inline]
    pub fn trace_index(&mut self, parent: u32, frame_id: u64) -> u32 {
        let next = self.nodes.len() as u32 + 1;
        let node = *self.children.entry((parent, frame_id)).or_insert(next);
        if node == next {
            self.nodes.push((frame_id, parent));
        }
        node
    }

    /// `(frame_id, parent)` of `node`, `None` for the root or unknown nodes.
    #[inline]
    pub fn node(&self, node: u32) -> Option<(u64, u32)> {
        self.nodes.get((node as usize).wrapping_sub(1)).copied()
    }

    /// Number of nodes besides the root.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

/// A direct-mapped cache of `(parent node, frame) -> child node`, in front of
/// a [`Registry`] and a [`FrameTree`]: replaying a loop pushes the same few
/// frames (one per line that allocates) under the same parent over and over,
/// and two hash-map lookups each time cost more than the rest of the replay.
pub struct ChildCache<K> {
    slots: Box<[Option<(u32, K, u32)>]>,
}

const CHILD_CACHE_BITS: u32 = 10;

impl<K> Default for ChildCache<K> {
    fn default() -> Self {
        ChildCache {
            slots: (0..1 << CHILD_CACHE_BITS).map(|_| None).collect(),
        }
    }
}

impl<K: Hash + Eq + Copy> ChildCache<K> {
    #[inline]
    fn slot(parent: u32, key: &K) -> usize {
        let mut hasher = FxHasher::default();
        hasher.write_u32(parent);
        key.hash(&mut hasher);
        // rustc-hash's `finish` rotates the product's best bits to the bottom.
        (hasher.finish() as usize) & ((1 << CHILD_CACHE_BITS) - 1)
    }

    #[inline]
    pub fn get(&self, parent: u32, key: &K) -> Option<u32> {
        match self.slots[Self::slot(parent, key)] {
            Some((p, k, node)) if p == parent && k == *key => Some(node),
            _ => None,
        }
    }

    #[inline]
    pub fn insert(&mut self, parent: u32, key: K, node: u32) {
        self.slots[Self::slot(parent, &key)] = Some((parent, key, node));
    }
}

/// Assigns ids 0, 1, 2… to distinct values in first-seen order.
#[derive(Debug, Clone)]
pub struct Registry<T> {
    ids: FxHashMap<T, u64>,
    values: Vec<T>,
}

impl<T> Default for Registry<T> {
    fn default() -> Self {
        Registry {
            ids: FxHashMap::default(),
            values: Vec::new(),
        }
    }
}

impl<T: Hash + Eq + Clone> Registry<T> {
    #[inline]
    pub fn register(&mut self, value: T) -> u64 {
        let next = self.values.len() as u64;
        let id = *self.ids.entry(value.clone()).or_insert(next);
        if id == next {
            self.values.push(value);
        }
        id
    }

    pub fn get(&self, id: u64) -> Option<&T> {
        self.values.get(id as usize)
    }

    pub fn values(&self) -> &[T] {
        &self.values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trie_numbers_nodes_in_creation_order() {
        let mut tree = FrameTree::default();
        assert_eq!(tree.trace_index(0, 0), 1);
        assert_eq!(tree.trace_index(1, 1), 2);
        assert_eq!(tree.trace_index(0, 2), 3);
        assert_eq!(tree.trace_index(1, 1), 2);
        assert_eq!(tree.node(2), Some((1, 1)));
        assert_eq!(tree.node(0), None);
        assert_eq!(tree.len(), 3);
    }

    #[test]
    fn registry_dedups_in_first_seen_order() {
        let mut reg = Registry::default();
        assert_eq!(reg.register("a"), 0);
        assert_eq!(reg.register("b"), 1);
        assert_eq!(reg.register("a"), 0);
        assert_eq!(reg.get(1), Some(&"b"));
    }
}
