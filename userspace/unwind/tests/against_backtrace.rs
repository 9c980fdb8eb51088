#![cfg(target_os = "linux")]
//! The unwinder against glibc's `backtrace()` (libgcc's DWARF unwinder), from the same point,
//! through C code compiled here without frame pointers; with an allocator that counts every
//! allocation made on a thread while it unwinds.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::ffi::{c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use memray_unwind::{refresh_modules, ThreadUnwinder};

/// Counts allocations made on a thread while its `UNWINDING` flag is set.
struct CountingAllocator;

static ALLOCATIONS_WHILE_UNWINDING: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    static UNWINDING: Cell<bool> = const { Cell::new(false) };
}

fn count_if_unwinding() {
    if UNWINDING.with(Cell::get) {
        ALLOCATIONS_WHILE_UNWINDING.fetch_add(1, Ordering::SeqCst);
    }
}

// SAFETY: forwards to the system allocator unchanged; counting touches no allocator state.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_if_unwinding();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count_if_unwinding();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_if_unwinding();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

extern "C" {
    /// glibc's `backtrace(3)`.
    fn backtrace(buffer: *mut *mut c_void, size: i32) -> i32;
}

type Probe = extern "C" fn(*mut c_void);
type Chain = unsafe extern "C" fn(Probe, *mut c_void);
type Recurse = unsafe extern "C" fn(i32, Probe, *mut c_void) -> i32;

/// The fixture library, compiled once per test binary and loaded.
struct ChainLibrary {
    path: PathBuf,
    foo: Chain,
    inlined: Chain,
    recurse: Recurse,
}

fn chain_library() -> &'static ChainLibrary {
    static LIBRARY: OnceLock<ChainLibrary> = OnceLock::new();
    LIBRARY.get_or_init(|| {
        let source =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/native/chain.c");
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("libmemray_unwind_chain.so");
        let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".into());
        let status = Command::new(&compiler)
            .args(["-O2", "-fomit-frame-pointer", "-shared", "-fPIC", "-o"])
            .arg(&path)
            .arg(&source)
            .status()
            .unwrap_or_else(|error| panic!("cannot run {compiler}: {error}"));
        assert!(
            status.success(),
            "{compiler} failed on {}",
            source.display()
        );
        let name = CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: loads the library just built; its symbols have the types declared above.
        unsafe {
            let handle = libc::dlopen(name.as_ptr(), libc::RTLD_NOW);
            assert!(!handle.is_null(), "dlopen {}", path.display());
            let symbol = |name: &CStr| {
                let address = libc::dlsym(handle, name.as_ptr());
                assert!(!address.is_null(), "{name:?} missing");
                address
            };
            let library = ChainLibrary {
                path: path.clone(),
                foo: std::mem::transmute::<*mut c_void, Chain>(symbol(c"chain_foo")),
                inlined: std::mem::transmute::<*mut c_void, Chain>(symbol(c"chain_inlined")),
                recurse: std::mem::transmute::<*mut c_void, Recurse>(symbol(c"chain_recurse")),
            };
            refresh_modules();
            library
        }
    })
}

const DEPTH: usize = 4096;

/// What the probe saw: our frames and glibc's, each from the probe's own call site on.
struct Stacks {
    ours: Vec<u64>,
    glibc: Vec<u64>,
    unwind_nanos: u128,
    /// How many of ours were copied from the unwinder's previous unwind.
    copied: usize,
}

extern "C" fn probe(context: *mut c_void) {
    let mut unwinder = ThreadUnwinder::new();
    // Warm the rule cache, as a long-lived thread's would be.
    unwinder.unwind(0, &mut [0u64; DEPTH]);
    unwind_here(&mut unwinder, context);
}

thread_local! {
    static KEPT: RefCell<Option<ThreadUnwinder>> = const { RefCell::new(None) };
}

