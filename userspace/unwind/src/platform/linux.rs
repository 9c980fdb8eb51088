//! Linux: the loaded objects from `dl_iterate_phdr`, their unwind sections from their ELF
//! files, the thread's stack from the kernel's list of mappings.

use std::ffi::CStr;
use std::io::Read;
use std::ops::Range;
use std::path::Path;

use framehop::ExplicitModuleSectionInfo;
use memray_format::{Image, Segment};

pub use super::elf_file::load_segments;
use super::elf_file::{unwind_sections, Section};
use crate::module_set::Module;

/// Section bytes: a range of our own mapping of the object's file.
pub type SectionData = super::elf_file::MappedSlice;

/// Every loaded object but the vdso, in `dl_iterate_phdr` order: its name (the executable's
/// path for the main program, whose name is empty), load address (`dlpi_addr`) and `PT_LOAD`
/// segments. Allocates: never call it while unwinding.
pub fn loaded_objects() -> Vec<Image> {
    let mut objects = Vec::new();
    // SAFETY: the callback only reads the `dl_phdr_info` it is given, during the call, and
    // `data` is the `&mut Vec` above, alive for the whole iteration.
    unsafe {
        libc::dl_iterate_phdr(Some(collect), (&mut objects as *mut Vec<Image>).cast());
    }
    objects
}

unsafe extern "C" fn collect(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    data: *mut libc::c_void,
) -> libc::c_int {
    // SAFETY: `dl_iterate_phdr` passes a valid info for the duration of the call, and
    // `data` is the vector `loaded_objects` passed.
    let (info, objects) = unsafe { (&*info, &mut *data.cast::<Vec<Image>>()) };
    let name = if info.dlpi_name.is_null() {
        &[][..]
    } else {
        // SAFETY: a non-null `dlpi_name` is a NUL-terminated string owned by the loader.
        unsafe { CStr::from_ptr(info.dlpi_name) }.to_bytes()
    };
    // memray skips the vdso: it has no file to symbolize from.
    if name.starts_with(b"linux-vdso") || name.starts_with(b"linux-gate") {
        return 0;
    }
    let filename = if name.is_empty() {
        match std::env::current_exe() {
            Ok(path) => path.to_string_lossy().into_owned(),
            Err(_) => return 0,
        }
    } else {
        String::from_utf8_lossy(name).into_owned()
    };
    let headers: &[libc::Elf64_Phdr] = if info.dlpi_phdr.is_null() {
        &[]
    } else {
        // SAFETY: the loader's program headers: `dlpi_phnum` entries at `dlpi_phdr`.
        unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) }
    };
    let segments = headers
        .iter()
        .filter(|header| header.p_type == libc::PT_LOAD)
        .map(|header| Segment {
            vaddr: header.p_vaddr,
            memsz: header.p_memsz,
        })
        .collect();
    objects.push(Image {
        filename,
        load_address: info.dlpi_addr,
        segments,
    });
    0
}

/// The framehop module of an object: the span of its segments, with the unwind sections of
/// its file. An object whose file cannot be read still gets a module (frame pointers are used
/// there); one without segments gets none.
pub fn module_of(object: &Image) -> Option<Module> {
    let segments = object.segments.iter();
    let start = segments.clone().map(|segment| segment.vaddr).min()?;
    let end = segments
        .map(|segment| segment.vaddr + segment.memsz)
        .max()?;
    let sections = unwind_sections(Path::new(&object.filename)).unwrap_or_default();
    let split = |section: Option<Section>| match section {
        Some(section) => (Some(section.svma), Some(section.data)),
        None => (None, None),
    };
    let (text_svma, text) = split(sections.text);
    let (eh_frame_svma, eh_frame) = split(sections.eh_frame);
    let (eh_frame_hdr_svma, eh_frame_hdr) = split(sections.eh_frame_hdr);
    let info = ExplicitModuleSectionInfo {
        base_svma: 0,
        text_svma,
        text,
        got_svma: sections.got,
        eh_frame_svma,
        eh_frame,
        eh_frame_hdr_svma,
        eh_frame_hdr,
        stubs_svma: None,
        stub_helper_svma: None,
        unwind_info: None,
        debug_frame: None,
        text_segment_svma: None,
        text_segment: None,
    };
    Some(Module::new(
        object.filename.clone(),
        object.load_address + start..object.load_address + end,
        object.load_address,
        info,
    ))
}

/// The mapping that holds `sp` (the calling thread's stack, or whatever stack it runs on),
/// from `/proc/self/maps`; empty if none does. Allocates nothing (the path fits std's stack
/// buffer; the file is read into a local one) and takes no lock of the C library: glibc's
/// `pthread_getattr_np` allocates while it holds the thread's own lock, so asking it from an
/// allocation hook deadlocks when that allocation is its own (CPython 3.14 calls it at the
/// start of every thread).
pub fn stack_containing(sp: u64) -> Range<u64> {
    let Ok(mut maps) = std::fs::File::open("/proc/self/maps") else {
        return 0..0;
    };
    let mut buffer = [0u8; 4096];
    let mut line = MapsLine::default();
    loop {
        let read = match maps.read(&mut buffer) {
            Ok(0) | Err(_) => return 0..0,
            Ok(read) => read,
        };
        for &byte in &buffer[..read] {
            if let Some(range) = line.feed(byte) {
                if range.contains(&sp) {
                    return range;
                }
            }
        }
    }
}

/// The `start-end` address range that begins each line of `/proc/self/maps`, read a byte at
/// a time. Not `python_frames::maps`: that one takes whole lines of UTF-8 text and yields
/// file mappings only, while this needs every mapping (a thread's stack is anonymous) and
/// sees the file in fixed chunks that cut lines anywhere, a line's path being up to
/// `PATH_MAX` bytes of any encoding; holding whole lines would take a stack buffer past
/// PATH_MAX, and a copy, in an allocation hook, for two hex numbers.
#[derive(Default)]
struct MapsLine {
    start: u64,
    end: u64,
    /// 0: in `start`, 1: in `end`, 2: past them.
    field: u8,
}

impl MapsLine {
    /// Takes the next byte; the line's range once it is complete.
    fn feed(&mut self, byte: u8) -> Option<Range<u64>> {
        let digit = (byte as char).to_digit(16).map(u64::from);
        match (self.field, byte, digit) {
            (_, b'\n', _) => *self = Self::default(),
            (0, b'-', _) => self.field = 1,
            (1, b' ', _) => {
                self.field = 2;
                return Some(self.start..self.end);
            }
            (0, _, Some(digit)) => self.start = self.start << 4 | digit,
            (1, _, Some(digit)) => self.end = self.end << 4 | digit,
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stack_mapping_holds_this_frame_on_every_thread() {
        let here = || {
            let local = 0u8;
            let address = std::ptr::addr_of!(local) as u64;
            let stack = stack_containing(address);
            assert!(stack.contains(&address), "{address:#x} outside {stack:x?}");
            assert!(stack.end - stack.start >= 16 * 1024, "{stack:x?}");
        };
        here();
        std::thread::spawn(here).join().unwrap();
        assert_eq!(stack_containing(8), 0..0, "nothing is mapped at 8");
    }
}
