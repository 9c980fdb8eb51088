//! What a process costs itself per the kernel's perf-event counters: its
//! task clock (CPU time, kernel side included: where uprobes and their BPF
//! programs run), context switches and page faults, over the threads it has
//! when the counters open and every thread or child it starts after.

use std::io;

use perf_event::events::Software;
use perf_event::{Builder, Counter};

/// The three counters of each thread the process had at the opening (each
/// inherited by the threads and children it starts).
pub struct Counters {
    threads: Vec<[Counter; 3]>,
}

#[derive(Clone, Copy, Default)]
pub struct Counts {
    pub task_clock_seconds: f64,
    pub context_switches: u64,
    pub page_faults: u64,
}

const EVENTS: [Software; 3] = [
    Software::TASK_CLOCK,
    Software::CONTEXT_SWITCHES,
    Software::PAGE_FAULTS,
];

impl Counters {
    /// Opens and enables the counters on every thread of `pid`.
    pub fn open(pid: u32) -> io::Result<Counters> {
        let mut threads = Vec::new();
        for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
            let Some(tid) = entry?.file_name().to_str().and_then(|t| t.parse().ok()) else {
                continue;
            };
            match thread_counters(tid) {
                Ok(counters) => threads.push(counters),
                // The thread ended meanwhile.
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Counters { threads })
    }

    /// The sums so far (after the process ended: its totals).
    pub fn read(&mut self) -> io::Result<Counts> {
        let mut counts = Counts::default();
        for [clock, switches, faults] in &mut self.threads {
            counts.task_clock_seconds += clock.read()? as f64 / 1e9;
            counts.context_switches += switches.read()?;
            counts.page_faults += faults.read()?;
        }
        Ok(counts)
    }
}

fn thread_counters(tid: libc::pid_t) -> io::Result<[Counter; 3]> {
    let open = |event: Software| -> io::Result<Counter> {
        let mut builder = Builder::new();
        builder.inherit(true).include_kernel().enabled(true);
        builder.observe_pid(tid).kind(event).build()
    };
    Ok([open(EVENTS[0])?, open(EVENTS[1])?, open(EVENTS[2])?])
}
