//! macOS: the loaded images from dyld, their unwind sections (`__unwind_info`, `__eh_frame`)
//! copied from the images in memory (system libraries exist only in the dyld shared cache,
//! not as files), the thread's stack from `pthread_get_stack*_np`.

use std::ffi::CStr;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use framehop::ExplicitModuleSectionInfo;
use mach2::dyld::{
    _dyld_get_image_header, _dyld_get_image_name, _dyld_get_image_vmaddr_slide, _dyld_image_count,
};
use memray_format::{Image, Segment};

use super::macho::{file_load_commands, header_and_commands_len, load_commands, LoadCommands};
use crate::module_set::Module;

/// Section bytes: a copy taken when the module set is built, so that an image unloaded
/// while another thread still unwinds with the old set is never read.
pub type SectionData = Arc<[u8]>;

/// Every loaded image, in dyld's order (the executable first): its path, slide and
/// segments (all but `__PAGEZERO`, `__TEXT` first). Allocates: never call it while
/// unwinding.
pub fn loaded_objects() -> Vec<Image> {
    // SAFETY: no preconditions.
    let count = unsafe { _dyld_image_count() };
    (0..count).filter_map(image).collect()
}

fn image(index: u32) -> Option<Image> {
    // SAFETY: dyld's tables for an index below the count; an image unloaded meanwhile
    // gives nulls, which are checked.
    let (header, name, slide) = unsafe {
        (
            _dyld_get_image_header(index),
            _dyld_get_image_name(index),
            _dyld_get_image_vmaddr_slide(index),
        )
    };
    if header.is_null() || name.is_null() {
        return None;
    }
    // SAFETY: dyld's NUL-terminated path of a loaded image.
    let filename = unsafe { CStr::from_ptr(name) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: the header and load commands of a loaded image are mapped (in `__TEXT`).
    let commands = unsafe { commands_in_memory(header as u64)? };
    Some(Image {
        filename,
        load_address: slide as u64,
        segments: segments(&commands),
    })
}

/// # Safety
/// `header` is the address of a loaded image's Mach-O header.
unsafe fn commands_in_memory(header: u64) -> Option<LoadCommands> {
    // SAFETY: per the contract, the 32-byte header is mapped.
    let head = unsafe { std::slice::from_raw_parts(header as *const u8, 32) };
    let len = header_and_commands_len(head)?;
    // SAFETY: per the contract, the load commands follow the header in the same mapping.
    load_commands(unsafe { std::slice::from_raw_parts(header as *const u8, len) })
}

fn segments(commands: &LoadCommands) -> Vec<Segment> {
    commands
        .segments
        .iter()
        .filter(|segment| super::macho::trimmed(&segment.name) != b"__PAGEZERO")
        .map(|segment| Segment {
            vaddr: segment.vmaddr,
            memsz: segment.vmsize,
        })
        .collect()
}

/// The framehop module of an image: its `__TEXT` segment (segments of images in the
/// shared cache interleave, so only `__TEXT` is the image's own span), with copies of its
/// compact unwind and DWARF sections.
pub fn module_of(object: &Image) -> Option<Module> {
    let text = object.segments.first()?;
    let header = object.load_address.wrapping_add(text.vaddr);
    // SAFETY: `loaded_objects` listed this image as loaded just now.
    let commands = unsafe { commands_in_memory(header)? };
    let copy = |range: &Option<Range<u64>>| {
        let range = range.as_ref()?;
        let start = object.load_address.wrapping_add(range.start);
        // SAFETY: a section of `__TEXT` of a loaded image, mapped and read-only.
        let bytes = unsafe {
            std::slice::from_raw_parts(start as *const u8, (range.end - range.start) as usize)
        };
        Some(SectionData::from(bytes))
    };
    let unwind_info_svma = commands.section("__TEXT", "__unwind_info");
    let eh_frame_svma = commands.section("__TEXT", "__eh_frame");
    let info = ExplicitModuleSectionInfo {
        base_svma: text.vaddr,
        text_svma: commands.section("__TEXT", "__text"),
        text: None,
        stubs_svma: commands.section("__TEXT", "__stubs"),
        stub_helper_svma: commands.section("__TEXT", "__stub_helper"),
        got_svma: commands
            .section("__DATA_CONST", "__got")
            .or_else(|| commands.section("__DATA", "__got")),
        unwind_info: copy(&unwind_info_svma),
        eh_frame: copy(&eh_frame_svma),
        eh_frame_svma,
        eh_frame_hdr_svma: None,
        eh_frame_hdr: None,
        debug_frame: None,
        text_segment_svma: Some(text.vaddr..text.vaddr + text.memsz),
        text_segment: None,
    };
    Some(Module::new(
        object.filename.clone(),
        header..header + text.memsz,
        header,
        info,
    ))
}

/// The segments of a Mach-O file, as `loaded_objects` lists them for its image.
pub fn load_segments(path: &Path) -> Option<Vec<Segment>> {
    Some(segments(&file_load_commands(path)?))
}

/// The calling thread's stack, from the thread's own record (`sp` is not needed here).
pub fn stack_containing(_sp: u64) -> Range<u64> {
    // SAFETY: queries about the calling thread, which is alive.
    let (top, size) = unsafe {
        let thread = libc::pthread_self();
        (
            libc::pthread_get_stackaddr_np(thread) as u64,
            libc::pthread_get_stacksize_np(thread) as u64,
        )
    };
    top.saturating_sub(size)..top
}