/// The probe with one unwinder kept for the thread's whole life, as the tracker's is.
extern "C" fn probe_with_kept_unwinder(context: *mut c_void) {
    KEPT.with(|kept| {
        let mut kept = kept.borrow_mut();
        unwind_here(kept.get_or_insert_with(ThreadUnwinder::new), context);
    });
}

#[inline(always)]
fn unwind_here(unwinder: &mut ThreadUnwinder, context: *mut c_void) {
    // SAFETY: every chain is called with a `*mut Stacks` as its context.
    let stacks = unsafe { &mut *context.cast::<Stacks>() };
    let mut ours = vec![0u64; DEPTH];
    let mut glibc = vec![std::ptr::null_mut(); DEPTH];
    UNWINDING.with(|flag| flag.set(true));
    let start = Instant::now();
    let written = unwinder.unwind(0, &mut ours);
    stacks.unwind_nanos = start.elapsed().as_nanos();
    UNWINDING.with(|flag| flag.set(false));
    stacks.copied = unwinder.copied();
    // SAFETY: `glibc` has room for DEPTH pointers.
    let found = unsafe { backtrace(glibc.as_mut_ptr(), DEPTH as i32) } as usize;
    // Frame 0 of each is its own call site in the probe: compare from the caller on.
    stacks.ours = ours[1..written].to_vec();
    stacks.glibc = glibc[1..found]
        .iter()
        .map(|&address| address as u64)
        .collect();
}

fn run(chain: impl FnOnce(*mut c_void)) -> Stacks {
    let mut stacks = Stacks {
        ours: Vec::new(),
        glibc: Vec::new(),
        unwind_nanos: 0,
        copied: 0,
    };
    let before = ALLOCATIONS_WHILE_UNWINDING.load(Ordering::SeqCst);
    chain((&mut stacks as *mut Stacks).cast());
    assert_eq!(
        ALLOCATIONS_WHILE_UNWINDING.load(Ordering::SeqCst),
        before,
        "the unwinder allocated"
    );
    stacks
}

/// The object file an address lies in, by `dladdr`.
fn object_of(address: u64) -> Option<PathBuf> {
    // SAFETY: `dladdr` fills `info` for any address and reports failure as 0.
    unsafe {
        let mut info = std::mem::zeroed::<libc::Dl_info>();
        if libc::dladdr((address - 1) as *const c_void, &mut info) == 0 || info.dli_fname.is_null()
        {
            return None;
        }
        Some(PathBuf::from(CStr::from_ptr(info.dli_fname).to_str().ok()?))
    }
}

fn frames_in_library(stack: &[u64]) -> usize {
    let library = &chain_library().path;
    stack
        .iter()
        .filter(|&&address| object_of(address).as_ref() == Some(library))
        .count()
}

/// glibc's stack is ours: the same return addresses, innermost first, down to the frame
/// where libgcc stops (ours may end a frame later, on the thread's start routine).
fn assert_same_as_glibc(stacks: &Stacks) {
    assert!(stacks.glibc.len() > 3, "glibc found {:x?}", stacks.glibc);
    let common = stacks.glibc.len().min(stacks.ours.len());
    assert_eq!(
        stacks.ours[..common],
        stacks.glibc[..common],
        "ours {:x?}\nglibc {:x?}",
        &stacks.ours[..common.min(20)],
        &stacks.glibc[..common.min(20)]
    );
    assert!(
        stacks.ours.len() + 1 >= stacks.glibc.len(),
        "ours stops after {} frames, glibc after {}",
        stacks.ours.len(),
        stacks.glibc.len()
    );
}

#[test]
fn foo_bar_baz_without_frame_pointers() {
    let library = chain_library();
    // SAFETY: the fixture calls `probe` with the context it is given.
    let stacks = run(|context| unsafe { (library.foo)(probe, context) });
    assert_same_as_glibc(&stacks);
    assert_eq!(
        frames_in_library(&stacks.ours[..3]),
        3,
        "baz, bar, foo first: {:x?}",
        stacks.ours
    );
}

