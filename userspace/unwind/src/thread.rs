//! Unwinding the calling thread's stack, without allocating.

use std::ops::Range;

use framehop::{CacheNative, MustNotAllocateDuringUnwind, Unwinder};

use crate::module_set::{ModuleSet, MODULES};
use crate::published::Reader;
use crate::platform::current_thread_stack;
use crate::registers::registers_here;

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
    /// in its caller), unless `skip` frames are skipped first. Never allocates; reads memory
    /// only inside this thread's stack, above the current stack pointer; writes nothing on
    /// the stack. Writes nothing before the first `refresh_modules`.
    #[inline(never)]
    pub fn unwind(&mut self, skip: usize, out: &mut [u64]) -> usize {
        let (ip, regs) = registers_here!();
        let sp = regs.sp();
        let stack = self.stack.start.max(sp)..self.stack.end;
        let cache = &mut self.cache;
        self.modules.read(|modules| {
            let Some(modules) = modules else { return 0 };
            let mut read_stack = |address: u64| {
                if address.is_multiple_of(8) && stack.start <= address && address + 8 <= stack.end {
                    // SAFETY: an aligned word inside this thread's stack, above the stack
                    // pointer: mapped and readable while this thread runs.
                    Ok(unsafe { (address as *const u64).read() })
                } else {
                    Err(())
                }
            };
            let mut frames = modules
                .unwinder
                .iter_frames(ip, regs, cache, &mut read_stack);
            // The first frame is this function's own instruction pointer.
            let mut skip = skip + 1;
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
