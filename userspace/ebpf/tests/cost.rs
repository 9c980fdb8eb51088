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

/// CPU nanoseconds per pair of one round of the loop of `pairs` pairs.
fn round(workload: &mut Workload, pairs: usize) -> f64 {
    let before = cpu_ns(workload.pid());
    workload.allocate();
    (cpu_ns(workload.pid()) - before) as f64 / pairs as f64
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The C loop of `pairs` pairs a round, ready.
fn looping(pairs: usize) -> Workload {
    Workload::start(&["loop", &pairs.to_string()])
}

/// Prints the median cost per pair of the rounds without and with probes.
fn report(what: &str, (without, off): (&str, Vec<f64>), (with, on): (&str, Vec<f64>)) {
    let (off, on) = (median(off), median(on));
    eprintln!(
        "{what}: {off:.0} ns {without}, {on:.0} ns {with} (+{:.2} µs)",
        (on - off) / 1000.0
    );
}

/// Rounds of `pairs` pairs, alternately detached and attached (with
/// `native`, each malloc's stack copied too); prints their cost as `what`.
fn cost_attached(what: &str, pairs: usize, native: bool) {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let mut workload = looping(pairs);
    let pid = workload.pid();
    let mut recording = Recording::start(Options {
        native_stacks: native,
        ..Options::default()
    });
    let mut copies = native.then(|| recording.session.native_copies().expect("the copies' ring"));
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        off.push(round(&mut workload, pairs));
        recording.session.attach(pid, false).expect("attach");
        if native {
            recording.session.record_native_stacks(pid).expect("flag");
        }
        on.push(round(&mut workload, pairs));
        let drained = recording.drain().len();
        assert_eq!(drained, 2 * pairs);
        if let Some(copies) = &mut copies {
            assert_eq!(copies.drain(), pairs, "every malloc's copy");
        }
        recording.session.detach(pid).expect("detach");
    }
    report(what, ("without probes", off), ("with them", on));
    workload.finish();
}

#[test]
#[ignore = "a measurement"]
fn cost_per_malloc_free_pair() {
    cost_attached("malloc+free pair", PAIRS, false);
}

/// Copies of one round fit in the native stacks' ring: nothing drains during it.
const NATIVE_PAIRS: usize = 2_000;

/// `--native`: each allocation also copies its stack (a shallow one: the
/// C loop on the main thread).
#[test]
#[ignore = "a measurement"]
fn cost_per_malloc_free_pair_with_native_stacks() {
    cost_attached("malloc+free pair, --native", NATIVE_PAIRS, true);
}

/// A process outside the pid set, on the libc of one recorded following
/// its forks: what the probes placed for that one cost it.
#[test]
#[ignore = "a measurement"]
fn cost_outside_the_pid_set() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let mut outside = looping(PAIRS);
    let recorded = Workload::start(&["loop", "1"]);
    // Before any attach: a detached process's probes stay placed, inert.
    let off: Vec<f64> = (0..5).map(|_| round(&mut outside, PAIRS)).collect();
    let mut recording = Recording::start(Options::default());
    recording
        .session
        .attach(recorded.pid(), true)
        .expect("attach following forks");
    let on: Vec<f64> = (0..5).map(|_| round(&mut outside, PAIRS)).collect();
    assert!(recording.drain().is_empty(), "the outside process recorded");
    report(
        "malloc+free pair outside the pid set",
        ("alone", off),
        ("beside a recording following forks", on),
    );
    outside.finish();
    recorded.finish();
}