#[test]
fn inlined_functions_leave_one_frame() {
    let library = chain_library();
    // SAFETY: as above.
    let stacks = run(|context| unsafe { (library.inlined)(probe, context) });
    assert_same_as_glibc(&stacks);
    assert_eq!(frames_in_library(&stacks.ours), 1, "{:x?}", stacks.ours);
}

#[test]
fn recursion_3000_deep() {
    let library = chain_library();
    // SAFETY: as above.
    let stacks = run(|context| unsafe {
        (library.recurse)(3000, probe, context);
    });
    assert_same_as_glibc(&stacks);
    assert_eq!(frames_in_library(&stacks.ours), 3001);
    eprintln!(
        "unwound {} frames in {} ns: {:.1} ns per frame",
        stacks.ours.len(),
        stacks.unwind_nanos,
        stacks.unwind_nanos as f64 / stacks.ours.len() as f64
    );
}

#[test]
fn threads_unwind_their_own_stacks() {
    let library = chain_library();
    let threads: Vec<_> = (0..8)
        .map(|index| {
            std::thread::spawn(move || {
                // SAFETY: as above.
                let stacks = run(|context| unsafe {
                    (library.recurse)(index * 10, probe, context);
                });
                assert_same_as_glibc(&stacks);
                assert_eq!(frames_in_library(&stacks.ours), index as usize * 10 + 1);
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

#[test]
fn skip_drops_the_innermost_frames() {
    chain_library();
    let mut unwinder = ThreadUnwinder::new();
    let (mut all, mut skipped) = ([0u64; 64], [0u64; 64]);
    let whole = unwinder.unwind(0, &mut all);
    let rest = unwinder.unwind(2, &mut skipped);
    assert!(whole > 3);
    // Both calls are made from this function: their callers are the same.
    assert_eq!(rest, whole - 2);
    assert_eq!(skipped[..rest], all[2..whole]);
}

/// One thread's unwinder, probed again and again from the same call site through chains
/// that change the stack deeper, shallower, or not at all: every unwind is still glibc's,
/// and from the second on the unchanged outer frames are copied (debug builds also check
/// each copy against a full unwind).
#[test]
fn later_unwinds_copy_the_unchanged_outer_frames() {
    let library = chain_library();
    /// A chain of the fixture: foo→bar→baz, the inlined one, or a recursion this deep.
    enum Chain {
        Foo,
        Inlined,
        Recurse(i32),
    }
    let calls = [
        Chain::Foo,
        Chain::Recurse(5),
        Chain::Recurse(5),
        Chain::Recurse(8),
        Chain::Recurse(3),
        Chain::Inlined,
        Chain::Recurse(2000),
        Chain::Recurse(2000),
        Chain::Recurse(1999),
        Chain::Recurse(5),
    ];
    for (index, chain) in calls.iter().enumerate() {
        // SAFETY: the fixture calls the probe with the context it is given.
        let stacks = run(|context| unsafe {
            let probe = probe_with_kept_unwinder;
            match *chain {
                Chain::Foo => (library.foo)(probe, context),
                Chain::Inlined => (library.inlined)(probe, context),
                Chain::Recurse(depth) => {
                    (library.recurse)(depth, probe, context);
                }
            }
        });
        assert_same_as_glibc(&stacks);
        let unwound = stacks.ours.len() + 1 - stacks.copied;
        eprintln!(
            "call {index}: {} frames, {unwound} unwound, {} copied, {} ns",
            stacks.ours.len() + 1,
            stacks.copied,
            stacks.unwind_nanos
        );
        if index > 0 {
            assert!(stacks.copied > 0, "call {index} copied nothing");
        }
        if index == 2 || index == 7 {
            // The same stack as the call before: only the probe's own frame is unwound.
            assert!(unwound <= 2, "call {index} unwound {unwound} frames");
        }
    }
}
