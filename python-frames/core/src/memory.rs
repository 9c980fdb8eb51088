//! Where the walker's bytes come from. One small trait so that the same walk
//! serves this process, another process, a recorded snapshot and a BPF probe
//! (whose implementation is `bpf_probe_read_user`).

/// A readable address space.
pub trait Memory {
    /// Fills `buf` with the bytes at `addr`; `false` if any of them is unreadable.
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool;
}

/// Fixed-size little-endian reads on top of `Memory`: plain integers only.
pub trait MemoryExt: Memory {
    #[inline(always)]
    fn read_array<const N: usize>(&self, addr: u64) -> Option<[u8; N]> {
        let mut buf = [0u8; N];
        self.read(addr, &mut buf).then_some(buf)
    }
    #[inline(always)]
    fn read_u64(&self, addr: u64) -> Option<u64> {
        self.read_array(addr).map(u64::from_le_bytes)
    }
    #[inline(always)]
    fn read_u32(&self, addr: u64) -> Option<u32> {
        self.read_array(addr).map(u32::from_le_bytes)
    }
    #[inline(always)]
    fn read_i32(&self, addr: u64) -> Option<i32> {
        self.read_array(addr).map(i32::from_le_bytes)
    }
    #[inline(always)]
    fn read_u8(&self, addr: u64) -> Option<u8> {
        self.read_array::<1>(addr).map(|[b]| b)
    }
}

impl<M: Memory + ?Sized> MemoryExt for M {}
