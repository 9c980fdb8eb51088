//! The registers an unwind starts from, read where the macro is expanded (a macro, not a
//! function, so that they are certainly the expanding function's own).

/// `(ip, regs)`: an instruction pointer inside the expanding function, and its registers as
/// `framehop::UnwindRegsNative`. Touches no memory and leaves the stack as it is.
#[cfg(target_arch = "x86_64")]
macro_rules! registers_here {
    () => {{
        let (ip, sp, bp): (u64, u64, u64);
        // SAFETY: reads the instruction pointer, stack pointer and frame pointer into
        // registers; touches no memory.
        unsafe {
            std::arch::asm!(
                "lea {ip}, [rip]",
                "mov {sp}, rsp",
                "mov {bp}, rbp",
                ip = out(reg) ip,
                sp = out(reg) sp,
                bp = out(reg) bp,
                options(nomem, nostack, preserves_flags),
            );
        }
        (ip, framehop::UnwindRegsNative::new(ip, sp, bp))
    }};
}

/// `(ip, regs)`: an instruction pointer inside the expanding function, and its registers as
/// `framehop::UnwindRegsNative`. Touches no memory and leaves the stack as it is.
#[cfg(target_arch = "aarch64")]
macro_rules! registers_here {
    () => {{
        let (ip, sp, fp, lr): (u64, u64, u64, u64);
        // SAFETY: reads the program counter, stack pointer, frame pointer and link register
        // into registers; touches no memory.
        unsafe {
            std::arch::asm!(
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
        // Return addresses signed by pointer authentication (arm64e system libraries) lose
        // their signature bits: user-space code lies below 2^40 on macOS.
        let mask = framehop::aarch64::PtrAuthMask::new_24_40();
        (
            ip,
            framehop::UnwindRegsNative::new_with_ptr_auth_mask(mask, lr, sp, fp),
        )
    }};
}

pub(crate) use registers_here;
