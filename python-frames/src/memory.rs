//! The `Memory` implementations of userspace: this process, another
//! process, a page cache over either, and recorded snapshots.

use std::cell::RefCell;
use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

pub use python_frames_core::memory::{Memory, MemoryExt};

use crate::platform::RemoteHandle;

/// Lowest address treated as a pointer: catches NULL and small garbage.
const MIN_POINTER: u64 = 4096;

/// This process's own memory, read directly: no allocation, no lock, no
/// system call, so it can run inside `malloc`.
///
/// Guarding choice: it only rejects NULL-ish, non-canonical and wrapping
/// addresses; it does not probe mappings. It is therefore only sound for
/// pointers reached from the *calling thread's own* thread state: that
/// thread's frames cannot change or be freed while it is inside the
/// allocator, and every frame holds a strong reference to its code object,
/// whose name, file name and line table it keeps alive in turn. Never use it
/// to walk another thread. Hence the `unsafe` constructor.
#[derive(Clone, Copy, Debug)]
pub struct LocalMemory {
    _only_through_new: (),
}

impl LocalMemory {
    /// # Safety
    /// Every address given to `read` must be readable for the whole length
    /// asked, and stay so during the read: in practice, only addresses
    /// reached from live objects of the calling thread's own Python stack
    /// (or this process's own static data, such as `_PyRuntime`).
    pub const unsafe fn new() -> LocalMemory {
        LocalMemory {
            _only_through_new: (),
        }
    }
}

impl Memory for LocalMemory {
    #[inline]
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        let Some(end) = addr.checked_add(buf.len() as u64) else {
            return false;
        };
        // User space on x86-64 ends at 2^47.
        if addr < MIN_POINTER || end > (1 << 47) {
            return false;
        }
        // SAFETY: the contract of `LocalMemory::new`: callers only pass
        // addresses that are readable for `buf.len()` bytes.
        unsafe {
            core::ptr::copy_nonoverlapping(addr as *const u8, buf.as_mut_ptr(), buf.len());
        }
        true
    }
}

/// Another process's memory (`process_vm_readv` on Linux, the task port on macOS).
#[derive(Clone, Copy, Debug)]
pub struct RemoteMemory {
    pid: libc::pid_t,
    handle: RemoteHandle,
}

impl RemoteMemory {
    pub fn new(pid: libc::pid_t) -> RemoteMemory {
        RemoteMemory {
            pid,
            handle: RemoteHandle::open(pid),
        }
    }

    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// Like `read`, but says why a read failed (EPERM, ESRCH, EFAULT...).
    pub fn read_checked(&self, addr: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.handle.read_batch(self.pid, &mut [(addr, buf)])
    }

    /// Reads several ranges at once; `false` if any is short.
    pub fn read_batch(&self, requests: &mut [(u64, &mut [u8])]) -> bool {
        self.handle.read_batch(self.pid, requests).is_ok()
    }
}

impl Memory for RemoteMemory {
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        if addr < MIN_POINTER {
            return false;
        }
        self.read_batch(&mut [(addr, buf)])
    }
}

/// Page size used by `PageCache`.
const PAGE: u64 = 4096;

/// Reads whole pages through an inner `Memory` and keeps them for the rest of
/// one snapshot, so that walking 50 frames of a 3.11+ data stack costs one or
/// two system calls instead of fifty. Drop it (or call `clear`) before the
/// next snapshot: the pages go stale as soon as the target runs on.
pub struct PageCache<M> {
    inner: M,
    pages: RefCell<BTreeMap<u64, Box<[u8; PAGE as usize]>>>,
}

impl<M: Memory> PageCache<M> {
    pub fn new(inner: M) -> PageCache<M> {
        PageCache {
            inner,
            pages: RefCell::new(BTreeMap::new()),
        }
    }

    pub fn clear(&self) {
        self.pages.borrow_mut().clear();
    }

    pub fn inner(&self) -> &M {
        &self.inner
    }

    /// The pages read so far, as a snapshot that replays the same reads
    /// offline (one range per page: a read across a page boundary fails).
    pub fn into_snapshot(self) -> SnapshotMemory {
        let mut snapshot = SnapshotMemory::new();
        for (page, bytes) in self.pages.into_inner() {
            snapshot.insert(page, bytes.to_vec());
        }
        snapshot
    }

    fn with_page<R>(&self, page: u64, use_page: impl FnOnce(&[u8]) -> R) -> Option<R> {
        let mut pages = self.pages.borrow_mut();
        let bytes = match pages.entry(page) {
            Entry::Occupied(cached) => cached.into_mut(),
            Entry::Vacant(slot) => {
                let mut bytes = Box::new([0u8; PAGE as usize]);
                if !self.inner.read(page, &mut bytes[..]) {
                    return None;
                }
                slot.insert(bytes)
            }
        };
        Some(use_page(&bytes[..]))
    }
}

impl<M: Memory> Memory for PageCache<M> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        if buf.len() as u64 > PAGE * 4 {
            // Large objects (line tables) are read directly.
            return self.inner.read(addr, buf);
        }
        let mut done = 0usize;
        while done < buf.len() {
            let at = addr + done as u64;
            let page = at & !(PAGE - 1);
            let start = (at - page) as usize;
            let take = (PAGE as usize - start).min(buf.len() - done);
            let copied = self.with_page(page, |bytes| {
                buf[done..done + take].copy_from_slice(&bytes[start..start + take]);
            });
            if copied.is_none() {
                // The page straddles an unreadable boundary: try the exact range.
                return self.inner.read(at, &mut buf[done..]);
            }
            done += take;
        }
        true
    }
}

/// Recorded ranges of memory, for tests and offline replays.
#[derive(Clone, Debug, Default)]
pub struct SnapshotMemory {
    ranges: BTreeMap<u64, Vec<u8>>,
}

impl SnapshotMemory {
    pub fn new() -> SnapshotMemory {
        SnapshotMemory::default()
    }

    /// Records `bytes` at `addr` (ranges must not overlap).
    pub fn insert(&mut self, addr: u64, bytes: Vec<u8>) {
        self.ranges.insert(addr, bytes);
    }
}

impl Memory for SnapshotMemory {
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        let Some((&start, bytes)) = self.ranges.range(..=addr).next_back() else {
            return false;
        };
        let from = (addr - start) as usize;
        match bytes.get(from..from + buf.len()) {
            Some(slice) => {
                buf.copy_from_slice(slice);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_reads_inside_recorded_ranges_only() {
        let mut snapshot = SnapshotMemory::new();
        snapshot.insert(0x1000, vec![1, 2, 3, 4]);
        assert_eq!(snapshot.read_array::<2>(0x1001), Some([2, 3]));
        assert_eq!(snapshot.read_array::<2>(0x1003), None);
        assert_eq!(snapshot.read_u8(0xfff), None);
    }

    #[test]
    fn remote_and_paged_reads_of_this_process() {
        let value: u64 = 0x1122_3344_5566_7788;
        let addr = &value as *const u64 as u64;
        let remote = RemoteMemory::new(std::process::id() as libc::pid_t);
        assert_eq!(remote.read_u64(addr), Some(value));
        assert_eq!(PageCache::new(remote).read_u64(addr), Some(value));
        // SAFETY: reads only `value`, alive on this stack, and address 0,
        // which `read` rejects before dereferencing.
        let local = unsafe { LocalMemory::new() };
        assert_eq!(local.read_u64(addr), Some(value));
        assert_eq!(remote.read_u64(8), None);
        assert_eq!(local.read_u64(0), None);
    }
}
