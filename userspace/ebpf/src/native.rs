//! Native stacks for `--native`: the probes' stack copies
//! ([`NativeCopies`], drained after each batch like the Python stacks), and
//! per process the unwinder over them ([`NativeStacks`]).
//!
//! The process's objects come from `/proc/PID/maps` when its capture
//! starts, and again whenever a stack holds an address outside every known
//! object (a library loaded since), at most once per batch: the maps are
//! never read per event, and a new object shows up in the first stack that
//! runs its code. Each change is a new segment generation in the capture.
//! A library loaded and unloaded again between two drains is missed (its
//! frames stay unresolved).

use std::collections::{HashMap, VecDeque};

use aya::maps::{MapData, RingBuf};
use memray_ebpf_common::native_stack::NativeStackHeader;
use memray_format::Image;
use memray_unwind::{process_images, CopiedStack, CopiedStackUnwinder};

/// One copy of a thread's stack top.
struct Copy {
    header: NativeStackHeader,
    bytes: Vec<u8>,
}

/// The copies received and not yet used, by thread.
pub struct NativeCopies {
    ring: RingBuf<MapData>,
    by_thread: HashMap<(u32, u32), VecDeque<Copy>>,
}

impl NativeCopies {
    pub(crate) fn new(ring: RingBuf<MapData>) -> NativeCopies {
        NativeCopies {
            ring,
            by_thread: HashMap::new(),
        }
    }

    /// Takes in the copies waiting in the ring buffer (after a batch of
    /// records: every copy they name was sent before them).
    pub fn drain(&mut self) {
        while let Some(record) = self.ring.next() {
            let size = size_of::<NativeStackHeader>();
            let Some(header) = record.get(..size) else {
                continue;
            };
            // SAFETY: plain integers (any bytes are valid), `size` bytes, read unaligned.
            let header: NativeStackHeader =
                unsafe { header.as_ptr().cast::<NativeStackHeader>().read_unaligned() };
            let bytes = record[size..].to_vec();
            self.by_thread
                .entry((header.tgid, header.tid))
                .or_default()
                .push_back(Copy { header, bytes });
        }
    }

    /// The copy `serial` of thread `tid` of `tgid`, taken out with the
    /// thread's older copies (left by calls that failed, so never recorded).
    fn take(&mut self, tgid: u32, tid: u32, serial: u32) -> Option<Copy> {
        let copies = self.by_thread.get_mut(&(tgid, tid))?;
        while let Some(copy) = copies.pop_front() {
            if copy.header.serial == serial {
                return Some(copy);
            }
        }
        None
    }
}

/// The native side of one process's capture.
pub(crate) struct NativeStacks {
    pid: u32,
    unwinder: CopiedStackUnwinder,
    images: Vec<Image>,
    /// The batch number of the last refresh of the objects.
    refreshed_in: u64,
    /// Allocations recorded without their copy (the ring buffer was full).
    pub missing: u64,
}

impl NativeStacks {
    /// The unwinder of process `pid` and its objects now, for the capture's
    /// first segment generation.
    pub(crate) fn new(pid: u32) -> (NativeStacks, Vec<Image>) {
        let images = process_images(pid);
        let mut unwinder = CopiedStackUnwinder::new(pid);
        unwinder.set_images(&images);
        let stacks = NativeStacks {
            pid,
            unwinder,
            images: images.clone(),
            refreshed_in: 0,
            missing: 0,
        };
        (stacks, images)
    }

    /// The return addresses of the allocation of thread `tid` whose copy is
    /// `serial`, innermost first, into `out` (emptied first). `batch`
    /// numbers the batch being recorded; `objects_changed` receives the
    /// process's new objects when a refresh found them changed.
    pub(crate) fn unwind(
        &mut self,
        copies: &mut NativeCopies,
        (tid, serial, batch): (u32, u32, u64),
        out: &mut Vec<u64>,
        mut objects_changed: impl FnMut(&[Image]),
    ) {
        out.clear();
        if serial == 0 {
            return;
        }
        let Some(copy) = copies.take(self.pid, tid, serial) else {
            self.missing += 1;
            return;
        };
        let stack = CopiedStack {
            ip: copy.header.ip,
            sp: copy.header.sp,
            bp: copy.header.bp,
            bytes: &copy.bytes,
        };
        self.unwinder.unwind(stack, out);
        let unknown = out.iter().any(|&address| !self.unwinder.knows(address));
        if unknown && self.refreshed_in != batch {
            self.refreshed_in = batch;
            let images = process_images(self.pid);
            if !images.is_empty() && images != self.images {
                self.unwinder.set_images(&images);
                objects_changed(&images);
                self.images = images;
                out.clear();
                self.unwinder.unwind(stack, out);
            }
        }
    }
}
