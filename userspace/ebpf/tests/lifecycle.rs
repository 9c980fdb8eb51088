//! Attaching to running processes and leaving them: detach and attach again,
//! a target that exits while attached, forked children followed through the
//! fork tracepoint, and records lost to a full ring buffer counted exactly;
//! the breakpoints are in the recorded processes only.

mod support;

use std::os::unix::fs::FileExt;

use memray_ebpf::{Allocator, Event, LibcImage, Options};
use memray_tests::skip;
use support::{Recording, Workload};

const PAIRS: usize = 1000;
const SIZE: u64 = 4242;

/// The malloc/free pairs of the workload's loop among `events`.
fn loop_pairs(events: &[Event], pid: u32) -> (usize, usize) {
    let mallocs: Vec<u64> = events
        .iter()
        .filter(|e| e.tgid == pid && e.allocator == Allocator::Malloc && e.size == SIZE)
        .map(|e| e.address)
        .collect();
    let frees = events
        .iter()
        .filter(|e| e.tgid == pid && e.allocator == Allocator::Free && mallocs.contains(&e.address))
        .count();
    (mallocs.len(), frees)
}

/// The loop workload and a recording attached to it.
fn attached_loop(pairs: usize, options: Options) -> (Workload, Recording) {
    let workload = Workload::start(&["loop", &pairs.to_string()]);
    let mut recording = Recording::start(options);
    recording
        .session
        .attach(workload.pid(), false)
        .expect("attach");
    (workload, recording)
}

#[test]
fn attach_detach_and_attach_again() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let (mut workload, mut recording) = attached_loop(PAIRS, Options::default());
    let pid = workload.pid();
    workload.allocate();
    let events = recording.drain();
    assert_eq!(loop_pairs(&events, pid), (PAIRS, PAIRS));
    assert_eq!(events.len(), 2 * PAIRS, "only the loop allocates");

    recording.session.detach(pid).expect("detach");
    workload.allocate();
    assert!(recording.drain().is_empty());

    recording.session.attach(pid, false).expect("attach again");
    workload.allocate();
    assert_eq!(loop_pairs(&recording.drain(), pid), (PAIRS, PAIRS));
    drop(recording);

    // A new session on the same process, after the first one left.
    let mut recording = Recording::start(Options::default());
    recording
        .session
        .attach(pid, false)
        .expect("attach from a new session");
    workload.allocate();
    assert_eq!(loop_pairs(&recording.drain(), pid), (PAIRS, PAIRS));
    drop(recording);
    workload.finish();
}

#[test]
fn target_exits_while_attached() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let (mut workload, mut recording) = attached_loop(PAIRS, Options::default());
    let pid = workload.pid();
    assert!(recording.session.tracked().expect("pid set").contains(&pid));
    workload.allocate();
    workload.finish();
    assert_eq!(loop_pairs(&recording.drain(), pid), (PAIRS, PAIRS));
    assert!(
        !recording.session.tracked().expect("pid set").contains(&pid),
        "the exit tracepoint removes the process"
    );
    recording
        .session
        .detach(pid)
        .expect("detach from a process that is gone");
}

#[test]
fn follows_forked_children_only_when_asked() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    for follow_fork in [true, false] {
        let mut workload = Workload::start(&["fork"]);
        let pid = workload.pid();
        let mut recording = Recording::start(Options::default());
        recording.session.attach(pid, follow_fork).expect("attach");
        let at = recording.allocate(&mut workload);
        let events = recording.drain();
        let child = at["child"] as u32;
        let seen = |tgid: u32, address: u64, size: u64| {
            let malloc = events.iter().any(|e| {
                (e.tgid, e.tid, e.allocator, e.address, e.size)
                    == (tgid, tgid, Allocator::Malloc, address, size)
            });
            let free = events
                .iter()
                .any(|e| (e.tgid, e.allocator, e.address) == (tgid, Allocator::Free, address));
            malloc && free
        };
        assert!(seen(pid, at["parent_malloc"], 6161), "{events:?}");
        assert_eq!(
            seen(child, at["child_malloc"], 5151),
            follow_fork,
            "follow_fork={follow_fork}: {events:?}"
        );
        assert!(events.iter().all(|e| e.tgid == pid || e.tgid == child));
        let tracked = recording.session.tracked().expect("pid set");
        assert!(!tracked.contains(&child), "the child exited");
        recording.session.detach(pid).expect("detach");
        workload.finish();
    }
}

#[test]
fn records_lost_to_a_full_ring_buffer_are_counted_exactly() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    const MANY: usize = 5000;
    // One page: room for about 70 records, and nobody drains while the loop runs.
    let tiny = Options {
        ring_buffer_bytes: 4096,
        ..Options::default()
    };
    let (mut workload, mut recording) = attached_loop(MANY, tiny);
    let pid = workload.pid();
    workload.allocate();
    let received = recording.drain().len() as u64;
    let dropped = recording.session.drops(pid).expect("drops");
    eprintln!("{received} records received, {dropped} dropped");
    assert!(dropped > 0);
    assert_eq!(received + dropped, 2 * MANY as u64);
    workload.finish();
}

#[test]
fn several_processes_in_one_session() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let (mut first, mut recording) = attached_loop(PAIRS, Options::default());
    let mut second = Workload::start(&["loop", &PAIRS.to_string()]);
    // Following the forks of one places probes for it alone too: each call
    // of either is seen once either way.
    for follow_fork in [false, true] {
        recording
            .session
            .attach(second.pid(), follow_fork)
            .expect("attach the second");
        first.allocate();
        second.allocate();
        let events = recording.drain();
        assert_eq!(loop_pairs(&events, first.pid()), (PAIRS, PAIRS));
        assert_eq!(loop_pairs(&events, second.pid()), (PAIRS, PAIRS));
        assert_eq!(events.len(), 4 * PAIRS, "follow_fork={follow_fork}");
        recording.session.detach(second.pid()).expect("detach");
    }
    drop(recording);
    first.finish();
    second.finish();
}

/// The first byte of libc's `malloc` in process `pid`, as it runs it.
fn first_byte_of_malloc(pid: u32) -> u8 {
    let libc = LibcImage::of_process(pid).expect("its libc");
    let address = libc.address_of(libc.function("malloc").expect("malloc").file_offset);
    let memory = std::fs::File::open(format!("/proc/{pid}/mem")).expect("its memory");
    let mut byte = [0u8];
    memory
        .read_exact_at(&mut byte, address)
        .expect("read malloc");
    byte[0]
}

#[test]
fn breakpoints_are_in_the_recorded_processes_only() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    const INT3: u8 = 0xcc;
    let outside = Workload::start(&["loop", "1"]);
    let mut recorded = Workload::start(&["fork"]);
    let unprobed = first_byte_of_malloc(outside.pid());
    assert_ne!(
        unprobed, INT3,
        "malloc is probed before our recording: another tool probes it for every process"
    );
    let mut recording = Recording::start(Options::default());
    // Following forks: the case that used to place them for every process.
    recording
        .session
        .attach(recorded.pid(), true)
        .expect("attach following forks");
    assert_eq!(first_byte_of_malloc(recorded.pid()), INT3);
    assert_eq!(
        first_byte_of_malloc(outside.pid()),
        unprobed,
        "a process outside the recording traps on its probes"
    );
    let at = recording.allocate(&mut recorded);
    let events = recording.drain();
    let child = at["child"] as u32;
    assert!(
        events
            .iter()
            .any(|e| e.tgid == child && e.address == at["child_malloc"]),
        "the forked child was not recorded: {events:?}"
    );
    drop(recording);
    outside.finish();
    recorded.finish();
}
