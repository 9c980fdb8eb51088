//! The probed allocator functions, memray's allocator numbers and the records
//! the probes send to userspace.

/// A probed allocator function: libc's, or one the interpreter's allocator
/// tables point to (`--trace-python-allocators`). Its number is the uprobe's
/// attach cookie, so one entry program serves every function.
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
    /// The functions of a `PyMemAllocatorEx` (`ctx` first), any domain.
    PymallocMalloc = 13,
    PymallocCalloc = 14,
    PymallocRealloc = 15,
    PymallocFree = 16,
}

impl Function {
    /// libc's functions.
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

    /// A `PyMemAllocatorEx`'s functions, in its order (after `ctx`).
    pub const PYTHON: [Function; 4] = [
        Function::PymallocMalloc,
        Function::PymallocCalloc,
        Function::PymallocRealloc,
        Function::PymallocFree,
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
            13 => Function::PymallocMalloc,
            14 => Function::PymallocCalloc,
            15 => Function::PymallocRealloc,
            16 => Function::PymallocFree,
            _ => return None,
        })
    }

    pub const fn cookie(self) -> u64 {
        self as u64
    }

    /// The symbol in libc's dynamic symbol table (the Python allocators are
    /// found by address: memray's name of what they record).
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
            Function::PymallocMalloc => "pymalloc_malloc",
            Function::PymallocCalloc => "pymalloc_calloc",
            Function::PymallocRealloc => "pymalloc_realloc",
            Function::PymallocFree => "pymalloc_free",
        }
    }

    /// Whether the result decides what is recorded (a failed call is not),
    /// so the function needs a return probe. `free` and `munmap` are recorded
    /// on entry, before the memory can be reused, as memray does; so is the
    /// Python allocators' free, whose return probe ends the call that the
    /// allocator calls made inside it are nested in (memray records pymalloc's
    /// `free` of a large block, not also libc's underneath).
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

/// One record of the ring buffer. `kind` comes first in every record: values
/// 1–15 are allocation records (memray's allocator numbers,
/// [`memray_allocators::Allocator`]); record kinds added later (stack
/// definitions) take values from 0x100 up.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocationEvent {
    /// A [`memray_allocators::Allocator`] number.
    pub kind: u32,
    pub tgid: u32,
    pub tid: u32,
    /// The native stack copied at the call's entry (`native_stack`), 0: none.
    pub native_serial: u32,
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
    /// [`TrackedProcess::RECORDED`], [`TrackedProcess::BEFORE_EXEC`].
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
    /// Each allocation copies its native stack (`--native`).
    pub const NATIVE_STACKS: u64 = 4;
    /// Its allocator calls are recorded: set by userspace once every probe
    /// the program it runs needs is placed, cleared when it execs another.
    /// A call whose entry probe fires before its return probe is placed
    /// would stay in flight for good, every later call of its thread
    /// counted as nested in it and never recorded.
    pub const RECORDED: u64 = 8;
    /// Attached before its program's `exec` (`run --ebpf`'s held program):
    /// it stays in the set through that first exec.
    pub const BEFORE_EXEC: u64 = 16;
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
    /// The native stack copied at entry (0: none), for the same record.
    pub native_serial: u32,
    pub _padding: u32,
}
