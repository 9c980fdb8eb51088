//! The code objects the probes copied as their processes freed them
//! (`CODE_SNAPSHOTS`, see `memray_ebpf_common::code_snapshot`), by process,
//! address and fingerprint, kept while records made before the free may
//! still be taken in.

use std::collections::HashMap;

use aya::maps::{MapData, RingBuf};
use memray_ebpf_common::code_snapshot::{part_offset, CodeSnapshotHeader, CODE_SNAPSHOT_PARTS};
use python_frames::SnapshotMemory;

use crate::ring_record::read;

/// How long after a code object's free records made before it may still
/// come: those of other CPUs, committed a little later than their time.
const LATE_RECORDS_NS: u64 = 50_000_000;

/// A freed code object's memory as it was.
pub struct CodeSnapshot {
    freed_ns: u64,
    pub memory: SnapshotMemory,
}

pub struct CodeSnapshots {
    ring: RingBuf<MapData>,
    /// By (tgid, code object address, fingerprint).
    snapshots: HashMap<(u32, u64, u64), CodeSnapshot>,
}

impl CodeSnapshots {
    pub(super) fn new(ring: RingBuf<MapData>) -> CodeSnapshots {
        CodeSnapshots {
            ring,
            snapshots: HashMap::new(),
        }
    }

    /// Takes in the snapshots waiting in the ring buffer.
    pub fn drain(&mut self) {
        while let Some(record) = self.ring.next() {
            if let Some((key, snapshot)) = parse(&record) {
                self.snapshots.insert(key, snapshot);
            }
        }
    }

    /// The snapshot of the code object at `code` with `fingerprint` that
    /// process `tgid` freed, if it was freed lately.
    pub fn get(&self, tgid: u32, code: u64, fingerprint: u64) -> Option<&CodeSnapshot> {
        self.snapshots.get(&(tgid, code, fingerprint))
    }

    /// Forgets the code objects freed well before `taken_ns`, the time of
    /// the newest record taken in: every record that can hold them is in.
    pub fn forget_before(&mut self, taken_ns: u64) {
        let until = taken_ns.saturating_sub(LATE_RECORDS_NS);
        self.snapshots
            .retain(|_, snapshot| snapshot.freed_ns >= until);
    }
}

fn parse(record: &[u8]) -> Option<((u32, u64, u64), CodeSnapshot)> {
    let header = read::<CodeSnapshotHeader>(record)?;
    let mut memory = SnapshotMemory::new();
    for part in 0..CODE_SNAPSHOT_PARTS {
        let (address, length) = (header.addresses[part], header.lengths[part] as usize);
        let start = part_offset(part);
        if let (true, Some(bytes)) = (address != 0, record.get(start..start + length)) {
            memory.insert(address, bytes.to_vec());
        }
    }
    let key = (header.tgid, header.code, header.fingerprint);
    Some((
        key,
        CodeSnapshot {
            freed_ns: header.time_ns,
            memory,
        },
    ))
}
