//! Native stacks for `--native`: the probes' stack copies
//! ([`NativeCopies`], drained after each batch like the Python stacks), and
//! per process the unwinder over them ([`NativeStacks`]).
//!
//! The process's objects come from `/proc/PID/maps` when its capture
//! starts; then each executable mapping it makes arrives as it happens
//! ([`ExecutableMappings`]), and each munmap through the copies' ring (an
//! object it covers is gone: `dlclose`); both are applied before the
//! allocations that follow them, by time. Threads that existed before the capture and are not
//! followed that way (`attach` to a running process whose perf events
//! could not be opened) are covered by reading the maps again when a stack
//! holds an address outside every known object, at most once per batch.
//! Each change is a new segment generation in the capture.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::path::Path;

use aya::maps::{MapData, RingBuf};
use memray_ebpf_common::native_stack::{
    NativeStackHeader, NativeUnmapping, NATIVE_COPY_LOST, NATIVE_UNMAPPING,
};
use memray_format::Image;
use memray_unwind::{image_at, process_images, CopiedStack, CopiedStackUnwinder};

use crate::executable_mappings::{ExecutableMappings, Mapping};
use crate::ring_record::read;

/// One copy of a thread's stack top.
struct Copy {
    header: NativeStackHeader,
    bytes: Vec<u8>,
}

/// The copies received and not yet used, by thread, and the munmaps, by
/// process.
pub struct NativeCopies {
    ring: RingBuf<MapData>,
    by_thread: HashMap<(u32, u32), VecDeque<Copy>>,
    unmappings: HashMap<u32, Vec<NativeUnmapping>>,
}

impl NativeCopies {
    pub(crate) fn new(ring: RingBuf<MapData>) -> NativeCopies {
        NativeCopies {
            ring,
            by_thread: HashMap::new(),
            unmappings: HashMap::new(),
        }
    }

    /// Takes in the copies and munmaps waiting in the ring buffer (after a
    /// batch of records: every copy they name, every munmap before them, was
    /// sent before them); returns how many copies.
    pub fn drain(&mut self) -> usize {
        let mut copies = 0;
        while let Some(record) = self.ring.next() {
            if let Some(unmapping) = read::<NativeUnmapping>(&record)
                .filter(|unmapping| unmapping.serial == NATIVE_UNMAPPING)
            {
                self.unmappings
                    .entry(unmapping.tgid)
                    .or_default()
                    .push(unmapping);
                continue;
            }
            let Some(header) = read::<NativeStackHeader>(&record) else {
                continue;
            };
            copies += 1;
            let bytes = record[size_of::<NativeStackHeader>()..].to_vec();
            self.by_thread
                .entry((header.tgid, header.tid))
                .or_default()
                .push_back(Copy { header, bytes });
        }
        copies
    }

