//! The stacks the probes sent, by id.
//!
//! A stack's record is committed to `PYTHON_STACKS` before the probe that
//! walked it writes any record naming its id, so draining this ring after
//! reading a batch of other records finds every stack that batch names.

use std::collections::HashMap;

use aya::maps::{MapData, RingBuf};
use memray_ebpf_common::python_stack::{StackFrame, StackHeader};

use crate::ring_record::read;

/// One stack as the probe saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stack {
    pub tgid: u32,
    /// `STATUS_*` bits of the walk.
    pub status: u16,
    /// Innermost first.
    pub frames: Vec<StackFrame>,
}

/// Every stack received so far (the probes send each id once, or again
/// after their own table forgot it).
pub struct StackTable {
    ring: RingBuf<MapData>,
    stacks: HashMap<u64, Stack>,
}

impl StackTable {
    pub(super) fn new(ring: RingBuf<MapData>) -> StackTable {
        StackTable {
            ring,
            stacks: HashMap::new(),
        }
    }

    /// Takes in the records waiting in the ring buffer.
    pub fn drain(&mut self) {
        while let Some(record) = self.ring.next() {
            if let Some((id, stack)) = parse(&record) {
                self.stacks.insert(id, stack);
            }
        }
    }

    pub fn get(&self, id: u64) -> Option<&Stack> {
        self.stacks.get(&id)
    }
}

fn parse(record: &[u8]) -> Option<(u64, Stack)> {
    let header = read::<StackHeader>(record)?;
    let frames = record[size_of::<StackHeader>()..]
        .chunks_exact(size_of::<StackFrame>())
        .take(usize::from(header.depth))
        .filter_map(read::<StackFrame>)
        .collect();
    Some((
        header.id,
        Stack {
            tgid: header.tgid,
            status: header.status,
            frames,
        },
    ))
}
