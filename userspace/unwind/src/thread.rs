//! Unwinding the calling thread's stack, without allocating.

use std::ops::Range;

use framehop::{CacheNative, FrameAddress, MustNotAllocateDuringUnwind, Unwinder};

use crate::module_set::{ModuleSet, ModuleUnwinder, MODULES};
use crate::platform::stack_containing;
use crate::published::Reader;
use crate::registers::{register_state, UnwindStart};
use crate::trail::Trail;

/// A thread's unwinding state: its rule cache, the bounds of the stack it runs on and its
/// last unwind. Create one per thread (creating it allocates: in an allocation hook, only
/// under its recursion guard), and use it only on that thread.
pub struct ThreadUnwinder {
    cache: CacheNative<MustNotAllocateDuringUnwind>,
    /// The mapping holding the stack of the last unwind (looked up again when an unwind
    /// starts outside it: a signal handler's alternate stack, a switched-to stack).
    stack: Range<u64>,
    modules: Reader<ModuleSet>,
    trail: Trail,
    /// How many frames the last unwind copied from the one before.
    copied: usize,
    /// Debug builds unwind again the long way after each rejoin, into this.
    #[cfg(debug_assertions)]
    check: Vec<u64>,
}

impl ThreadUnwinder {
    pub fn new() -> Self {
        Self {
            cache: CacheNative::new_in(),
            stack: 0..0,
            modules: MODULES.register(),
            trail: Trail::new(),
            copied: 0,
            #[cfg(debug_assertions)]
            check: vec![0; 4096],
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
    /// (the caller's own, or one of its callers'). Never allocates and takes no lock;
    /// reads memory only inside the mapping that holds `start`'s stack pointer, above it
    /// (the first unwind on a stack reads `/proc/self/maps` to find it); writes nothing on
    /// the stack. Writes nothing before the first `refresh_modules`. Stops where the stack is
    /// still as this thread's previous unwind found it, and copies the rest from that one
    /// (see `trail.rs` for why that is exact).
    pub fn unwind_from(&mut self, start: UnwindStart, skip: usize, out: &mut [u64]) -> usize {
        if !self.stack.contains(&start.sp()) {
            self.stack = stack_containing(start.sp());
        }
        let stack = start.sp()..self.stack.end;
        let read_stack = |address: u64| {
            if address.is_multiple_of(8) && stack.start <= address && address + 8 <= stack.end {
                // SAFETY: an aligned word inside this thread's stack, above the start's
                // stack pointer, in a frame still live: mapped and readable.
                Ok(unsafe { (address as *const u64).read() })
            } else {
                Err(())
            }
        };
        let (cache, trail, copied) = (&mut self.cache, &mut self.trail, &mut self.copied);
        #[cfg(debug_assertions)]
        let check = &mut self.check;
        self.modules.read(|modules| {
            let Some(modules) = modules else { return 0 };
            trail.start(modules.generation);
            let mut frames = Frames::new(skip, out);
            let rejoined = walk(
                &modules.unwinder,
                cache,
                start,
                &read_stack,
                Some(trail),
                &mut frames,
            );
            *copied = rejoined.unwrap_or(0);
            #[cfg(debug_assertions)]
            if rejoined.is_some() {
                let mut full = Frames::new(skip, check);
                walk(
                    &modules.unwinder,
                    cache,
                    start,
                    &read_stack,
                    None,
                    &mut full,
                );
                frames.assert_same(&full);
            }
            frames.written
        })
    }

    /// How many of the last unwind's frames were copied from the one before (outside the
    /// part of the stack that had changed since) instead of unwound.
    pub fn copied(&self) -> usize {
        self.copied
    }
}

/// The frames an unwind writes: the first `skip` left out, then as many as `out` holds.
struct Frames<'a> {
    skip: usize,
    out: &'a mut [u64],
    written: usize,
}

impl<'a> Frames<'a> {
    fn new(skip: usize, out: &'a mut [u64]) -> Self {
        Self {
            skip,
            out,
            written: 0,
        }
    }

    /// Adds a frame; false when `out` has no room left for it.
    fn push(&mut self, address: u64) -> bool {
        if self.skip > 0 {
            self.skip -= 1;
        } else if self.written < self.out.len() {
            self.out[self.written] = address;
            self.written += 1;
        } else {
            return false;
        }
        true
    }

    /// A rejoined unwind against the same one done the long way (`full`, perhaps shorter).
    #[cfg(debug_assertions)]
    fn assert_same(&self, full: &Frames) {
        let compared = self.written.min(full.written);
        let complete = full.written < full.out.len() && self.written < self.out.len();
        assert!(
            self.out[..compared] == full.out[..compared]
                && (!complete || self.written == full.written),
            "memray-unwind: a rejoined unwind differs from the full one: {:x?} against {:x?}",
            &self.out[..self.written],
            &full.out[..full.written],
        );
    }
}

/// Unwinds from `start` into `frames` until the stack ends or `frames` is full. With a
/// trail, stops as soon as the trail allows and copies the outer frames from it (and returns
/// how many it copied), else leaves this unwind in the trail.
fn walk(
    unwinder: &ModuleUnwinder,
    cache: &mut CacheNative<MustNotAllocateDuringUnwind>,
    start: UnwindStart,
    read_stack: &impl Fn(u64) -> Result<u64, ()>,
    mut trail: Option<&mut Trail>,
    frames: &mut Frames,
) -> Option<usize> {
    let mut address = FrameAddress::InstructionPointer(start.ip);
    let mut regs = start.regs();
    loop {
        if !frames.push(address.address()) {
            if let Some(trail) = trail {
                trail.forget();
            }
            return None;
        }
        if let Some(trail) = trail.as_deref_mut() {
            let registers = register_state(&regs);
            if address.is_return_address() {
                if let Some(outer) = trail.rejoin(address.address(), registers, read_stack) {
                    let before = frames.written;
                    for frame in outer {
                        if !frames.push(frame) {
                            break;
                        }
                    }
                    return Some(frames.written - before);
                }
            }
            trail.step(address.address(), registers);
        }
        let mut read = |address: u64| {
            let value = read_stack(address);
            if let Some(trail) = trail.as_deref_mut() {
                trail.record(address, value);
            }
            value
        };
        let next = unwinder.unwind_frame(address, &mut regs, cache, &mut read);
        match next
            .ok()
            .flatten()
            .and_then(FrameAddress::from_return_address)
        {
            Some(next) => address = next,
            None => {
                if let Some(trail) = trail {
                    trail.finish();
                }
                return None;
            }
        }
    }
}

impl Default for ThreadUnwinder {
    fn default() -> Self {
        Self::new()
    }
}
