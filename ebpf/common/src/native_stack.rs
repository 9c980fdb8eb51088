//! Native stacks for `--native`: at an allocator's entry the probe copies
//! the registers and the top of the user stack (from the stack pointer up,
//! page by page, until [`NATIVE_STACK_BYTES`] or the end of the stack's
//! mapping) into one [`NativeStackRecord`] of the `NATIVE_STACKS` ring
//! buffer; userspace unwinds over the copy. The allocation record names its
//! copy by `native_serial`, unique per thread and odd (0: no copy was
//! asked for, [`NATIVE_COPY_LOST`]: the ring buffer was full).
//!
//! The same ring carries the munmaps of those processes
//! ([`NativeUnmapping`]), so that userspace drops an unloaded library at the
//! time it went, as it adds the ones mapped from perf's MMAP2 records.

/// The `native_serial` of an allocation whose copy found the ring full.
pub const NATIVE_COPY_LOST: u32 = 2;

/// The most stack bytes copied: a copy stops at the end of the stack's
/// mapping, so only deeper stacks pay for a larger bound. Measured (main
/// thread, distance from the allocator's stack pointer to the outermost
/// frame, CPython 3.11–3.13): a numpy script and the C test extension reach
/// 70 KiB at most (3 calls at start-up), the extension's 2,100-deep C
/// recursion 42 KiB; a Python recursion nests 0.4–0.5 KiB of C frames per
/// call before 3.11. A power of two (the probe masks offsets).
pub const NATIVE_STACK_BYTES: usize = 256 * 1024;
/// The copy goes page by page: a page it cannot read (past the end of the
/// stack's mapping, when the probe could not look the mapping up) fails
/// alone, and the copy stops before it.
pub const NATIVE_STACK_PAGE: usize = 4096;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NativeStackHeader {
    pub tgid: u32,
    pub tid: u32,
    /// The allocation record's `native_serial`.
    pub serial: u32,
    /// Bytes copied from `sp` on.
    pub length: u32,
    /// The registers at the probe: instruction, stack and frame pointers.
    pub ip: u64,
    pub sp: u64,
    pub bp: u64,
}

/// The `serial` of a record of the ring that is a [`NativeUnmapping`], not
/// a copy (copies' serials are odd).
pub const NATIVE_UNMAPPING: u32 = 4;

/// A `munmap` call of a process whose native stacks are copied: its first
/// three fields are a [`NativeStackHeader`]'s, `serial` being
/// [`NATIVE_UNMAPPING`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NativeUnmapping {
    pub tgid: u32,
    pub tid: u32,
    pub serial: u32,
    pub _padding: u32,
    /// `CLOCK_MONOTONIC` nanoseconds, at the call's entry.
    pub time_ns: u64,
    /// The range unmapped.
    pub start: u64,
    pub length: u64,
}

/// A copy as the probe builds it (only `length` bytes of `stack` are sent).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NativeStackRecord {
    pub header: NativeStackHeader,
    /// One page more than copied at most: the masked page offset the probe
    /// writes at stays inside for the verifier.
    pub stack: [u8; NATIVE_STACK_BYTES + NATIVE_STACK_PAGE],
}

/// The ring buffer of [`NativeStackRecord`]s.
pub const NATIVE_STACKS_MAP: &str = "NATIVE_STACKS";
/// The probe's scratch: `Array<NativeStackRecord>`, one entry per CPU.
pub const NATIVE_COPIES_MAP: &str = "NATIVE_COPIES";
/// The ring's size when native stacks are recorded (a power of two): about
/// 3,000 copies of the test extension's 2,100-deep C recursion (42 KiB
/// each), so that a burst of 1,000 of them fits beside the program's other
/// copies while userspace, unwinding, falls behind (with 64 MiB, 2,000 in a
/// row lost 264); 500 copies of the largest size. Userspace shrinks it to a
/// page otherwise.
pub const NATIVE_STACKS_DEFAULT_BYTES: u32 = 128 << 20;

/// The program that sends the munmaps, and its tracepoint: the syscall's
/// own, since ld.so unmaps a library with its own syscall instruction, not
/// through libc's `munmap`.
pub const NATIVE_UNMAP_PROGRAM: &str = "native_unmap";
pub const NATIVE_UNMAP_TRACEPOINT: (&str, &str) = ("syscalls", "sys_enter_munmap");
/// Where the tracepoint's arguments sit: a syscall's, after the common
/// fields and the syscall number (`struct syscall_trace_enter`).
pub const NATIVE_UNMAP_ADDR_OFFSET: usize = 16;
pub const NATIVE_UNMAP_LEN_OFFSET: usize = 24;
