//! Unwinding another process's stack from a copy of its top (the eBPF
//! probes copy the registers and the stack bytes at an allocator's entry),
//! with the unwind tables of that process's objects read through
//! `/proc/PID/root`. Not for use inside a malloc hook: it allocates.

use framehop::{CacheNative, MustNotAllocateDuringUnwind, UnwindRegsNative, Unwinder};
use memray_format::Image;

use crate::module_set::{Module, ModuleUnwinder};
use crate::platform::{in_root, module_of};

/// The registers at the copy and the stack bytes from `sp` on.
#[derive(Clone, Copy)]
pub struct CopiedStack<'a> {
    pub ip: u64,
    pub sp: u64,
    pub bp: u64,
    pub bytes: &'a [u8],
}

/// The objects of one process and the unwinder over them.
pub struct CopiedStackUnwinder {
    pid: u32,
    unwinder: ModuleUnwinder,
    /// By (file name, load bias): kept when the objects change.
    modules: Vec<(Image, Module)>,
    cache: CacheNative<MustNotAllocateDuringUnwind>,
}

impl CopiedStackUnwinder {
    /// An unwinder for process `pid`, without objects yet.
    pub fn new(pid: u32) -> CopiedStackUnwinder {
        CopiedStackUnwinder {
            pid,
            unwinder: ModuleUnwinder::new(),
            modules: Vec::new(),
            cache: CacheNative::new_in(),
        }
    }

    /// The objects are `images` from now on (their files read through the
    /// process's root; modules of objects still loaded are kept).
    pub fn set_images(&mut self, images: &[Image]) {
        let mut previous = std::mem::take(&mut self.modules);
        self.unwinder = ModuleUnwinder::new();
        self.cache = CacheNative::new_in();
        for image in images {
            let known = previous.iter().position(|(old, _)| {
                old.filename == image.filename && old.load_address == image.load_address
            });
            let module = match known {
                Some(index) => Some(previous.swap_remove(index).1),
                None => module_of(&Image {
                    filename: in_root(self.pid, &image.filename),
                    ..image.clone()
                }),
            };
            if let Some(module) = module {
                self.unwinder.add_module(module.clone());
                self.modules.push((image.clone(), module));
            }
        }
    }

    /// Whether `address` lies in one of the objects.
    pub fn knows(&self, address: u64) -> bool {
        self.modules.iter().any(|(image, _)| {
            image.segments.iter().any(|segment| {
                let start = image.load_address.wrapping_add(segment.vaddr);
                (start..start + segment.memsz).contains(&address)
            })
        })
    }

    /// Appends the return addresses of `stack` to `out`, innermost first,
    /// from the return address of the function the copy was made in (the
    /// allocator itself is not a frame of the allocation, as in memray's
    /// captures). Stops where the copy ends or the unwind fails.
    pub fn unwind(&mut self, stack: CopiedStack<'_>, out: &mut Vec<u64>) {
        let end = stack.sp + stack.bytes.len() as u64;
        let mut read_stack = |address: u64| {
            if address < stack.sp || address + 8 > end {
                return Err(());
            }
            let at = (address - stack.sp) as usize;
            let word = stack.bytes[at..at + 8].try_into().map_err(|_| ())?;
            Ok(u64::from_le_bytes(word))
        };
        let regs = UnwindRegsNative::new(stack.ip, stack.sp, stack.bp);
        let mut frames =
            self.unwinder
                .iter_frames(stack.ip, regs, &mut self.cache, &mut read_stack);
        // The first frame is the allocator's own instruction pointer.
        let _ = frames.next();
        while let Ok(Some(frame)) = frames.next() {
            out.push(frame.address());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::stack_containing;
    use crate::{process_images, refresh_modules, ThreadUnwinder};

    /// The same return addresses from a copy of this thread's stack as from the in-process
    /// unwinder reading the stack itself.
    #[test]
    #[inline(never)]
    fn a_copy_unwinds_as_the_live_stack_does() {
        refresh_modules();
        let mut live = [0u64; 256];
        let start = crate::unwind_start!();
        let depth = ThreadUnwinder::new().unwind_from(start, 1, &mut live);
        let sp = start.sp();
        let stack = stack_containing(sp);
        let length = (stack.end - sp) as usize;
        // SAFETY: this thread's own stack, from its stack pointer up, inside its bounds.
        let bytes = unsafe { std::slice::from_raw_parts(sp as *const u8, length) }.to_vec();
        let mut unwinder = CopiedStackUnwinder::new(std::process::id());
        unwinder.set_images(&process_images(std::process::id()));
        let mut copied = Vec::new();
        let copy = CopiedStack {
            ip: start.ip,
            sp,
            bp: start.regs().bp(),
            bytes: &bytes,
        };
        unwinder.unwind(copy, &mut copied);
        assert!(depth > 3, "{depth} frames");
        assert_eq!(copied, live[..depth]);
    }
}
