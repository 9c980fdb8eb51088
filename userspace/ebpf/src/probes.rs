//! The allocation counters of one process: the smallest use of a [`Session`].

use crate::session::{Options, Session};
use crate::Error;

/// Totals counted since the probes were attached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllocationCounters {
    /// Successful `malloc` calls.
    pub malloc_calls: u64,
    /// Bytes those calls requested.
    pub malloc_bytes: u64,
    /// `free` calls with a non-NULL pointer.
    pub free_calls: u64,
}

/// The allocator probes attached to one process's libc, counting its `malloc`
/// and `free` calls. Dropping it detaches them.
pub struct MallocProbes {
    session: Session,
}

impl MallocProbes {
    /// Loads the probes and attaches them to the libc mapped by process `pid`;
    /// they count for that process only.
    pub fn attach(pid: i32) -> Result<MallocProbes, Error> {
        let tgid = u32::try_from(pid)
            .ok()
            .filter(|&p| p > 0)
            .ok_or(Error::InvalidPid(pid))?;
        // Nothing drains the records: a small buffer that fills and drops.
        let mut session = Session::load(Options {
            ring_buffer_bytes: 4096,
            ..Options::default()
        })?;
        session.attach(tgid, false)?;
        Ok(MallocProbes { session })
    }

    /// The counters summed over all CPUs.
    pub fn counters(&self) -> Result<AllocationCounters, Error> {
        self.session.counters()
    }
}
