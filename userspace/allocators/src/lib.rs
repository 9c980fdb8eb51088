//! memray's allocator ids (v12/v13 numbering, `hooks.h::Allocator`) and their
//! kinds: the one definition the heap model, the capture format and the eBPF
//! probes (which send these numbers) share. `no_std`, no dependencies, no
//! panicking path: it is also built for the BPF target.
#![no_std]

/// Which function produced an ALLOCATION record. The discriminants are the
/// ids stored in v12/v13 files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Allocator {
    PymallocFree = 1,
    PymallocMalloc = 2,
    PymallocCalloc = 3,
    PymallocRealloc = 4,
    Free = 5,
    Malloc = 6,
    Realloc = 7,
    Calloc = 8,
    PosixMemalign = 9,
    AlignedAlloc = 10,
    Memalign = 11,
    Valloc = 12,
    Pvalloc = 13,
    Mmap = 14,
    Munmap = 15,
}

/// How an allocator changes the heap (memray's `AllocatorKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocatorKind {
    SimpleAllocator = 1,
    SimpleDeallocator = 2,
    RangedAllocator = 3,
    RangedDeallocator = 4,
}

const ALL: [Allocator; 15] = [
    Allocator::PymallocFree,
    Allocator::PymallocMalloc,
    Allocator::PymallocCalloc,
    Allocator::PymallocRealloc,
    Allocator::Free,
    Allocator::Malloc,
    Allocator::Realloc,
    Allocator::Calloc,
    Allocator::PosixMemalign,
    Allocator::AlignedAlloc,
    Allocator::Memalign,
    Allocator::Valloc,
    Allocator::Pvalloc,
    Allocator::Mmap,
    Allocator::Munmap,
];

/// v11 numbering (memray 1.11-1.18), index = old id - 1.
const V11_ORDER: [Allocator; 15] = [
    Allocator::Malloc,
    Allocator::Free,
    Allocator::Calloc,
    Allocator::Realloc,
    Allocator::PosixMemalign,
    Allocator::AlignedAlloc,
    Allocator::Memalign,
    Allocator::Valloc,
    Allocator::Pvalloc,
    Allocator::Mmap,
    Allocator::Munmap,
    Allocator::PymallocMalloc,
    Allocator::PymallocCalloc,
    Allocator::PymallocRealloc,
    Allocator::PymallocFree,
];

impl Allocator {
    /// From a v12/v13 id.
    #[inline]
    pub fn from_id(id: u8) -> Option<Allocator> {
        ALL.get((id as usize).wrapping_sub(1)).copied()
    }

    /// From a v11 id.
    pub fn from_v11_id(id: u8) -> Option<Allocator> {
        V11_ORDER.get((id as usize).wrapping_sub(1)).copied()
    }

    #[inline]
    pub fn id(self) -> u8 {
        self as u8
    }

    #[inline]
    pub fn kind(self) -> AllocatorKind {
        match self {
            Allocator::Free | Allocator::PymallocFree => AllocatorKind::SimpleDeallocator,
            Allocator::Mmap => AllocatorKind::RangedAllocator,
            Allocator::Munmap => AllocatorKind::RangedDeallocator,
            _ => AllocatorKind::SimpleAllocator,
        }
    }

    /// Frees and munmaps.
    #[inline]
    pub fn is_deallocator(self) -> bool {
        matches!(
            self.kind(),
            AllocatorKind::SimpleDeallocator | AllocatorKind::RangedDeallocator
        )
    }

    /// Frees carry neither a size nor a native frame id in the stream.
    #[inline]
    pub fn is_simple_deallocator(self) -> bool {
        self.kind() == AllocatorKind::SimpleDeallocator
    }

    /// The lower-case name `memray parse` prints.
    pub fn name(self) -> &'static str {
        match self {
            Allocator::PymallocFree => "pymalloc_free",
            Allocator::PymallocMalloc => "pymalloc_malloc",
            Allocator::PymallocCalloc => "pymalloc_calloc",
            Allocator::PymallocRealloc => "pymalloc_realloc",
            Allocator::Free => "free",
            Allocator::Malloc => "malloc",
            Allocator::Realloc => "realloc",
            Allocator::Calloc => "calloc",
            Allocator::PosixMemalign => "posix_memalign",
            Allocator::AlignedAlloc => "aligned_alloc",
            Allocator::Memalign => "memalign",
            Allocator::Valloc => "valloc",
            Allocator::Pvalloc => "pvalloc",
            Allocator::Mmap => "mmap",
            Allocator::Munmap => "munmap",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_kinds_follow_memray() {
        for id in 1..=15 {
            assert_eq!(Allocator::from_id(id).unwrap().id(), id);
        }
        assert_eq!(Allocator::from_id(0), None);
        assert_eq!(Allocator::from_id(16), None);
        assert_eq!(Allocator::from_v11_id(1), Some(Allocator::Malloc));
        assert_eq!(Allocator::from_v11_id(15), Some(Allocator::PymallocFree));
        assert!(Allocator::Free.is_simple_deallocator());
        assert!(!Allocator::Munmap.is_simple_deallocator());
        assert!(Allocator::Munmap.is_deallocator());
        assert_eq!(Allocator::Mmap.kind(), AllocatorKind::RangedAllocator);
        assert_eq!(Allocator::Valloc.name(), "valloc");
    }
}
