//! The native stack of an allocating call, copied for userspace to unwind
//! (`--native`): the registers at the allocator's entry and the top of the
//! user stack, page by page from the stack pointer, into per-CPU scratch,
//! then sent as one record of `NATIVE_STACKS`. See
//! `memray_ebpf_common::native_stack` for the protocol.

use core::ffi::c_void;

use aya_ebpf::{
    bindings::BPF_RB_NO_WAKEUP,
    helpers::{bpf_get_smp_processor_id, bpf_ktime_get_ns, generated::bpf_probe_read_user},
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
static NATIVE_STACKS: RingBuf = RingBuf::with_byte_size(NATIVE_STACKS_DEFAULT_BYTES, 0);

/// The copy being made, by CPU: a plain array (a per-CPU value is at most
/// 32 KiB). Userspace makes it one entry per CPU.
#[map]
static NATIVE_COPIES: Array<NativeStackRecord> = Array::with_max_entries(1, 0);

/// Copies the calling thread's native stack and sends it; returns its
/// serial, or `NATIVE_COPY_LOST` if it could not be sent (the allocation is
/// recorded without native frames, counted by userspace).
#[inline(always)]
pub fn copy(ctx: &ProbeContext, thread: u64) -> u32 {
    // SAFETY: no preconditions.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let Some(record) = NATIVE_COPIES.get_ptr_mut(cpu) else {
        return NATIVE_COPY_LOST;
    };
    // SAFETY: this CPU's entry; a probe is not preempted on its CPU.
    let record = unsafe { &mut *record };
    // SAFETY: regs is the probe's pt_regs.
    let (ip, sp, bp) = unsafe { ((*ctx.regs).rip, (*ctx.regs).rsp, (*ctx.regs).rbp) };
    // SAFETY: no preconditions. Unique per thread: one call at a time.
    let serial = (unsafe { bpf_ktime_get_ns() } as u32) | 1;
    let mut length = 0;
    // The first page is the rest of the stack pointer's page.
    let mut page = NATIVE_STACK_PAGE - (sp as usize & (NATIVE_STACK_PAGE - 1));
    for _ in 0..=NATIVE_STACK_BYTES / NATIVE_STACK_PAGE {
        if length >= NATIVE_STACK_BYTES {
            break;
        }
        // Masks, not comparisons, bound the offset and size for the verifier.
        let at = length & (NATIVE_STACK_BYTES - 1);
        let size = ((page - 1) & (NATIVE_STACK_PAGE - 1)) + 1;
        // SAFETY: `at + size` is within the record's stack array (one page
        // longer than NATIVE_STACK_BYTES); the helper checks the user
        // source and fails cleanly past the end of the stack's mapping.
        let failed = unsafe {
            bpf_probe_read_user(
                record.stack.as_mut_ptr().add(at).cast::<c_void>(),
                size as u32,
                (sp + length as u64) as *const c_void,
            )
        } != 0;
        if failed {
            break;
        }
        length += size;
        page = NATIVE_STACK_PAGE;
    }
    let length = length.min(NATIVE_STACK_BYTES);
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
