//! A consumer slower than the probes: the ring buffer always has records,
//! and the tokio task draining it must still let its timers (a recording's
//! duration, its memory samples) and signals run.

mod support;

use std::time::{Duration, Instant};

use memray_ebpf::Options;
use memray_tests::skip;
use support::{Recording, Workload};

/// Far more pairs than the test lasts.
const PAIRS_PER_THREAD: &str = "100000000";
/// What the consumer spends per batch of 1024 records: ~0.5 M records/s,
/// below what two threads of the C loop make with the probes.
const WORK_PER_BATCH: Duration = Duration::from_millis(2);
const DEADLINE: Duration = Duration::from_millis(200);
/// Batches after which the deadline has clearly been missed.
const BATCHES: usize = 2_000;

#[test]
fn a_deadline_fires_while_records_keep_coming() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let mut workload = Workload::start(&["loop", PAIRS_PER_THREAD, "2"]);
    let mut recording = Recording::start(Options::default());
    recording
        .session
        .attach(workload.pid(), false)
        .expect("attach");
    workload.go();
    let stream = &mut recording.stream;
    let (batches, waited) = recording.runtime.block_on(async {
        let started = Instant::now();
        let deadline = tokio::time::sleep(DEADLINE);
        tokio::pin!(deadline);
        let mut batch = Vec::new();
        for batches in 0..BATCHES {
            tokio::select! {
                drained = stream.next_batch(&mut batch) => {
                    drained.expect("drain");
                    batch.clear();
                    std::thread::sleep(WORK_PER_BATCH);
                }
                _ = &mut deadline => return (batches, started.elapsed()),
            }
        }
        (BATCHES, started.elapsed())
    });
    workload.child.kill().expect("kill the workload");
    assert!(
        batches < BATCHES,
        "the {DEADLINE:?} deadline had not fired after {waited:?} of draining"
    );
}
