//! Draining the ring buffer from tokio into typed events.
//!
//! The probes submit without waking anyone (a wake-up per record costs the
//! allocating thread microseconds), so the consumer drains on a timer; the
//! probes wake the consumer only when the buffer passes half full (once per
//! CPU until it is drained below half).

use std::io;
use std::time::Duration;

use aya::maps::{MapData, RingBuf};
use memray_ebpf_common::AllocationEvent;
use memray_format::Allocator;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::time::{interval, Interval, MissedTickBehavior};

use crate::ring_record::read;

/// How often the buffer is drained when nothing wakes the consumer.
pub const DRAIN_PERIOD: Duration = Duration::from_millis(10);

/// One allocator call of a tracked process, as memray records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// As a capture records it.
    pub allocator: Allocator,
    pub tgid: u32,
    pub tid: u32,
    pub address: u64,
    /// Bytes requested; 0 for `free`, the length for `munmap`.
    pub size: u64,
    /// `CLOCK_MONOTONIC` nanoseconds.
    pub timestamp_ns: u64,
    /// The Python stack's id; 0 until the probes walk stacks.
    pub stack_id: u64,
    /// The native stack copied for it (`--native`); 0: none.
    pub native_serial: u32,
}

impl Event {
    /// Decodes one ring buffer record; `None` for a record of another kind.
    pub fn from_record(record: &[u8]) -> Option<Event> {
        let raw = read::<AllocationEvent>(record)?;
        Some(Event {
            allocator: Allocator::from_id(u8::try_from(raw.kind).ok()?)?,
            tgid: raw.tgid,
            tid: raw.tid,
            address: raw.address,
            size: raw.size,
            timestamp_ns: raw.timestamp_ns,
            stack_id: raw.stack_id,
            native_serial: raw.native_serial,
        })
    }
}

/// The ring buffer, drained in batches of at most `batch` events.
pub struct EventStream {
    ring: AsyncFd<RingBuf<MapData>>,
    tick: Interval,
    batch: usize,
}

impl EventStream {
    /// Must be called inside a tokio runtime (with time and I/O enabled).
    pub(crate) fn new(ring: RingBuf<MapData>, batch: usize) -> io::Result<EventStream> {
        let mut tick = interval(DRAIN_PERIOD);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // SAFETY: the ring buffer owns its map descriptor, which stays open
        // and the same for as long as the AsyncFd holds it.
        let ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
            .map_err(io::Error::from)?;
        Ok(EventStream {
            ring,
            tick,
            batch: batch.max(1),
        })
    }

    /// Waits until there are records (a wake-up or the next tick) and appends
    /// at most one batch of them to `out`; returns how many.
    pub async fn next_batch(&mut self, out: &mut Vec<Event>) -> io::Result<usize> {
        loop {
            // A consumer behind the probes always finds records: without
            // spending the task's budget it would never yield, and the
            // runtime would never fire its timers or see its signals (a
            // recording's duration, Ctrl-C). Spent before draining: a call
            // dropped there has taken nothing.
            tokio::task::consume_budget().await;
            let drained = self.drain(out);
            if drained > 0 {
                return Ok(drained);
            }
            tokio::select! {
                ready = self.ring.readable_mut() => ready?.clear_ready(),
                _ = self.tick.tick() => {}
            }
        }
    }

    /// Appends at most one batch of the records there now to `out`, without waiting.
    pub fn drain(&mut self, out: &mut Vec<Event>) -> usize {
        let ring = self.ring.get_mut();
        let mut drained = 0;
        while drained < self.batch {
            let Some(record) = ring.next() else { break };
            if let Some(event) = Event::from_record(&record) {
                out.push(event);
            }
            drained += 1;
        }
        drained
    }
}
