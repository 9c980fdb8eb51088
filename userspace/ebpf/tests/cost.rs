//! What the probes add to a malloc/free pair of a C loop, in the recorded
//! process and in one outside the pid set (informative, not a benchmark: run
//! on a quiet machine with
//! `cargo test -p memray-ebpf --test cost -- --ignored --nocapture`).

mod support;

use memray_ebpf::Options;
use memray_tests::skip;
use support::{Recording, Workload};

/// Records of one round fit in the default ring buffer: nothing drains during it.
const PAIRS: usize = 100_000;

/// CPU time of the workload's (only) thread, in nanoseconds: the machine may
/// be shared, so wall time would count other processes' turns too.
fn cpu_ns(pid: u32) -> u64 {
    let schedstat = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).expect("schedstat");
    schedstat
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("run time")
}

/// CPU nanoseconds per pair of one round of the loop.
fn round(workload: &mut Workload) -> f64 {
    let before = cpu_ns(workload.pid());
    workload.allocate();
    (cpu_ns(workload.pid()) - before) as f64 / PAIRS as f64
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The C loop of `PAIRS` pairs a round, ready.
fn looping() -> Workload {
    Workload::start(&["loop", &PAIRS.to_string()])
}

/// Prints the median cost per pair of the rounds without and with probes.
fn report(what: &str, (without, off): (&str, Vec<f64>), (with, on): (&str, Vec<f64>)) {
    let (off, on) = (median(off), median(on));
    eprintln!(
        "{what}: {off:.0} ns {without}, {on:.0} ns {with} (+{:.2} µs)",
        (on - off) / 1000.0
    );
}

#[test]
#[ignore = "a measurement"]
fn cost_per_malloc_free_pair() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let mut workload = looping();
    let pid = workload.pid();
    let mut recording = Recording::start(Options::default());
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        off.push(round(&mut workload));
        recording.session.attach(pid, false).expect("attach");
        on.push(round(&mut workload));
        let drained = recording.drain().len();
        assert_eq!(drained, 2 * PAIRS);
        recording.session.detach(pid).expect("detach");
    }
    report(
        "malloc+free pair",
        ("without probes", off),
        ("with them", on),
    );
    workload.finish();
}

/// A process outside the pid set, on the libc of one recorded following
/// its forks: what the probes placed for that one cost it.
#[test]
#[ignore = "a measurement"]
fn cost_outside_the_pid_set() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let mut outside = looping();
    let recorded = Workload::start(&["loop", "1"]);
    // Before any attach: a detached process's probes stay placed, inert.
    let off: Vec<f64> = (0..5).map(|_| round(&mut outside)).collect();
    let mut recording = Recording::start(Options::default());
    recording
        .session
        .attach(recorded.pid(), true)
        .expect("attach following forks");
    let on: Vec<f64> = (0..5).map(|_| round(&mut outside)).collect();
    assert!(recording.drain().is_empty(), "the outside process recorded");
    report(
        "malloc+free pair outside the pid set",
        ("alone", off),
        ("beside a recording following forks", on),
    );
    outside.finish();
    recorded.finish();
}
