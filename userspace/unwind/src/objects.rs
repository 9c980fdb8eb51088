//! The loaded objects of this process, as memray records them in its memory maps.

use std::ffi::{CStr, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// One `PT_LOAD` program header of a loaded object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// `p_vaddr`, relative to the object's load address.
    pub vaddr: u64,
    /// `p_memsz`.
    pub memsz: u64,
    /// Whether the segment is executable (`PF_X`); memray does not record this.
    pub executable: bool,
}

/// A loaded object: one SEGMENT_HEADER and its SEGMENT records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedObject {
    /// `dlpi_name`, or the executable's path for the main program (whose name is empty).
    pub path: PathBuf,
    /// `dlpi_addr`: the difference between run-time and file addresses.
    pub load_address: u64,
    /// The `PT_LOAD` segments, in program-header order.
    pub segments: Vec<Segment>,
}

/// Every loaded object but the vdso, in `dl_iterate_phdr` order. Allocates: never call it
/// while unwinding.
pub fn loaded_objects() -> Vec<LoadedObject> {
    let mut objects = Vec::new();
    // SAFETY: the callback only reads the `dl_phdr_info` it is given, during the call, and
    // `data` is the `&mut Vec` above, alive for the whole iteration.
    unsafe {
        libc::dl_iterate_phdr(
            Some(collect),
            (&mut objects as *mut Vec<LoadedObject>).cast(),
        );
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
    let (info, objects) = unsafe { (&*info, &mut *data.cast::<Vec<LoadedObject>>()) };
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
    let path = if name.is_empty() {
        match std::env::current_exe() {
            Ok(path) => path,
            Err(_) => return 0,
        }
    } else {
        PathBuf::from(OsStr::from_bytes(name))
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
            executable: header.p_flags & libc::PF_X != 0,
        })
        .collect();
    objects.push(LoadedObject {
        path,
        load_address: info.dlpi_addr,
        segments,
    });
    0
}
