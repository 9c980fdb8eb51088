//! The eBPF probes: uprobes and uretprobes on libc's allocator functions
//! (`allocators`), the tracepoints that keep the pid set (`processes`) and
//! the interpreters' layouts for the stack walk (`python`).
#![no_std]
#![no_main]

mod allocators;
mod processes;
mod python;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

// The helpers used here are GPL-only.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
