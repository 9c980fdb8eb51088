//! The allocation probes on real processes: the C workload of
//! `support/allocators.c` (compiled here with `cc`) makes exactly `CALLS`
//! `malloc`/`free` pairs of `SIZE` bytes between two sync points and nothing
//! else, so the counters read before and after that window must differ by
//! exactly those numbers, and by nothing for a process the probes are not
//! attached to. Needs root (uprobes), like the eBPF mode itself.

mod support;

use memray_ebpf::{AllocationCounters, MallocProbes};
use memray_tests::skip;
use support::Workload;

const CALLS: u64 = 2_000;
/// The size `allocators.c`'s `loop` mode allocates.
const SIZE: u64 = 4242;

fn start_workload() -> Workload {
    Workload::start(&["loop", &CALLS.to_string()])
}

fn pid_of(workload: &Workload) -> i32 {
    i32::try_from(workload.pid()).expect("pid fits i32")
}

/// What the probes counted while `during` ran.
fn counted(probes: &MallocProbes, during: impl FnOnce()) -> AllocationCounters {
    let before = probes.counters().expect("read the counters");
    during();
    let after = probes.counters().expect("read the counters");
    AllocationCounters {
        malloc_calls: after.malloc_calls - before.malloc_calls,
        malloc_bytes: after.malloc_bytes - before.malloc_bytes,
        free_calls: after.free_calls - before.free_calls,
    }
}

/// What one workload's window must count: every call, byte and free.
const EXACTLY_THE_WORKLOAD: AllocationCounters = AllocationCounters {
    malloc_calls: CALLS,
    malloc_bytes: CALLS * SIZE,
    free_calls: CALLS,
};

#[test]
fn counts_every_malloc_and_free_of_the_attached_process() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let mut workload = start_workload();
    let probes = MallocProbes::attach(pid_of(&workload)).expect("attach the probes");
    let counters = counted(&probes, || {
        workload.allocate();
    });
    assert_eq!(counters, EXACTLY_THE_WORKLOAD);
    workload.finish();
}

#[test]
fn ignores_other_processes() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let mut attached = start_workload();
    let mut other = start_workload();
    let probes = MallocProbes::attach(pid_of(&attached)).expect("attach the probes");
    let counters = counted(&probes, || {
        other.allocate();
    });
    assert_eq!(counters, AllocationCounters::default(), "another process");
    // The same probes do count the process they are attached to.
    let counters = counted(&probes, || {
        attached.allocate();
    });
    assert_eq!(counters, EXACTLY_THE_WORKLOAD, "the attached process");
    other.finish();
    attached.finish();
}
