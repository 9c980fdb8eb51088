//! The exec notices of the probes (`ExecNotice`), from tokio: the probes
//! wake the consumer for each, since a followed process waits stopped.

use std::io;

use aya::maps::{MapData, RingBuf};
use memray_ebpf_common::execs::ExecNotice;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::ring_record::read;

/// A process has run `exec` (or, [`ExecKind::Forked`], was just forked by
/// a process whose forks are followed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exec {
    pub pid: u32,
    pub kind: ExecKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecKind {
    /// Not in the pid set (`attach --all` hears of every exec).
    Watched,
    /// In the pid set, following execs, and stopped until userspace lets
    /// it go on.
    Tracked,
    /// Not an exec: a new child, stopped until its probes are placed
    /// ([`crate::Session::follow_fork`]).
    Forked,
    /// In the pid set without following execs: it has left the set, and
    /// its capture ends.
    Left,
}

/// The ring of exec notices.
pub struct ExecStream {
    ring: AsyncFd<RingBuf<MapData>>,
}

impl ExecStream {
    /// Must be called inside a tokio runtime (with I/O enabled).
    pub(crate) fn new(ring: RingBuf<MapData>) -> io::Result<ExecStream> {
        // SAFETY: the ring buffer owns its map descriptor, which stays open
        // and the same for as long as the AsyncFd holds it.
        let ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
            .map_err(io::Error::from)?;
        Ok(ExecStream { ring })
    }

    /// Waits for notices and returns those there now.
    pub async fn next(&mut self) -> io::Result<Vec<Exec>> {
        loop {
            let execs = self.drain();
            if !execs.is_empty() {
                return Ok(execs);
            }
            self.ring.readable_mut().await?.clear_ready();
        }
    }

    /// The notices there now, without waiting.
    pub fn drain(&mut self) -> Vec<Exec> {
        let ring = self.ring.get_mut();
        let mut execs = Vec::new();
        while let Some(record) = ring.next() {
            let Some(notice) = read::<ExecNotice>(&record) else {
                continue;
            };
            let kind = match notice.tracked {
                ExecNotice::TRACKED => ExecKind::Tracked,
                ExecNotice::FORKED => ExecKind::Forked,
                ExecNotice::LEFT => ExecKind::Left,
                _ => ExecKind::Watched,
            };
            execs.push(Exec {
                pid: notice.tgid,
                kind,
            });
        }
        execs
    }
}
