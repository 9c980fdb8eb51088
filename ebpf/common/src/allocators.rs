//! The probed allocator functions, memray's allocator numbers and the records
//! the probes send to userspace.

/// A probed libc function. Its number is the uprobe's attach cookie, so one
/// entry program serves every function.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Function {
    Malloc = 0,
    Calloc = 1,
    Realloc = 2,
    Reallocarray = 3,
    Free = 4,
    PosixMemalign = 5,
    AlignedAlloc = 6,
    Memalign = 7,
    Valloc = 8,
    Pvalloc = 9,
    Mmap = 10,
    Munmap = 11,
    Mremap = 12,
}

impl Function {
    pub const ALL: [Function; 13] = [
        Function::Malloc,
        Function::Calloc,
        Function::Realloc,
        Function::Reallocarray,
        Function::Free,
        Function::PosixMemalign,
        // Before aligned_alloc: where glibc makes one an alias of the other,
        // the probe at that address is recorded as the first in this order.
        Function::Memalign,
        Function::AlignedAlloc,
        Function::Valloc,
        Function::Pvalloc,
        Function::Mmap,
        Function::Munmap,
        Function::Mremap,
    ];

    pub const fn from_cookie(cookie: u64) -> Option<Function> {
        Some(match cookie {
            0 => Function::Malloc,
            1 => Function::Calloc,
            2 => Function::Realloc,
            3 => Function::Reallocarray,
            4 => Function::Free,
            5 => Function::PosixMemalign,
            6 => Function::AlignedAlloc,
            7 => Function::Memalign,
            8 => Function::Valloc,
            9 => Function::Pvalloc,
            10 => Function::Mmap,
            11 => Function::Munmap,
            12 => Function::Mremap,
            _ => return None,
        })
    }

    pub const fn cookie(self) -> u64 {
        self as u64
    }

    /// The symbol in libc's dynamic symbol table.
    pub const fn symbol(self) -> &'static str {
        match self {
            Function::Malloc => "malloc",
            Function::Calloc => "calloc",
            Function::Realloc => "realloc",
            Function::Reallocarray => "reallocarray",
            Function::Free => "free",
            Function::PosixMemalign => "posix_memalign",
            Function::AlignedAlloc => "aligned_alloc",
            Function::Memalign => "memalign",
            Function::Valloc => "valloc",
            Function::Pvalloc => "pvalloc",
            Function::Mmap => "mmap",
            Function::Munmap => "munmap",
            Function::Mremap => "mremap",
        }
    }

    /// Whether the result decides what is recorded (a failed call is not),
    /// so the function needs a return probe. `free` and `munmap` are recorded
    /// on entry, before the memory can be reused, as memray does.
    pub const fn has_return_probe(self) -> bool {
        !matches!(self, Function::Free | Function::Munmap)
    }

    /// Thin wrappers of system calls that libc also calls internally without
    /// going through its PLT (malloc's arenas, `free` of a large block): such
    /// calls are invisible to memray's in-process hooks, so the probes skip
    /// calls whose return address lies in libc's own code.
    pub const fn is_syscall_wrapper(self) -> bool {
        matches!(self, Function::Mmap | Function::Munmap | Function::Mremap)
    }
}

/// The allocators these probes record, numbered as in memray's captures
/// (`hooks.h::Allocator`, formats 12 and 13; memray-format's `Allocator` in
/// userspace, checked equal by memray-ebpf's tests).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allocator {
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

impl Allocator {
    pub const ALL: [Allocator; 11] = [
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
}

/// One record of the ring buffer. `kind` comes first in every record: values
/// 1–15 are allocation records (memray's allocator numbers, [`Allocator`]); record kinds added later (stack
/// definitions) take values from 0x100 up.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocationEvent {
    /// An [`Allocator`] number.
    pub kind: u32,
    pub tgid: u32,
    pub tid: u32,
    pub _reserved: u32,
    pub address: u64,
    /// Bytes requested; 0 for `free`, the length for `munmap`.
    pub size: u64,
    /// `CLOCK_MONOTONIC` nanoseconds (`bpf_ktime_get_ns`).
    pub timestamp_ns: u64,
    /// The Python stack of the allocation: an id of a stack sent once, 0 while
    /// the probes do not walk stacks.
    pub stack_id: u64,
}

/// What the probes know of a tracked process: the value of the pid set, keyed
/// by tgid (a forked child gets a copy of its parent's).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrackedProcess {
    /// [`TrackedProcess::FOLLOW_FORK`], [`TrackedProcess::FOLLOW_EXEC`],
    /// [`TrackedProcess::RECORDED`].
    pub flags: u64,
    /// Where libc's executable code is mapped in the process (start, end):
    /// calls from there to the syscall wrappers are libc's own.
    pub libc_text_start: u64,
    pub libc_text_end: u64,
    /// The tgid userspace attached to: the process itself, or the ancestor
    /// it was forked from (detaching removes the whole family).
    pub origin: u64,
}

impl TrackedProcess {
    /// Children forked by this process are tracked too.
    pub const FOLLOW_FORK: u64 = 1;
    /// Its programs are followed through `exec` (the children it forks
    /// join the set, as they may exec; their captures start at the exec).
    pub const FOLLOW_EXEC: u64 = 2;
    /// Its allocator calls are recorded: set by userspace once every probe
    /// the program it runs needs is placed, cleared when it execs another.
    /// A call whose entry probe fires before its return probe is placed
    /// would stay in flight for good, every later call of its thread
    /// counted as nested in it and never recorded.
    pub const RECORDED: u64 = 8;
}

/// An allocator call in flight on a thread, from its entry probe to its
/// return probe: the value of the pending-call map, keyed by pid_tgid.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingCall {
    /// The [`Function`] (its cookie).
    pub function: u32,
    /// Allocator calls made from inside this one (glibc's `realloc(NULL, n)`
    /// calls `malloc`): each of their return probes only decrements it, so the
    /// outer call is recorded once.
    pub depth: u32,
    /// The first three arguments.
    pub args: [u64; 3],
    /// The Python stack walked at entry (0: none), for the allocation the
    /// return probe records.
    pub stack_id: u64,
}
