//! Probes on libc's allocator functions and the interpreter's (the
//! functions its allocator tables point to, with `--trace-python-allocators`):
//! one entry program and one return program serve them all (the attach
//! cookie names the function). Calls are
//! recorded with memray's semantics into the ring buffer, for the processes in
//! the pid set only. The entry probe walks the Python stack of each
//! allocating call (`python_stack`); the return probe records it.

use aya_ebpf::{
    bindings::{BPF_F_NO_PREALLOC, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_user},
    macros::{map, uprobe, uretprobe},
    maps::{HashMap, PerCpuArray, PerCpuHashMap, RingBuf},
    programs::{ProbeContext, RetProbeContext},
    EbpfContext,
};
use memray_ebpf_common::python_stack::ALLOCATION_DONE_SLOT;
use memray_ebpf_common::{
    AllocationEvent, Allocator, Counter, Function, PendingCall, TrackedProcess,
    EVENTS_DEFAULT_BYTES,
};

use crate::native_stack;
use crate::processes::PROCESSES;
use crate::python_stack;

#[map]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(Counter::ALL.len() as u32, 0);

/// Userspace sets the size at load time.
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_DEFAULT_BYTES, 0);

/// Whether this CPU has woken the consumer since the buffer passed half full.
#[map]
static WOKEN: PerCpuArray<u32> = PerCpuArray::with_max_entries(1, 0);

/// Records lost per process. Not preallocated: 64 K per-CPU entries made
/// up front cost ~25 ms at every start, and an entry is only made at a
/// process's first loss.
#[map]
static DROPS: PerCpuHashMap<u32, u64> =
    PerCpuHashMap::with_max_entries(64 * 1024, BPF_F_NO_PREALLOC);

/// The allocator call in flight on each thread, read by its return probe.
/// Entries of exiting threads go at their exit, those of detached processes
/// are removed by userspace (a stale one would make every later call look
/// nested). A plain hash map: an LRU one, whose entries each call inserts
/// and removes, cost ~0.2 µs more per malloc/free pair (its lists), more
/// with threads on several CPUs; a thread has one entry at most, so 64 K
/// are only filled by 64 K threads inside an allocator at once.
#[map]
pub static PENDING: HashMap<u64, PendingCall> = HashMap::with_max_entries(64 * 1024, 0);

const BPF_RB_AVAIL_DATA: u64 = 0;
const BPF_RB_RING_SIZE: u64 = 1;
const MAP_FAILED: u64 = u64::MAX;
/// Deallocations carry no stack (memray records none for them).
const NO_STACK: Stacks = Stacks {
    python: 0,
    native: 0,
};

/// The stacks an allocation record names: the Python stack's id and the
/// native copy's serial (0: none).
#[derive(Clone, Copy)]
struct Stacks {
    python: u64,
    native: u32,
}

#[uprobe]
pub fn allocator_entry(ctx: ProbeContext) -> u32 {
    let thread = bpf_get_current_pid_tgid();
    let tgid = (thread >> 32) as u32;
    // SAFETY: the value is copied before anything else touches the map.
    let Some(process) = (unsafe { PROCESSES.get(tgid) }).copied() else {
        return 0;
    };
    if process.flags & TrackedProcess::RECORDED == 0 {
        return 0;
    }
    // SAFETY: the context is the uprobe's pt_regs.
    let cookie = unsafe { aya_ebpf::helpers::bpf_get_attach_cookie(ctx.as_ptr()) };
    let Some(function) = Function::from_cookie(cookie) else {
        return 0;
    };
    if let Some(outer) = PENDING.get_ptr_mut(thread) {
        if function.has_return_probe() {
            // SAFETY: only this thread touches its own entry.
            unsafe { (*outer).depth += 1 };
        }
        return 0;
    }
    if function.is_syscall_wrapper() && called_from_libc(&ctx, &process) {
        return 0;
    }
    let args = [arg(&ctx, 0), arg(&ctx, 1), arg(&ctx, 2)];
    match function {
        Function::Free => {
            if args[0] != 0 {
                count(Counter::FreeCalls, 1);
                emit(thread, Allocator::Free, args[0], 0, NO_STACK);
            }
        }
        Function::Munmap => emit(thread, Allocator::Munmap, args[0], args[1], NO_STACK),
        Function::PymallocFree => {
            // `free(ctx, ptr)`: recorded now; the pending entry makes the
            // calls it makes underneath nested, until its return probe.
            if args[1] != 0 {
                emit(thread, Allocator::PymallocFree, args[1], 0, NO_STACK);
            }
            let pending = PendingCall {
                function: function as u32,
                depth: 0,
                args,
                stack_id: 0,
                native_serial: 0,
                _padding: 0,
            };
            // A full table only loses the nesting of this call.
            let _ = PENDING.insert(thread, pending, 0);
        }
        _ => {
            let native_serial = match process.flags & TrackedProcess::NATIVE_STACKS {
                0 => 0,
                _ => native_stack::copy(&ctx, thread),
            };
            let pending = PendingCall {
                function: function as u32,
                depth: 0,
                args,
                stack_id: 0,
                native_serial,
                _padding: 0,
            };
            // A full table only loses this call; nothing to report from here.
            if PENDING.insert(thread, pending, 0).is_ok() {
                // memray records the stack of the call; the walk ends in
                // `allocation_stack_done`, which keeps it in the pending entry.
                python_stack::start(&ctx, ALLOCATION_DONE_SLOT);
            }
        }
    }
    0
}

