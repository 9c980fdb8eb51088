//! Unwinding the calling thread's stack, without allocating.

use std::ops::Range;

use framehop::{CacheNative, MustNotAllocateDuringUnwind, Unwinder};

use crate::module_set::{ModuleSet, MODULES};
use crate::platform::current_thread_stack;
use crate::published::Reader;
use crate::registers::UnwindStart;

/// A thread's unwinding state: its rule cache and its stack's bounds. Create one per thread,
/// outside any allocation hook (creating it allocates and asks the C library for the stack
/// bounds, which may allocate too), and use it only on that thread.
pub struct ThreadUnwinder {
    cache: CacheNative<MustNotAllocateDuringUnwind>,
    stack: Range<u64>,
    modules: Reader<ModuleSet>,
}

impl ThreadUnwinder {
    pub fn new() -> Self {
        Self {
            cache: CacheNative::new_in(),
            stack: current_thread_stack(),
            modules: MODULES.register(),
        }
    }

    /// Writes the return addresses of the calling stack into `out`, innermost first, and
    /// returns how many it wrote. The first is the return address of this call (an address
    /// in its caller), unless `skip` frames are skipped first. See [`Self::unwind_from`].
    #[inline(never)]
    pub fn unwind(&mut self, skip: usize, out: &mut [u64]) -> usize {
        // The first frame is this function's own instruction pointer.
        self.unwind_from(crate::unwind_start!(), skip + 1, out)
    }

    /// Writes the addresses of the stack from `start` outwards into `out`, innermost first
    /// (the first is `start`'s own instruction pointer), skipping `skip` first, and returns
    /// how many it wrote. `start` must come from a frame of this thread that is still live
    /// (the caller's own, or one of its callers'). Never allocates; reads memory only
    /// inside this thread's stack, above `start`'s stack pointer; writes nothing on the
    /// stack. Writes nothing before the first `refresh_modules`.
    pub fn unwind_from(&mut self, start: UnwindStart, skip: usize, out: &mut [u64]) -> usize {
        let stack = self.stack.start.max(start.sp())..self.stack.end;
        let cache = &mut self.cache;
        self.modules.read(|modules| {
            let Some(modules) = modules else { return 0 };
            let mut read_stack = |address: u64| {
                if address.is_multiple_of(8) && stack.start <= address && address + 8 <= stack.end {
                    // SAFETY: an aligned word inside this thread's stack, above the start's
                    // stack pointer, in a frame still live: mapped and readable.
                    Ok(unsafe { (address as *const u64).read() })
                } else {
                    Err(())
                }
            };
            let mut frames =
                modules
                    .unwinder
                    .iter_frames(start.ip, start.regs, cache, &mut read_stack);
            let mut skip = skip;
            let mut written = 0;
            while written < out.len() {
                let Ok(Some(frame)) = frames.next() else {
                    break;
                };
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                out[written] = frame.address();
                written += 1;
            }
            written
        })
    }
}

impl Default for ThreadUnwinder {
    fn default() -> Self {
        Self::new()
    }
}
