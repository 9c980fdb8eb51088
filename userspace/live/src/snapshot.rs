//! The live stream folded into what the view shows: the allocations alive
//! now (memray's `SnapshotAllocationAggregator`), the heap's size and peak,
//! its history, and each live location's stack, rendered once by the
//! analysis engine's [`StackResolver`].

use std::sync::Arc;

use memray_analysis::{Event, LiveAllocations, ReplayStacks, StackIds, StackResolver};
use rustc_hash::FxHashMap as HashMap;

/// One place in the code: the table's key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location {
    pub function: Arc<str>,
    pub file: Arc<str>,
    pub line: i32,
}

/// The live allocations of one stack on one thread.
#[derive(Debug, Clone)]
pub struct LiveGroup {
    pub tid: u64,
    pub bytes: u64,
    pub allocations: u64,
    /// The stack's locations, leaf first.
    pub stack: Arc<[Location]>,
}

/// How the stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The program finished and the tracker closed the capture.
    Finished,
    /// The connection closed without the capture's end (the program was killed).
    CutOff,
    /// Reading failed.
    Failed(String),
}

/// What the view draws, published by the reader a few times a second.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub pid: i32,
    pub command_line: String,
    /// Milliseconds from the start of tracking to the latest memory record.
    pub duration_ms: u64,
    pub heap: u64,
    pub peak: u64,
    /// Allocations seen since the start.
    pub allocations: u64,
    /// The heap size, one sample per [`HISTORY_STEP_MS`].
    pub history: Vec<u64>,
    /// Every thread that allocated, in order of appearance, with its name.
    pub threads: Vec<(u64, Option<String>)>,
    pub groups: Vec<LiveGroup>,
    pub end: Option<End>,
}

/// One heap-history sample per this many milliseconds of the program's time.
pub const HISTORY_STEP_MS: u64 = 100;

/// Folds events into the state a [`Snapshot`] is taken from.
pub struct Aggregator {
    live: LiveAllocations,
    heap: u64,
    peak: u64,
    allocations: u64,
    start_ms: u64,
    last_ms: u64,
    history: Vec<u64>,
    next_history_ms: u64,
    threads: Vec<u64>,
    /// Rendered stacks by what names them (the thread only matters on the
    /// main thread, whose outer frames are hidden).
    stacks: HashMap<(u32, u64, u32, bool), Arc<[Location]>>,
    end: Option<End>,
}

impl Aggregator {
    pub fn new(start_ms: u64) -> Aggregator {
        Aggregator {
            live: LiveAllocations::default(),
            heap: 0,
            peak: 0,
            allocations: 0,
            start_ms,
            last_ms: start_ms,
            history: Vec::new(),
            next_history_ms: start_ms,
            threads: Vec::new(),
            stacks: HashMap::default(),
            end: None,
        }
    }

    pub fn add(&mut self, event: &Event) {
        match event {
            Event::Allocation(allocation) => {
                let (added, removed) = self.live.add(allocation);
                self.heap = (self.heap + added).saturating_sub(removed);
                self.peak = self.peak.max(self.heap);
                if !allocation.allocator.is_deallocator() {
                    self.allocations += 1;
                    if !self.threads.contains(&allocation.tid) {
                        self.threads.push(allocation.tid);
                    }
                }
            }
            Event::Memory { time_ms, .. } => {
                self.last_ms = self.last_ms.max(*time_ms);
                while self.next_history_ms <= self.last_ms {
                    self.history.push(self.heap);
                    self.next_history_ms += HISTORY_STEP_MS;
                }
            }
            _ => {}
        }
    }

    pub fn end(&mut self, end: End) {
        self.end = Some(end);
    }

    /// The state now, stacks rendered through `stacks`.
    pub fn snapshot(&mut self, stacks: &ReplayStacks) -> Snapshot {
        let header = stacks.header();
        let main_tid = header.main_tid;
        let groups = self
            .live
            .groups(false)
            .into_iter()
            .map(|group| {
                let ids = StackIds::from(&group.allocation);
                let key = (
                    ids.python_node,
                    ids.native_frame_id,
                    ids.native_segment_generation,
                    ids.tid == main_tid,
                );
                let stack = self
                    .stacks
                    .entry(key)
                    .or_insert_with(|| locations(stacks, ids))
                    .clone();
                LiveGroup {
                    tid: group.tid(),
                    bytes: group.size,
                    allocations: group.n_allocations,
                    stack,
                }
            })
            .collect();
        Snapshot {
            pid: header.pid,
            command_line: header.command_line.clone(),
            duration_ms: self.last_ms.saturating_sub(self.start_ms),
            heap: self.heap,
            peak: self.peak,
            allocations: self.allocations,
            history: self.history.clone(),
            threads: self
                .threads
                .iter()
                .map(|&tid| (tid, stacks.thread_name(tid)))
                .collect(),
            groups,
            end: self.end.clone(),
        }
    }
}

fn locations(stacks: &ReplayStacks, ids: StackIds) -> Arc<[Location]> {
    stacks
        .stack(ids)
        .into_iter()
        .map(|frame| Location {
            function: frame.function,
            file: frame.filename,
            line: frame.lineno,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use memray_format::{
        Allocator, CaptureReader, CaptureWriter, Header, MemorySink, Replay, StreamingWriter,
    };

    use super::*;

    /// Thread 1 allocates 100 and 200 bytes in `work`, frees the 100;
    /// thread 2 allocates 50 bytes with no Python stack; a memory record
    /// comes 250 ms after the start.
    fn capture() -> Vec<u8> {
        let header = Header {
            main_tid: 1,
            ..Header::default()
        };
        let mut writer = StreamingWriter::new(MemorySink::default(), header).unwrap();
        writer
            .write_code_object(1, b"work", b"w.py", 7, b"")
            .unwrap();
        writer.write_frame_push(1, 1, 0, true).unwrap();
        for (tid, address, size, allocator) in [
            (1, 0x100, 100, Allocator::Malloc),
            (1, 0x200, 200, Allocator::Malloc),
            (1, 0x100, 0, Allocator::Free),
            (2, 0x300, 50, Allocator::Malloc),
        ] {
            writer
                .write_allocation(tid, address, size, allocator, 0)
                .unwrap();
        }
        writer.write_thread_name(2, b"worker").unwrap();
        writer.write_memory_record(250, 0).unwrap();
        writer.finish(300).unwrap();
        writer.into_sink().bytes
    }

    #[test]
    fn the_stream_folds_into_the_live_heap_by_thread_and_stack() {
        let stacks = ReplayStacks::new(Replay::new(CaptureReader::from_bytes(capture()).unwrap()));
        let mut aggregator = Aggregator::new(0);
        while let Some(event) = stacks.replay().next_event().unwrap() {
            aggregator.add(&event);
        }
        let snapshot = aggregator.snapshot(&stacks);
        assert_eq!(
            (snapshot.heap, snapshot.peak, snapshot.allocations),
            (250, 300, 3)
        );
        assert_eq!(snapshot.duration_ms, 250);
        // One sample at 0, 100 and 200 ms.
        assert_eq!(snapshot.history, [250, 250, 250]);
        assert_eq!(snapshot.threads, [(1, None), (2, Some("worker".into()))]);
        let groups: Vec<_> = snapshot
            .groups
            .iter()
            .map(|g| {
                let names: Vec<&str> = g.stack.iter().map(|l| &*l.function).collect();
                (g.tid, g.bytes, g.allocations, names)
            })
            .collect();
        assert_eq!(groups, [(1, 200, 1, vec!["work"]), (2, 50, 1, vec![])]);
    }
}
