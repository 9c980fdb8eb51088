//! A live heap block as the live-allocation maps keep it, keyed by address:
//! only what grouping needs, so that those maps (the bulk of a report's
//! memory on big captures) stay small.

use memray_format::Allocator;

use crate::event::Allocation;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveBlock {
    pub size: u64,
    /// The allocation record's index in the capture.
    pub index: u64,
    tid: u64,
    native_node: u64,
    python_node: u32,
    generation: u32,
    allocator: Allocator,
}

impl LiveBlock {
    /// One allocation record of a streaming capture, made at record `index`.
    pub fn new(allocation: &Allocation, index: u64) -> LiveBlock {
        LiveBlock {
            size: allocation.size,
            index,
            tid: allocation.tid,
            native_node: allocation.native_node,
            python_node: allocation.python_node,
            generation: allocation.generation,
            allocator: allocation.allocator,
        }
    }

    /// The record again, given the address it is kept under.
    pub fn allocation(&self, address: u64) -> Allocation {
        Allocation {
            tid: self.tid,
            address,
            size: self.size,
            allocator: self.allocator,
            python_node: self.python_node,
            native_node: self.native_node,
            generation: self.generation,
            n_allocations: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_gives_back_its_record() {
        let allocation = Allocation::new(3, 0x1000, 48, Allocator::PymallocMalloc)
            .at(7)
            .with_native(9);
        let block = LiveBlock::new(&allocation, 41);
        assert_eq!(block.allocation(0x1000), allocation);
        assert_eq!((block.size, block.index), (48, 41));
    }
}
