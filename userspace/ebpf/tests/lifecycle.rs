//! Attaching to running processes and leaving them: detach and attach again,
//! a target that exits while attached, forked children followed through the
//! fork tracepoint, and records lost to a full ring buffer counted exactly.

mod support;

use memray_ebpf::{Allocator, Event, EventStream, Options, Session};
use support::{drain_all, runtime, unavailable, Workload};

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

fn allocate_and_drain(
    workload: &mut Workload,
    stream: &mut EventStream,
    runtime: &tokio::runtime::Runtime,
) -> Vec<Event> {
    workload.allocate();
    runtime.block_on(drain_all(stream))
}

#[test]
fn attach_detach_and_attach_again() {
    if let Some(why) = unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    let mut workload = Workload::start(&["loop", &PAIRS.to_string()]);
    let pid = workload.pid();
    let runtime = runtime();
    let _guard = runtime.enter();
    let mut session = Session::load(Options::default()).expect("load");
    let mut stream = session.events(256).expect("ring buffer");

    session.attach(pid, false).expect("attach");
    let events = allocate_and_drain(&mut workload, &mut stream, &runtime);
    assert_eq!(loop_pairs(&events, pid), (PAIRS, PAIRS));
    assert_eq!(events.len(), 2 * PAIRS, "only the loop allocates");

    session.detach(pid).expect("detach");
    assert!(allocate_and_drain(&mut workload, &mut stream, &runtime).is_empty());

    session.attach(pid, false).expect("attach again");
    let events = allocate_and_drain(&mut workload, &mut stream, &runtime);
    assert_eq!(loop_pairs(&events, pid), (PAIRS, PAIRS));
    drop((stream, session));

    // A new session on the same process, after the first one left.
    let mut session = Session::load(Options::default()).expect("load again");
    let mut stream = session.events(256).expect("ring buffer");
    session
        .attach(pid, false)
        .expect("attach from a new session");
    let events = allocate_and_drain(&mut workload, &mut stream, &runtime);
    assert_eq!(loop_pairs(&events, pid), (PAIRS, PAIRS));
    drop((stream, session));
    workload.finish();
}

#[test]
fn target_exits_while_attached() {
    if let Some(why) = unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    let mut workload = Workload::start(&["loop", &PAIRS.to_string()]);
    let pid = workload.pid();
    let runtime = runtime();
    let _guard = runtime.enter();
    let mut session = Session::load(Options::default()).expect("load");
    let mut stream = session.events(256).expect("ring buffer");
    session.attach(pid, false).expect("attach");
    assert!(session.tracked().expect("pid set").contains(&pid));
    workload.allocate();
    workload.finish();
    let events = runtime.block_on(drain_all(&mut stream));
    assert_eq!(loop_pairs(&events, pid), (PAIRS, PAIRS));
    assert!(
        !session.tracked().expect("pid set").contains(&pid),
        "the exit tracepoint removes the process"
    );
    session
        .detach(pid)
        .expect("detach from a process that is gone");
}

#[test]
fn follows_forked_children_only_when_asked() {
    if let Some(why) = unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    let runtime = runtime();
    let _guard = runtime.enter();
    for follow_fork in [true, false] {
        let mut workload = Workload::start(&["fork"]);
        let pid = workload.pid();
        let mut session = Session::load(Options::default()).expect("load");
        let mut stream = session.events(256).expect("ring buffer");
        session.attach(pid, follow_fork).expect("attach");
        let at = workload.allocate();
        let events = runtime.block_on(drain_all(&mut stream));
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
        assert!(
            !session.tracked().expect("pid set").contains(&child),
            "the child exited"
        );
        session.detach(pid).expect("detach");
        workload.finish();
    }
}

#[test]
fn records_lost_to_a_full_ring_buffer_are_counted_exactly() {
    if let Some(why) = unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    const MANY: usize = 5000;
    let mut workload = Workload::start(&["loop", &MANY.to_string()]);
    let pid = workload.pid();
    let runtime = runtime();
    let _guard = runtime.enter();
    // One page: room for about 70 records, and nobody drains while the loop runs.
    let mut session = Session::load(Options {
        ring_buffer_bytes: 4096,
    })
    .expect("load");
    let mut stream = session.events(256).expect("ring buffer");
    session.attach(pid, false).expect("attach");
    workload.allocate();
    let received = runtime.block_on(drain_all(&mut stream)).len() as u64;
    let dropped = session.drops(pid).expect("drops");
    eprintln!("{received} records received, {dropped} dropped");
    assert!(dropped > 0);
    assert_eq!(received + dropped, 2 * MANY as u64);
    workload.finish();
}
