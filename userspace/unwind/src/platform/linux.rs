//! Linux: the loaded objects from `dl_iterate_phdr`, their unwind sections from their ELF
//! files, the thread's stack from glibc.

use std::ffi::CStr;
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

/// The calling thread's stack, from `pthread_getattr_np`; empty if glibc cannot tell (then
/// no frame is read from the stack).
pub fn current_thread_stack() -> Range<u64> {
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
