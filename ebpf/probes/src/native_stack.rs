//! The native stack of an allocating call, copied for userspace to unwind
//! (`--native`): the registers at the allocator's entry and the user stack
//! from the stack pointer to the end of its mapping (at most
//! `NATIVE_STACK_BYTES`), page by page, into per-CPU scratch, then sent as
//! one record of `NATIVE_STACKS`. See `memray_ebpf_common::native_stack` for
//! the protocol.

use core::ffi::c_void;

use aya_ebpf::{
    bindings::BPF_RB_NO_WAKEUP,
    helpers::{
        bpf_get_current_task_btf, bpf_get_smp_processor_id, bpf_ktime_get_ns, bpf_loop,
        generated::{bpf_find_vma, bpf_probe_read_user},
    },
    macros::map,
    maps::{Array, RingBuf},
    programs::ProbeContext,
};
use memray_ebpf_common::native_stack::{
    NativeStackHeader, NativeStackRecord, NATIVE_COPY_LOST, NATIVE_STACKS_DEFAULT_BYTES,
    NATIVE_STACK_BYTES, NATIVE_STACK_PAGE,
};

/// Userspace sets the size at load time.
#[map]
pub static NATIVE_STACKS: RingBuf = RingBuf::with_byte_size(NATIVE_STACKS_DEFAULT_BYTES, 0);

/// The copy being made, by CPU: a plain array (a per-CPU value is at most
/// 32 KiB, a copy up to 256 KiB). Userspace makes it one entry per CPU.
#[map]
static NATIVE_COPIES: Array<NativeStackRecord> = Array::with_max_entries(1, 0);

/// Copies the calling thread's native stack and sends it; returns its
/// serial, or `NATIVE_COPY_LOST` if it could not be sent (the allocation is
/// recorded without native frames, counted by userspace).
#[inline(always)]
pub fn copy(ctx: &ProbeContext, thread: u64) -> u32 {
    // SAFETY: no preconditions.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    // SAFETY: regs is the probe's pt_regs.
    let (ip, sp, bp) = unsafe { ((*ctx.regs).rip, (*ctx.regs).rsp, (*ctx.regs).rbp) };
    // SAFETY: no preconditions. Unique per thread: one call at a time.
    let serial = (unsafe { bpf_ktime_get_ns() } as u32) | 1;
    // What the stack holds: up to the end of its mapping, not into a readable
    // one next to it (a thread's stack often borders one).
    let limit = match mapping_end(sp) {
        Some(end) => (end.saturating_sub(sp) as usize).min(NATIVE_STACK_BYTES),
        None => NATIVE_STACK_BYTES,
    };
    let mut copying = Copying {
        cpu,
        sp,
        limit,
        length: 0,
    };
    // SAFETY: `copy_page` has the callback signature bpf_loop expects and
    // takes `copying`, on this stack.
    unsafe {
        bpf_loop(
            (NATIVE_STACK_BYTES / NATIVE_STACK_PAGE + 1) as u32,
            copy_page as *mut c_void,
            (&raw mut copying).cast(),
            0,
        )
    };
    let Some(record) = NATIVE_COPIES.get_ptr_mut(cpu) else {
        return NATIVE_COPY_LOST;
    };
    // SAFETY: this CPU's entry; a probe is not preempted on its CPU.
    let record = unsafe { &mut *record };
    let length = copying.length.min(NATIVE_STACK_BYTES);
    record.header = NativeStackHeader {
        tgid: (thread >> 32) as u32,
        tid: thread as u32,
        serial,
        length: length as u32,
        ip,
        sp,
        bp,
    };
    let size = size_of::<NativeStackHeader>() + length;
    // SAFETY: `size` is at most the size of the record, which it reads.
    let bytes = unsafe { core::slice::from_raw_parts((&raw const *record).cast::<u8>(), size) };
    match NATIVE_STACKS.output::<[u8]>(bytes, BPF_RB_NO_WAKEUP as u64) {
        Ok(()) => serial,
        Err(_) => NATIVE_COPY_LOST,
    }
}

/// A copy in progress: `copy_page`'s context.
#[repr(C)]
struct Copying {
    cpu: u32,
    sp: u64,
    /// The bytes to copy, and those copied.
    limit: usize,
    length: usize,
}

/// Copies the next page of the stack (the first: the rest of the stack
/// pointer's page) into this CPU's record: `bpf_loop`'s callback, so that
/// the verifier checks one page's code once (0 goes on, 1 stops).
extern "C" fn copy_page(_index: u64, copying: *mut Copying) -> i64 {
    // SAFETY: the caller's `Copying`, alive during the loop.
    let copying = unsafe { &mut *copying };
    let Copying {
        cpu,
        sp,
        limit,
        length,
    } = *copying;
    if length >= limit {
        return 1;
    }
    let Some(record) = NATIVE_COPIES.get_ptr_mut(cpu) else {
        return 1;
    };
    let from = sp + length as u64;
    let page = NATIVE_STACK_PAGE - (from as usize & (NATIVE_STACK_PAGE - 1));
    // Masks, not comparisons, bound the offset and size for the verifier.
    let at = length & (NATIVE_STACK_BYTES - 1);
    let size = ((page.min(limit - length) - 1) & (NATIVE_STACK_PAGE - 1)) + 1;
    // SAFETY: `at + size` is within this CPU's record's stack array (one page
    // longer than NATIVE_STACK_BYTES); the helper checks the user source and
    // fails cleanly on a page it cannot read.
    let failed = unsafe {
        bpf_probe_read_user(
            (*record).stack.as_mut_ptr().add(at).cast::<c_void>(),
            size as u32,
            from as *const c_void,
        )
    } != 0;
    if failed {
        return 1;
    }
    copying.length = length + size;
    0
}

/// The end of the calling thread's mapping that holds `address`; `None` when
/// the kernel could not look (its mappings being changed at that moment).
#[inline(always)]
fn mapping_end(address: u64) -> Option<u64> {
    let mut end = 0u64;
    // SAFETY: the current task from BTF, as the helper requires; the
    // callback has the signature it expects and writes `end`, on this stack.
    let found = unsafe {
        bpf_find_vma(
            bpf_get_current_task_btf().cast(),
            address,
            write_end as *mut c_void,
            (&raw mut end).cast(),
            0,
        )
    };
    (found == 0 && end != 0).then_some(end)
}

/// `bpf_find_vma`'s callback: the mapping's `vm_end` into `end`.
extern "C" fn write_end(_task: *mut c_void, vma: *const u64, end: *mut u64) -> i64 {
    // SAFETY: `vma` is the kernel's `vm_area_struct`, whose first two fields
    // are `vm_start` and `vm_end`; `end` is the caller's variable.
    unsafe { *end = *vma.add(1) };
    0
}