    /// The munmaps of `tgid` received since the last call, oldest first.
    fn take_unmappings(&mut self, tgid: u32) -> Vec<NativeUnmapping> {
        self.unmappings.remove(&tgid).unwrap_or_default()
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

/// A change of the process's mappings, applied in time order.
enum Change {
    Mapped(Mapping),
    Unmapped(NativeUnmapping),
}

impl Change {
    fn time_ns(&self) -> u64 {
        match self {
            Change::Mapped(mapping) => mapping.time_ns,
            Change::Unmapped(unmapping) => unmapping.time_ns,
        }
    }
}

/// `images` of process `pid` as its capture names them: by paths that
/// outlive the process (`python_frames::lasting_file`), for the reports to
/// read the objects' symbols from the files it ran, not from other files
/// at the same paths on this machine (a container's). Where there is none,
/// through `/proc/PID/root`: readable while the process lives, never
/// another file.
fn recorded_images(pid: u32, paths: &mut HashMap<String, String>, images: &[Image]) -> Vec<Image> {
    images
        .iter()
        .map(|image| {
            let filename = paths
                .entry(image.filename.clone())
                .or_insert_with(|| {
                    let path = Path::new(&image.filename);
                    python_frames::lasting_file(pid, path)
                        .unwrap_or_else(|| python_frames::reported_file(pid, path))
                        .to_string_lossy()
                        .into_owned()
                })
                .clone();
            Image {
                filename,
                ..image.clone()
            }
        })
        .collect()
}

/// The native side of one process's capture.
pub(crate) struct NativeStacks {
    pid: u32,
    unwinder: CopiedStackUnwinder,
    images: Vec<Image>,
    /// The mappings it makes (`None`: perf events unavailable), the last
    /// ones received, and the changes received and not applied yet, oldest
    /// first.
    mappings: Option<ExecutableMappings>,
    new_mappings: Vec<Mapping>,
    changes: Vec<Change>,
    /// When the capture started: earlier munmaps are in the objects read.
    started_ns: u64,
    /// The batch number of the last refresh of the objects.
    refreshed_in: u64,
    /// Allocations recorded without their copy (the ring buffer was full).
    pub missing: u64,
    /// The path the capture names each object by, by its path in the process.
    recorded_paths: HashMap<String, String>,
}

impl NativeStacks {
    /// The unwinder of process `pid` and its objects now, for the capture's
    /// first segment generation.
    pub(crate) fn new(pid: u32) -> (NativeStacks, Vec<Image>) {
        let started_ns = monotonic_ns();
        // Followed first: nothing mapped between the two is missed.
        let mappings = ExecutableMappings::follow(pid).ok();
        let images = process_images(pid);
        let mut unwinder = CopiedStackUnwinder::new(pid);
        unwinder.set_images(&images);
        let mut stacks = NativeStacks {
            pid,
            unwinder,
            images: images.clone(),
            mappings,
            new_mappings: Vec::new(),
            changes: Vec::new(),
            started_ns,
            refreshed_in: 0,
            missing: 0,
            recorded_paths: HashMap::new(),
        };
        let recorded = recorded_images(pid, &mut stacks.recorded_paths, &images);
        (stacks, recorded)
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
        if self.map_until(time_ns, copies) {
            objects_changed(&recorded_images(
                self.pid,
                &mut self.recorded_paths,
                &self.images,
            ));
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
                objects_changed(&recorded_images(
                    self.pid,
                    &mut self.recorded_paths,
                    &images,
                ));
                self.images = images;
                out.clear();
                self.unwinder.unwind(stack, out);
            }
        }
    }

    /// Applies the mappings and munmaps made before `time_ns`; whether the
    /// objects changed.
    fn map_until(&mut self, time_ns: u64, copies: &mut NativeCopies) -> bool {
        if let Some(mappings) = &mut self.mappings {
            mappings.drain(&mut self.new_mappings);
        }
        let unmappings = copies.take_unmappings(self.pid);
        if !self.new_mappings.is_empty() || !unmappings.is_empty() {
            let started_ns = self.started_ns;
            let changes = self.new_mappings.drain(..).map(Change::Mapped).chain(
                unmappings
                    .into_iter()
                    .filter(|unmapping| unmapping.time_ns >= started_ns)
                    .map(Change::Unmapped),
            );
            self.changes.extend(changes);
            self.changes.sort_by_key(Change::time_ns);
        }
        let due = self
            .changes
            .iter()
            .take_while(|change| change.time_ns() <= time_ns)
            .count();
        let mut changed = false;
        let applied: Vec<Change> = self.changes.drain(..due).collect();
        for change in applied {
            changed |= match change {
                Change::Mapped(mapping) => self.map(mapping),
                Change::Unmapped(unmapping) => self.unmap(unmapping),
            };
        }
        if changed {
            self.unwinder.set_images(&self.images);
        }
        changed
    }

    /// Adds the object `mapping` maps; whether it is new.
    fn map(&mut self, mapping: Mapping) -> bool {
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
        let Some(image) = image else { return false };
        if self.images.contains(&image) {
            return false;
        }
        // An object mapped over others replaces them (they were unmapped).
        let ranges = segment_ranges(&image);
        self.images.retain(|known| !overlaps(known, &ranges));
        self.images.push(image);
        true
    }

    /// Removes the objects `unmapping` covers part of; whether there were any.
    fn unmap(&mut self, unmapping: NativeUnmapping) -> bool {
        let range = unmapping.start..unmapping.start.saturating_add(unmapping.length);
        let before = self.images.len();
        self.images
            .retain(|known| !overlaps(known, std::slice::from_ref(&range)));
        self.images.len() != before
    }
}

/// The addresses of an object's segments.
fn segment_ranges(image: &Image) -> Vec<Range<u64>> {
    image
        .segments
        .iter()
        .map(|segment| {
            let start = image.load_address.wrapping_add(segment.vaddr);
            start..start + segment.memsz
        })
        .collect()
}

/// Whether one of `image`'s segments shares an address with one of `ranges`.
fn overlaps(image: &Image, ranges: &[Range<u64>]) -> bool {
    segment_ranges(image)
        .iter()
        .any(|x| ranges.iter().any(|y| x.start < y.end && y.start < x.end))
}

/// `CLOCK_MONOTONIC` now, in nanoseconds: the probes' clock.
fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}
