//! Unwinding the calling thread's stack, without allocating.

use std::arch::asm;
use std::ops::Range;

use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64};
use framehop::{MustNotAllocateDuringUnwind, Unwinder};

use crate::module_set::MODULES;

/// A thread's unwinding state: its rule cache and its stack's bounds. Create one per thread,
/// outside any allocation hook (creating it allocates and asks glibc for the stack bounds,
/// which may allocate too), and use it only on that thread.
pub struct ThreadUnwinder {
    cache: CacheX86_64<MustNotAllocateDuringUnwind>,
    stack: Range<u64>,
}

impl ThreadUnwinder {
    pub fn new() -> Self {
        Self {
            cache: CacheX86_64::new_in(),
            stack: current_thread_stack(),
        }
    }

    /// Writes the return addresses of the calling stack into `out`, innermost first, and
    /// returns how many it wrote. The first is the return address of this call (an address
    /// in its caller), unless `skip` frames are skipped first. Never allocates; reads memory
    /// only inside this thread's stack, above the current stack pointer; writes nothing on
    /// the stack. Writes nothing before the first `refresh_modules`.
    #[inline(never)]
    pub fn unwind(&mut self, skip: usize, out: &mut [u64]) -> usize {
        let (ip, sp, bp): (u64, u64, u64);
        // SAFETY: reads this function's own instruction pointer, stack pointer and frame
        // pointer into registers; touches no memory and leaves the stack as it is.
        unsafe {
            asm!(
                "lea {ip}, [rip]",
                "mov {sp}, rsp",
                "mov {bp}, rbp",
                ip = out(reg) ip,
                sp = out(reg) sp,
                bp = out(reg) bp,
                options(nomem, nostack, preserves_flags),
            );
        }
        let stack = self.stack.start.max(sp)..self.stack.end;
        let cache = &mut self.cache;
        MODULES.read(|modules| {
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
            let regs = UnwindRegsX86_64::new(ip, sp, bp);
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

/// The calling thread's stack, from `pthread_getattr_np`; empty if glibc cannot tell (then
/// no frame is read from the stack).
fn current_thread_stack() -> Range<u64> {
    // SAFETY: `attr` is initialised by `pthread_getattr_np` before it is read and destroyed
    // once; the out-pointers are valid locals.
    unsafe {
        let mut attr = std::mem::zeroed::<libc::pthread_attr_t>();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return 0..0;
        }
        let mut low = std::ptr::null_mut();
        let mut size = 0;
        let found = libc::pthread_attr_getstack(&attr, &mut low, &mut size) == 0;
        libc::pthread_attr_destroy(&mut attr);
        if found {
            low as u64..low as u64 + size as u64
        } else {
            0..0
        }
    }
}
