//! The live heap: blocks by address for the simple allocators, address
//! ranges for mmap/munmap. Every analysis applies records through
//! [`LiveHeap::apply`] and does its own accounting on the [`Change`].

use rustc_hash::FxHashMap as HashMap;

use crate::ranges::{RangeSet, Removal};
use memray_allocators::{Allocator, AllocatorKind};

/// What one record did to the heap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<B, M> {
    /// A block was allocated. A block already live at its address is
    /// replaced without being freed, as in memray: it is handed back here.
    Allocated { replaced: Option<B> },
    /// A block was freed: the one live at the address, if any (frees of
    /// blocks allocated before tracking find none).
    Freed(Option<B>),
    /// A range was mapped (empty ranges are not kept).
    Mapped,
    /// What unmapping a range did to each mapping it touched.
    Unmapped(Vec<Removal<M>>),
}

impl<B, M> Change<B, M> {
    /// The bytes this change added to the heap and removed from it, given
    /// the record's `size` and how to read a freed block's size. A replaced
    /// block is not freed (memray's accounting).
    pub fn bytes(&self, size: u64, block_size: impl FnOnce(&B) -> u64) -> (u64, u64) {
        match self {
            Change::Allocated { .. } | Change::Mapped => (size, 0),
            Change::Freed(block) => (0, block.as_ref().map_or(0, block_size)),
            Change::Unmapped(removals) => (0, removals.iter().map(Removal::bytes).sum()),
        }
    }
}

/// Live blocks carrying `B` and live mappings carrying `M`.
#[derive(Debug, Clone)]
pub struct LiveHeap<B, M> {
    blocks: HashMap<u64, B>,
    mappings: RangeSet<M>,
}

impl<B, M> Default for LiveHeap<B, M> {
    fn default() -> Self {
        LiveHeap {
            blocks: HashMap::default(),
            mappings: RangeSet::default(),
        }
    }
}

impl<B, M: Clone> LiveHeap<B, M> {
    /// Applies one record. `block` and `mapping` make the value kept for a
    /// new block or mapping; only the one the allocator needs is called.
    pub fn apply(
        &mut self,
        allocator: Allocator,
        address: u64,
        size: u64,
        block: impl FnOnce() -> B,
        mapping: impl FnOnce() -> M,
    ) -> Change<B, M> {
        match allocator.kind() {
            AllocatorKind::SimpleAllocator => Change::Allocated {
                replaced: self.blocks.insert(address, block()),
            },
            AllocatorKind::SimpleDeallocator => Change::Freed(self.blocks.remove(&address)),
            AllocatorKind::RangedAllocator => {
                self.mappings.add(address, size, mapping());
                Change::Mapped
            }
            AllocatorKind::RangedDeallocator => {
                Change::Unmapped(self.mappings.remove(address, size))
            }
        }
    }

    /// The live blocks by address.
    pub fn blocks(&self) -> impl Iterator<Item = (u64, &B)> {
        self.blocks.iter().map(|(address, block)| (*address, block))
    }

    pub fn mappings(&self) -> &RangeSet<M> {
        &self.mappings
    }
}
