//! Every libc allocator of a C program, recorded with memray's semantics:
//! exact kinds, addresses, sizes and order, failed calls left out, glibc's
//! own nested calls (`realloc(NULL, n)` → `malloc`, a large block's `mmap`)
//! recorded once.

mod support;

use memray_ebpf::{Allocator, Event, LibcImage, Options};
use memray_tests::skip;
use support::{Recording, Workload};

#[test]
fn records_every_allocator_exactly() {
    if !skip::needs_built_ebpf(memray_ebpf::is_built()) {
        return;
    }
    let mut workload = Workload::start(&["all"]);
    let pid = workload.pid();
    // glibc may define aligned_alloc as an alias of memalign: one function, one probe.
    let libc = LibcImage::of_process(pid).expect("the workload's libc");
    let offset = |symbol| libc.function(symbol).expect(symbol).file_offset;
    let aligned_alloc = if offset("aligned_alloc") == offset("memalign") {
        Allocator::Memalign
    } else {
        Allocator::AlignedAlloc
    };

    let mut recording = Recording::start(Options::default());
    recording.session.attach(pid, false).expect("attach");
    let at = workload.allocate();
    let events = recording.drain();
    workload.finish();

    let a = |name: &str| at[name];
    use Allocator::*;
    let expected = vec![
        (Malloc, a("malloc"), 1001),
        (Calloc, a("calloc"), 999),
        (Free, a("malloc"), 0),
        (Realloc, a("realloc"), 2002),
        (Realloc, a("realloc_null"), 3003),
        (Realloc, a("reallocarray"), 4004),
        (PosixMemalign, a("posix_memalign"), 5005),
        (aligned_alloc, a("aligned_alloc"), 6016),
        (Memalign, a("memalign"), 7007),
        (Valloc, a("valloc"), 8008),
        (Pvalloc, a("pvalloc"), 9009),
        (Mmap, a("mmap"), 65536),
        (Munmap, a("mmap"), 65536),
        (Mmap, a("mremap"), 131072),
        (Munmap, a("mremap"), 131072),
        (Malloc, a("big"), 1 << 20),
        (Free, a("big"), 0),
        (Free, a("realloc"), 0),
        (Free, a("realloc_null"), 0),
        (Free, a("reallocarray"), 0),
        (Free, a("posix_memalign"), 0),
        (Free, a("aligned_alloc"), 0),
        (Free, a("memalign"), 0),
        (Free, a("valloc"), 0),
        (Free, a("pvalloc"), 0),
        (Free, a("calloc"), 0),
    ];
    let seen: Vec<(Allocator, u64, u64)> = events
        .iter()
        .map(|e| (e.allocator, e.address, e.size))
        .collect();
    assert_eq!(seen, expected);
    assert!(
        events
            .iter()
            .all(|e: &Event| e.tgid == pid && e.tid == pid && e.stack_id == 0),
        "{events:?}"
    );
    assert!(events
        .windows(2)
        .all(|w| w[0].timestamp_ns <= w[1].timestamp_ns));
    assert_eq!(recording.session.drops(pid).expect("drops"), 0);
}
