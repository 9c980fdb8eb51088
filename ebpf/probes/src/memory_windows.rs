//! The profiled process's memory as the stack walk reads it: through a few
//! windows of `WINDOW_BYTES`, each filled by one `bpf_probe_read_user`.
//!
//! The fields the walk reads of a frame, of a code object or of its line
//! table lie within a few hundred bytes of the first one read, and a
//! `bpf_probe_read_user` call costs far more than the bytes it copies (about
//! 30 ns on the project's machines, where a frame read field by field took
//! 14 calls). A window is read inside the page of the address asked for, so
//! it is readable whenever that address is; a word that crosses into the
//! next page is read directly. The windows hold one walk's reads: `reset`
//! empties them when a walk starts (another thread, maybe another process).

use aya_ebpf::{
    helpers::{bpf_probe_read_user_buf, generated::bpf_probe_read_user},
    macros::map,
    maps::PerCpuArray,
};
use python_frames_core::Memory;

const WINDOW_BYTES: usize = 256;
const WINDOW_WORDS: usize = WINDOW_BYTES / 8;
/// A power of two: the next window to fill is masked, not compared.
const WINDOWS: usize = 4;
const PAGE_BYTES: u64 = 4096;
/// A window starts at least this far below the address asked for, on a
/// 64-byte boundary: the walk reads a frame's fields a little below the
/// first one it reads too.
const WINDOW_LEAD: u64 = 32;
const WINDOW_ALIGN: u64 = 64;

/// `WINDOW_BYTES` of the process from `start`, a multiple of 8, as words.
#[repr(C)]
struct Window {
    /// 0: empty.
    start: u64,
    words: [u64; WINDOW_WORDS],
}

impl Window {
    /// The `len` (1 to 8) bytes at `addr`, little-endian, if the window holds them.
    #[inline(always)]
    fn word(&self, addr: u64, len: u64) -> Option<u64> {
        let offset = addr.wrapping_sub(self.start);
        if self.start == 0 || offset > WINDOW_BYTES as u64 - len {
            return None;
        }
        let index = (offset / 8) as usize;
        let shift = (offset % 8) * 8;
        let mut word = self.words[index & (WINDOW_WORDS - 1)] >> shift;
        if shift + len * 8 > 64 {
            word |= self.words[(index + 1) & (WINDOW_WORDS - 1)] << (64 - shift);
        }
        Some(match len {
            8 => word,
            _ => word & ((1 << (len * 8)) - 1),
        })
    }
}

#[repr(C)]
struct Windows {
    /// The window the next miss fills (round robin).
    next: u64,
    windows: [Window; WINDOWS],
}

#[map]
static MEMORY_WINDOWS: PerCpuArray<Windows> = PerCpuArray::with_max_entries(1, 0);

/// Empties this CPU's windows before a walk.
#[inline(always)]
pub fn reset() {
    if let Some(windows) = MEMORY_WINDOWS.get_ptr_mut(0) {
        // SAFETY: this CPU's windows; a probe runs to its end on its CPU.
        let windows = unsafe { &mut *windows };
        for window in &mut windows.windows {
            window.start = 0;
        }
    }
}

/// The profiled process's memory, read through this CPU's windows.
pub struct WindowedMemory;

impl Memory for WindowedMemory {
    #[inline(always)]
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        if buf.len() > 8 {
            return read_directly(addr, buf);
        }
        let Some(word) = read_word(addr, buf.len() as u64) else {
            return false;
        };
        // Whole words and the frame core's fixed sizes are copied inline;
        // only a rare short tail (a line table's last word) takes the
        // compiler's byte-by-byte memcpy.
        let bytes = word.to_le_bytes();
        match buf.len() {
            8 => buf.copy_from_slice(&bytes),
            4 => buf.copy_from_slice(&bytes[..4]),
            1 => buf[0] = bytes[0],
            len => buf.copy_from_slice(&bytes[..len]),
        }
        true
    }
}

#[inline(always)]
fn read_directly(addr: u64, buf: &mut [u8]) -> bool {
    // SAFETY: bpf_probe_read_user checks the source and fails cleanly on
    // unmapped memory; `buf` is a live exclusive buffer.
    unsafe { bpf_probe_read_user_buf(addr as *const u8, buf) }.is_ok()
}

/// The `len` (1 to 8) bytes at `addr`, little-endian in a word.
#[inline(always)]
fn read_word(addr: u64, len: u64) -> Option<u64> {
    let mut word = 0;
    (memray_read_word(addr, len, &mut word) == 0).then_some(word)
}

/// [`read_word`]'s work, into `word`: 0 if it could. A global BPF function:
/// the verifier checks it once, for any arguments, where a static one is
/// checked again at each of the walk's many reads (20 times the time at
/// every start: 424 ms against 22 ms for the walk on a 2-core AMD EPYC).
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn memray_read_word(addr: u64, len: u64, word: *mut u64) -> i64 {
    let Some(windows) = MEMORY_WINDOWS.get_ptr_mut(0) else {
        return -1;
    };
    if word.is_null() {
        return -1;
    }
    // SAFETY: this CPU's windows; a probe runs to its end on its CPU.
    let windows = unsafe { &mut *windows };
    // Checked for any `len`: bounded here, not by the callers' constants.
    let len = len & 15;
    if len == 0 || len > 8 {
        return -1;
    }
    match find_word(windows, addr, len) {
        Some(found) => {
            // SAFETY: the caller's word, checked not null (the verifier
            // checks every caller passes 8 writable bytes or null).
            unsafe { *word = found };
            0
        }
        None => -1,
    }
}

/// The word from the window that holds it; else read directly if it
/// crosses a page's end, or through the next window filled around it.
#[inline(always)]
fn find_word(windows: &mut Windows, addr: u64, len: u64) -> Option<u64> {
    for window in &windows.windows {
        if let Some(word) = window.word(addr, len) {
            return Some(word);
        }
    }
    let page = addr & !(PAGE_BYTES - 1);
    if addr.wrapping_add(len) > page + PAGE_BYTES {
        let mut word = [0u8; 8];
        return read_directly(addr, &mut word[..(len as usize).min(8)])
            .then(|| u64::from_le_bytes(word));
    }
    fill(windows, addr, page)?.word(addr, len)
}

/// Reads the window around `addr` (in `page`) into the next slot.
#[inline(always)]
fn fill(windows: &mut Windows, addr: u64, page: u64) -> Option<&Window> {
    let wanted = addr.saturating_sub(WINDOW_LEAD) & !(WINDOW_ALIGN - 1);
    let start = wanted.clamp(page, page + PAGE_BYTES - WINDOW_BYTES as u64);
    let index = (windows.next as usize) & (WINDOWS - 1);
    windows.next = windows.next.wrapping_add(1);
    let window = &mut windows.windows[index];
    window.start = 0;
    // SAFETY: bpf_probe_read_user checks the source and fails cleanly on
    // unmapped memory; the destination is the window's own words.
    let read = unsafe {
        bpf_probe_read_user(
            window.words.as_mut_ptr().cast(),
            WINDOW_BYTES as u32,
            start as *const _,
        )
    };
    if read != 0 {
        return None;
    }
    window.start = start;
    Some(window)
}
