//! A live heap block as the live-allocation maps keep it, keyed by address:
//! only what grouping needs, so that those maps (the bulk of a report's
//! memory on big captures) stay small.

use memray_format::Allocator;

use memray_format::AllocationEvent;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveBlock {
    pub size: u64,
    /// The allocation record's index in the capture.
    pub index: u64,
    tid: u64,
    native_frame_id: u64,
    python_node: u32,
    native_segment_generation: u32,
    allocator: Allocator,
}

impl LiveBlock {
    /// One allocation record of a streaming capture, made at record `index`.
    pub fn new(allocation: &AllocationEvent, index: u64) -> LiveBlock {
        LiveBlock {
            size: allocation.size,
            index,
            tid: allocation.tid,
            native_frame_id: allocation.native_frame_id,
            python_node: allocation.python_node,
            native_segment_generation: allocation.native_segment_generation,
            allocator: allocation.allocator,
        }
    }

    /// The record again, given the address it is kept under.
    pub fn allocation(&self, address: u64) -> AllocationEvent {
        AllocationEvent {
            tid: self.tid,
            address,
            size: self.size,
            allocator: self.allocator,
            python_node: self.python_node,
            native_frame_id: self.native_frame_id,
            native_segment_generation: self.native_segment_generation,
            record_index: self.index,
            n_allocations: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_gives_back_its_record() {
        let allocation = AllocationEvent {
            record_index: 41,
            ..AllocationEvent::new(3, 0x1000, 48, Allocator::PymallocMalloc)
                .at(7)
                .with_native(9)
        };
        let block = LiveBlock::new(&allocation, 41);
        assert_eq!(block.allocation(0x1000), allocation);
        assert_eq!((block.size, block.index), (48, 41));
    }
}
