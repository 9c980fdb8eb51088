//! Where an unwind starts: the registers of a frame that is still live when the unwind
//! runs. [`unwind_start!`](crate::unwind_start) reads them where it is expanded (a macro,
//! not a function, so that they are certainly the expanding function's own); a hook that
//! expands it itself spares the unwinder the frames between it and the unwind.

use framehop::UnwindRegsNative;

/// The registers an unwind starts from, as read (framehop's register set, larger, is only
/// built when an unwind runs: the hooks take a start at every allocation).
#[derive(Clone, Copy)]
pub struct UnwindStart {
    pub(crate) ip: u64,
    sp: u64,
    /// The frame pointer.
    fp: u64,
    #[cfg(target_arch = "aarch64")]
    lr: u64,
}

impl UnwindStart {
    /// For [`unwind_start!`](crate::unwind_start) only.
    #[doc(hidden)]
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    pub fn from_registers(ip: u64, sp: u64, bp: u64) -> UnwindStart {
        UnwindStart { ip, sp, fp: bp }
    }

    /// For [`unwind_start!`](crate::unwind_start) only.
    #[doc(hidden)]
    #[cfg(target_arch = "aarch64")]
    #[inline(always)]
    pub fn from_registers(ip: u64, sp: u64, fp: u64, lr: u64) -> UnwindStart {
        UnwindStart { ip, sp, fp, lr }
    }

    #[cfg(target_arch = "x86_64")]
    pub(crate) fn regs(&self) -> UnwindRegsNative {
        UnwindRegsNative::new(self.ip, self.sp, self.fp)
    }

    /// Return addresses signed by pointer authentication (arm64e system libraries) lose
    /// their signature bits: user-space code lies below 2^40 on macOS.
    #[cfg(target_arch = "aarch64")]
    pub(crate) fn regs(&self) -> UnwindRegsNative {
        let mask = framehop::aarch64::PtrAuthMask::new_24_40();
        UnwindRegsNative::new_with_ptr_auth_mask(mask, self.lr, self.sp, self.fp)
    }

    pub(crate) fn sp(&self) -> u64 {
        self.sp
    }
}

/// What of the registers framehop's step from one frame to the next depends on, besides the
/// frame's address and the stack's words: the stack and frame pointers on x86_64, and the
/// link register too on arm64 (the other registers are only ever set by rules of Windows
/// modules, which are never added). The stack pointer comes first.
#[cfg(target_arch = "x86_64")]
pub(crate) type RegisterState = [u64; 2];

#[cfg(target_arch = "x86_64")]
pub(crate) fn register_state(regs: &UnwindRegsNative) -> RegisterState {
    [regs.sp(), regs.bp()]
}

#[cfg(target_arch = "aarch64")]
pub(crate) type RegisterState = [u64; 3];

#[cfg(target_arch = "aarch64")]
pub(crate) fn register_state(regs: &UnwindRegsNative) -> RegisterState {
    [regs.sp(), regs.fp(), regs.lr()]
}

/// An [`UnwindStart`] in the expanding function. Touches no memory and leaves the stack
/// as it is.
#[cfg(target_arch = "x86_64")]
#[macro_export]
macro_rules! unwind_start {
    () => {{
        let (ip, sp, bp): (u64, u64, u64);
        // SAFETY: reads the instruction pointer, stack pointer and frame pointer into
        // registers; touches no memory.
        unsafe {
            ::core::arch::asm!(
                "lea {ip}, [rip]",
                "mov {sp}, rsp",
                "mov {bp}, rbp",
                ip = out(reg) ip,
                sp = out(reg) sp,
                bp = out(reg) bp,
                options(nomem, nostack, preserves_flags),
            );
        }
        $crate::UnwindStart::from_registers(ip, sp, bp)
    }};
}

/// An [`UnwindStart`] in the expanding function. Touches no memory and leaves the stack
/// as it is.
#[cfg(target_arch = "aarch64")]
#[macro_export]
macro_rules! unwind_start {
    () => {{
        let (ip, sp, fp, lr): (u64, u64, u64, u64);
        // SAFETY: reads the program counter, stack pointer, frame pointer and link register
        // into registers; touches no memory.
        unsafe {
            ::core::arch::asm!(
                "adr {ip}, .",
                "mov {sp}, sp",
                "mov {fp}, x29",
                "mov {lr}, x30",
                ip = out(reg) ip,
                sp = out(reg) sp,
                fp = out(reg) fp,
                lr = out(reg) lr,
                options(nomem, nostack, preserves_flags),
            );
        }
        $crate::UnwindStart::from_registers(ip, sp, fp, lr)
    }};
}
