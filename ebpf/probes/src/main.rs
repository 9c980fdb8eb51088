//! The eBPF probes: uprobes and uretprobes on libc's allocator functions
//! (`allocators`), the tracepoints that keep the pid set (`processes`),
//! follow programs through exec (`execs`), the Python stack walk
//! (`python_stack`, reading through `memory_windows`), the native stack copy
//! (`native_stack`) and the munmaps it needs (`unmappings`).
#![no_std]
#![no_main]

mod allocators;
mod code_snapshots;
mod execs;
mod memory_windows;
mod native_stack;
mod processes;
mod python_stack;
mod unmappings;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

// The helpers used here are GPL-only.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
