//! Native stacks (`--native`): each thread unwinds its own stack at every allocation with
//! its own unwinder, leaving out the tracker's frames so that the first address is the
//! return address in the allocation's caller, as memray records it. The unwinder's module
//! set is rebuilt at activation and after every successful `dlopen`/`dlclose`, and the
//! capture then gets the new list of loaded objects.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use memray_recorder::Image;
use memray_unwind::{loaded_objects, refresh_modules, ThreadUnwinder, UnwindStart};

use crate::tracking;

static ENABLED: AtomicBool = AtomicBool::new(false);
/// The address range of the tracker library's own segments.
static OWN_START: AtomicU64 = AtomicU64::new(0);
static OWN_END: AtomicU64 = AtomicU64::new(0);

/// The stack depth first unwound into, and the deepest kept (innermost frames win).
const INITIAL_DEPTH: usize = 256;
const MAX_DEPTH: usize = 64 * 1024;

/// Turns native stacks on or off for the capture being activated; when on, builds the
/// module set. Call outside any hook: it allocates and maps files.
pub fn start(enabled: bool) {
    if enabled {
        refresh_modules();
        let own = own_code(&loaded_objects()).unwrap_or(0..0);
        OWN_START.store(own.start, Ordering::Relaxed);
        OWN_END.store(own.end, Ordering::Relaxed);
    }
    ENABLED.store(enabled, Ordering::Release);
}

/// The objects the capture describes at its start: the loaded objects with native stacks,
/// none without.
pub fn initial_objects(native_traces: bool) -> Vec<Image> {
    if native_traces {
        loaded_objects()
    } else {
        Vec::new()
    }
}

/// A `dlopen` or `dlclose` succeeded: rebuild the module set and record the loaded
/// objects. Call outside any unwind (the loader's hooks do).
pub fn loaded_objects_changed() {
    if !ENABLED.load(Ordering::Acquire) || !tracking::is_active() {
        return;
    }
    refresh_modules();
    tracking::loaded_objects_changed(&loaded_objects());
}

/// The span of the object holding this function.
fn own_code(objects: &[Image]) -> Option<Range<u64>> {
    let here = own_code as fn(&[Image]) -> Option<Range<u64>> as usize as u64;
    objects.iter().find_map(|object| {
        let spans = object.segments.iter().map(|segment| {
            let start = object.load_address + segment.vaddr;
            start..start + segment.memsz
        });
        let start = spans.clone().map(|span| span.start).min()?;
        let end = spans.clone().map(|span| span.end).max()?;
        spans
            .clone()
            .any(|span| span.contains(&here))
            .then_some(start..end)
    })
}

/// A thread's unwinder and the buffer its stacks are unwound into.
#[derive(Default)]
pub struct NativeStack {
    /// Created at the thread's first unwind (creating it allocates: the hooks run under
    /// the recursion guard, so those allocations go untracked).
    unwinder: Option<ThreadUnwinder>,
    buffer: Vec<u64>,
}

impl NativeStack {
    /// The calling thread's return addresses, innermost first, from the allocation's
    /// caller outwards; empty when native stacks are off. Call from a hook only, with a
    /// start taken in the hook.
    pub fn unwind(&mut self, start: UnwindStart) -> &[u64] {
        if !ENABLED.load(Ordering::Acquire) {
            return &[];
        }
        let unwinder = self.unwinder.get_or_insert_with(ThreadUnwinder::new);
        if self.buffer.is_empty() {
            self.buffer.resize(INITIAL_DEPTH, 0);
        }
        let depth = loop {
            let depth = unwinder.unwind_from(start, 0, &mut self.buffer);
            if depth < self.buffer.len() || self.buffer.len() >= MAX_DEPTH {
                break depth;
            }
            let bigger = (self.buffer.len() * 2).min(MAX_DEPTH);
            self.buffer.resize(bigger, 0);
        };
        let own = OWN_START.load(Ordering::Relaxed)..OWN_END.load(Ordering::Relaxed);
        let stack = &self.buffer[..depth];
        let callers = stack
            .iter()
            .position(|address| !own.contains(address))
            .unwrap_or(depth);
        &stack[callers..]
    }
}
