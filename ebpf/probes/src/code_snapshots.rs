//! Copies a code object being freed, for userspace to name the records
//! that hold it once it is gone (see `memray_ebpf_common::code_snapshot`).

use core::ffi::c_void;

use aya_ebpf::{
    bindings::BPF_RB_NO_WAKEUP,
    helpers::{bpf_get_smp_processor_id, bpf_ktime_get_ns, generated::bpf_probe_read_user},
    macros::map,
    maps::{Array, RingBuf},
};
use memray_ebpf_common::code_snapshot::{
    CodeSnapshot, CodeSnapshotHeader, CODE_LINETABLE_BYTES, CODE_OBJECT_BYTES, CODE_PART,
    CODE_STRING_BYTES, LINETABLE_PART, NAME_PARTS,
};
use python_frames_core::layout::present;
use python_frames_core::{CodeFingerprint, Layout, MemoryExt};

use crate::memory_windows::{self, WindowedMemory};
use crate::python_stack::PYTHON_TARGETS;

#[map]
static CODE_SNAPSHOTS: RingBuf = RingBuf::with_byte_size(4 << 20, 0);

/// The snapshot being made, by CPU (userspace makes one entry a CPU).
#[map]
static CODE_SNAPSHOT_SCRATCH: Array<CodeSnapshot> = Array::with_max_entries(1, 0);

/// Sends the snapshot of the code object at `code`, freed by process
/// `tgid`, if its interpreter is registered. A full ring loses it: the
/// records that hold the code object may then be unnamed (counted by
/// userspace).
#[inline(always)]
pub fn send(tgid: u32, code: u64) {
    // SAFETY: no preconditions.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let (Some(target), Some(snapshot)) = (
        PYTHON_TARGETS.get_ptr(tgid),
        CODE_SNAPSHOT_SCRATCH.get_ptr_mut(cpu),
    ) else {
        return;
    };
    // SAFETY: map values: the target is written by userspace before it
    // attaches, the scratch entry is this CPU's (a probe runs to its end on
    // it).
    let (layout, snapshot) = unsafe { (&(*target).layout, &mut *snapshot) };
    memory_windows::reset();
    let Some(fingerprint) = CodeFingerprint::read(&WindowedMemory, layout, code) else {
        return;
    };
    let header = &mut snapshot.header;
    *header = CodeSnapshotHeader {
        tgid,
        // SAFETY: no preconditions.
        time_ns: unsafe { bpf_ktime_get_ns() },
        code,
        fingerprint: fingerprint.digest(),
        ..CodeSnapshotHeader::default()
    };
    if copy(snapshot.code.as_mut_ptr(), code, CODE_OBJECT_BYTES) {
        snapshot.header.addresses[CODE_PART] = code;
        snapshot.header.lengths[CODE_PART] = CODE_OBJECT_BYTES as u32;
    }
    let names = [layout.code_name, layout.code_qualname, layout.code_filename];
    for (index, offset) in names.into_iter().enumerate() {
        let string = present(offset).and_then(|offset| word(code.wrapping_add(offset)));
        if let Some(string) = string {
            copy_string(snapshot, index, string, layout);
        }
    }
    copy_linetable(snapshot, code, layout);
    let length = (snapshot.header.lengths[LINETABLE_PART] as usize).min(CODE_LINETABLE_BYTES);
    let size = size_of::<CodeSnapshot>() - CODE_LINETABLE_BYTES + length;
    // SAFETY: `size` is at most the snapshot's size, which it reads.
    let bytes = unsafe { core::slice::from_raw_parts((&raw const *snapshot).cast::<u8>(), size) };
    let _ = CODE_SNAPSHOTS.output::<[u8]>(bytes, BPF_RB_NO_WAKEUP as u64);
}

/// Copies the string object at `string` into the snapshot's `index`th
/// string: its header and at most 4 bytes a character (any kind).
#[inline(always)]
fn copy_string(snapshot: &mut CodeSnapshot, index: usize, string: u64, layout: &Layout) {
    let Some(length) = word(string.wrapping_add(layout.unicode_length)) else {
        return;
    };
    let wanted = layout
        .unicode_compact_data
        .saturating_add(length.saturating_add(1).saturating_mul(4));
    let size = masked(wanted, CODE_STRING_BYTES);
    let index = index & 3;
    if index < 3 && copy(snapshot.strings[index].as_mut_ptr(), string, size) {
        snapshot.header.addresses[NAME_PARTS[index]] = string;
        snapshot.header.lengths[NAME_PARTS[index]] = size as u32;
    }
}

/// Copies the line table's `bytes` object, if it fits.
#[inline(always)]
fn copy_linetable(snapshot: &mut CodeSnapshot, code: u64, layout: &Layout) {
    let Some(table) = word(code.wrapping_add(layout.code_linetable)) else {
        return;
    };
    let Some(length) = word(table.wrapping_add(layout.bytes_size)) else {
        return;
    };
    let wanted = layout.bytes_data.saturating_add(length).saturating_add(1);
    if wanted > CODE_LINETABLE_BYTES as u64 {
        return;
    }
    let size = masked(wanted, CODE_LINETABLE_BYTES);
    if copy(snapshot.linetable.as_mut_ptr(), table, size) {
        snapshot.header.addresses[LINETABLE_PART] = table;
        snapshot.header.lengths[LINETABLE_PART] = size as u32;
    }
}

/// `wanted` bytes, 1 to `most` (a power of two), bounded by a mask the
/// verifier follows.
#[inline(always)]
fn masked(wanted: u64, most: usize) -> usize {
    ((wanted.clamp(1, most as u64) as usize - 1) & (most - 1)) + 1
}

#[inline(always)]
fn word(address: u64) -> Option<u64> {
    WindowedMemory.read_u64(address)
}

/// Copies `size` bytes of the process at `from` to `to`; whether it could.
#[inline(always)]
fn copy(to: *mut u8, from: u64, size: usize) -> bool {
    // SAFETY: `to` has room for `size` bytes (the callers' arrays, `size`
    // masked to their length); the helper checks the user source and fails
    // cleanly.
    unsafe { bpf_probe_read_user(to.cast::<c_void>(), size as u32, from as *const c_void) == 0 }
}