/// The end of the entry probe's stack walk: the allocation's stack id waits
/// in the thread's pending call for the return probe.
#[uprobe]
pub fn allocation_stack_done(_ctx: ProbeContext) -> u32 {
    let Some(stack) = python_stack::finished_stack() else {
        return 0;
    };
    if let Some(pending) = PENDING.get_ptr_mut(bpf_get_current_pid_tgid()) {
        // SAFETY: only this thread touches its own entry.
        unsafe { (*pending).stack_id = stack.id };
    }
    0
}

#[uretprobe]
pub fn allocator_return(ctx: RetProbeContext) -> u32 {
    let thread = bpf_get_current_pid_tgid();
    let Some(entry) = PENDING.get_ptr_mut(thread) else {
        return 0;
    };
    // SAFETY: only this thread touches its own entry; copied before removal.
    let pending = unsafe {
        if (*entry).depth > 0 {
            (*entry).depth -= 1;
            return 0;
        }
        *entry
    };
    let _ = PENDING.remove(thread);
    let result: u64 = ctx.ret();
    let Some(function) = Function::from_cookie(pending.function as u64) else {
        return 0;
    };
    let [a0, a1, a2] = pending.args;
    let stack = Stacks {
        python: pending.stack_id,
        native: pending.native_serial,
    };
    match function {
        Function::Malloc if result != 0 => {
            count(Counter::MallocCalls, 1);
            count(Counter::MallocBytes, a0);
            emit(thread, Allocator::Malloc, result, a0, stack);
        }
        Function::Calloc if result != 0 => emit(
            thread,
            Allocator::Calloc,
            result,
            a0.wrapping_mul(a1),
            stack,
        ),
        Function::Realloc if result != 0 => {
            reallocated(thread, LIBC_REALLOC, a0, result, a1, stack)
        }
        Function::Reallocarray if result != 0 => {
            reallocated(thread, LIBC_REALLOC, a0, result, a1.wrapping_mul(a2), stack)
        }
        // Returns 0 on success, the address through its first argument.
        Function::PosixMemalign if result as u32 == 0 => {
            // SAFETY: a user address read through the checked helper.
            if let Ok(address) = unsafe { bpf_probe_read_user(a0 as *const u64) } {
                emit(thread, Allocator::PosixMemalign, address, a2, stack);
            }
        }
        Function::AlignedAlloc if result != 0 => {
            emit(thread, Allocator::AlignedAlloc, result, a1, stack)
        }
        Function::Memalign if result != 0 => emit(thread, Allocator::Memalign, result, a1, stack),
        Function::Valloc if result != 0 => emit(thread, Allocator::Valloc, result, a0, stack),
        Function::Pvalloc if result != 0 => emit(thread, Allocator::Pvalloc, result, a0, stack),
        Function::Mmap if result != MAP_FAILED => emit(thread, Allocator::Mmap, result, a1, stack),
        // The old mapping is gone and a new one exists (maybe at the same place).
        Function::Mremap if result != MAP_FAILED => {
            emit(thread, Allocator::Munmap, a0, a1, NO_STACK);
            emit(thread, Allocator::Mmap, result, a2, stack);
        }
        // The Python allocators take their table's `ctx` first.
        Function::PymallocMalloc if result != 0 => {
            emit(thread, Allocator::PymallocMalloc, result, a1, stack)
        }
        Function::PymallocCalloc if result != 0 => emit(
            thread,
            Allocator::PymallocCalloc,
            result,
            a1.wrapping_mul(a2),
            stack,
        ),
        Function::PymallocRealloc if result != 0 => {
            let kinds = (Allocator::PymallocFree, Allocator::PymallocRealloc);
            reallocated(thread, kinds, a1, result, a2, stack)
        }
        _ => {}
    }
    0
}

