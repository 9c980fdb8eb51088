//! The loaded objects of this process, as memray records them in its memory maps.

use std::ffi::CStr;

use memray_format::{Image, Segment};

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
