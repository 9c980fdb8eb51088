//! Native stacks for `--native`: the probes' stack copies
//! ([`NativeCopies`], drained after each batch like the Python stacks), and
//! per process the unwinder over them ([`NativeStacks`]).
//!
//! The process's objects come from `/proc/PID/maps` when its capture
//! starts; then each executable mapping it makes arrives as it happens
//! ([`ExecutableMappings`]) and is applied before the allocations that
//! follow it, by time. Threads that existed before the capture and are not
//! followed that way (`attach` to a running process whose perf events
//! could not be opened) are covered by reading the maps again when a stack
//! holds an address outside every known object, at most once per batch.
//! Each change is a new segment generation in the capture.

use std::collections::{HashMap, VecDeque};

use aya::maps::{MapData, RingBuf};
use memray_ebpf_common::native_stack::{NativeStackHeader, NATIVE_COPY_LOST};
use memray_format::Image;
use memray_unwind::{image_at, process_images, CopiedStack, CopiedStackUnwinder};

use crate::executable_mappings::{ExecutableMappings, Mapping};

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
    /// records: every copy they name was sent before them); returns how many.
    pub fn drain(&mut self) -> usize {
        let mut taken = 0;
        while let Some(record) = self.ring.next() {
            taken += 1;
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
        taken
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
    /// The mappings it makes (`None`: perf events unavailable), and those
    /// received and not applied yet, oldest first.
    mappings: Option<ExecutableMappings>,
    new_mappings: Vec<Mapping>,
    /// The batch number of the last refresh of the objects.
    refreshed_in: u64,
    /// Allocations recorded without their copy (the ring buffer was full).
    pub missing: u64,
}

impl NativeStacks {
    /// The unwinder of process `pid` and its objects now, for the capture's
    /// first segment generation.
    pub(crate) fn new(pid: u32) -> (NativeStacks, Vec<Image>) {
        // Followed first: nothing mapped between the two is missed.
        let mappings = ExecutableMappings::follow(pid).ok();
        let images = process_images(pid);
        let mut unwinder = CopiedStackUnwinder::new(pid);
        unwinder.set_images(&images);
        let stacks = NativeStacks {
            pid,
            unwinder,
            images: images.clone(),
            mappings,
            new_mappings: Vec::new(),
            refreshed_in: 0,
            missing: 0,
        };
        (stacks, images)
    }

    /// The return addresses of the allocation made at `time_ns` by thread
    /// `tid` whose copy is `serial`, innermost first, into `out` (emptied
    /// first). `batch` numbers the batch being recorded; `objects_changed`
    /// receives the process's objects whenever they change.
    pub(crate) fn unwind(
        &mut self,
        copies: &mut NativeCopies,
        (tid, serial, time_ns, batch): (u32, u32, u64, u64),
        out: &mut Vec<u64>,
        mut objects_changed: impl FnMut(&[Image]),
    ) {
        out.clear();
        if self.map_until(time_ns) {
            objects_changed(&self.images);
        }
        // Serial 0: made before the probes copied this process's stacks.
        if serial == 0 {
            return;
        }
        let copy = (serial != NATIVE_COPY_LOST).then(|| copies.take(self.pid, tid, serial));
        let Some(copy) = copy.flatten() else {
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

    /// Applies the mappings made before `time_ns`; whether the objects changed.
    fn map_until(&mut self, time_ns: u64) -> bool {
        if let Some(mappings) = &mut self.mappings {
            mappings.drain(&mut self.new_mappings);
        }
        let due = self
            .new_mappings
            .iter()
            .take_while(|mapping| mapping.time_ns <= time_ns)
            .count();
        let mut changed = false;
        for mapping in self.new_mappings.drain(..due) {
            let image = (mapping.pid == self.pid)
                .then(|| {
                    image_at(
                        self.pid,
                        &mapping.path,
                        mapping.address,
                        mapping.file_offset,
                    )
                })
                .flatten();
            let Some(image) = image else { continue };
            if self.images.contains(&image) {
                continue;
            }
            // An object mapped over others replaces them (they were unmapped).
            self.images.retain(|known| !overlap(known, &image));
            self.images.push(image);
            changed = true;
        }
        if changed {
            self.unwinder.set_images(&self.images);
        }
        changed
    }
}

/// Whether two objects' segments share an address.
fn overlap(a: &Image, b: &Image) -> bool {
    let ranges = |image: &Image| -> Vec<std::ops::Range<u64>> {
        image
            .segments
            .iter()
            .map(|segment| {
                let start = image.load_address.wrapping_add(segment.vaddr);
                start..start + segment.memsz
            })
            .collect()
    };
    let (a, b) = (ranges(a), ranges(b));
    a.iter()
        .any(|x| b.iter().any(|y| x.start < y.end && y.start < x.end))
}