/// What libc's `realloc` is recorded as: the free, then the allocation.
const LIBC_REALLOC: (Allocator, Allocator) = (Allocator::Free, Allocator::Realloc);

/// memray records a successful realloc as a free of the old block (if any)
/// and an allocation of the new one, as `kinds`.
#[inline(always)]
fn reallocated(
    thread: u64,
    kinds: (Allocator, Allocator),
    old: u64,
    new: u64,
    size: u64,
    stack: Stacks,
) {
    if old != 0 {
        emit(thread, kinds.0, old, 0, NO_STACK);
    }
    emit(thread, kinds.1, new, size, stack);
}

#[inline(always)]
fn arg(ctx: &ProbeContext, n: usize) -> u64 {
    ctx.arg(n).unwrap_or(0)
}

/// Whether the function was called from libc's own code: the probe sits on
/// the function's first instruction, so the return address is at the top of
/// the stack.
#[inline(always)]
fn called_from_libc(ctx: &ProbeContext, process: &TrackedProcess) -> bool {
    // SAFETY: regs is the probe's pt_regs; the stack is read through the checked helper.
    let return_address = unsafe { bpf_probe_read_user((*ctx.regs).rsp as *const u64) };
    match return_address {
        Ok(at) => at >= process.libc_text_start && at < process.libc_text_end,
        Err(_) => false,
    }
}

#[inline(always)]
fn emit(thread: u64, allocator: Allocator, address: u64, size: u64, stack: Stacks) {
    let tgid = (thread >> 32) as u32;
    let Some(mut slot) = EVENTS.reserve::<AllocationEvent>(0) else {
        count_drop(tgid);
        return;
    };
    slot.write(AllocationEvent {
        kind: allocator as u32,
        tgid,
        tid: thread as u32,
        native_serial: stack.native,
        address,
        size,
        // SAFETY: no preconditions.
        timestamp_ns: unsafe { bpf_ktime_get_ns() },
        stack_id: stack.python,
    });
    slot.submit(wake_up_flags());
}

/// No wake-up per record (userspace drains on a timer): a wake-up costs the
/// allocating thread microseconds. Only when the buffer passes half full is
/// the consumer woken, once per CPU until it has drained below half again.
#[inline(always)]
fn wake_up_flags() -> u64 {
    let half_full = EVENTS.query(BPF_RB_AVAIL_DATA) > EVENTS.query(BPF_RB_RING_SIZE) / 2;
    let Some(woken) = WOKEN.get_ptr_mut(0) else {
        return BPF_RB_NO_WAKEUP as u64;
    };
    // SAFETY: per-CPU slot, and a probe is not preempted on its CPU.
    unsafe {
        if half_full && *woken == 0 {
            *woken = 1;
            return BPF_RB_FORCE_WAKEUP as u64;
        }
        if !half_full {
            *woken = 0;
        }
    }
    BPF_RB_NO_WAKEUP as u64
}

#[inline(always)]
fn count_drop(tgid: u32) {
    match DROPS.get_ptr_mut(tgid) {
        // SAFETY: per-CPU value, and a probe is not preempted on its CPU.
        Some(drops) => unsafe { *drops += 1 },
        None => {
            let _ = DROPS.insert(tgid, 1, 0);
        }
    }
}

#[inline(always)]
fn count(counter: Counter, amount: u64) {
    if let Some(slot) = COUNTERS.get_ptr_mut(counter.slot()) {
        // SAFETY: per-CPU slot, and a probe is not preempted on its CPU.
        unsafe { *slot += amount };
    }
}
