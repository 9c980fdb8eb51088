//! The unwind sections of an ELF file, read from our own read-only mapping of the file (not
//! the loader's, which `dlclose` may unmap while another thread still holds the old module
//! set).

use std::ops::{Deref, Range};
use std::path::Path;
use std::sync::Arc;

use python_frames::{map_file, Mmap};

use memray_format::Segment;

/// A byte range of a mapped file, kept mapped as long as a module refers to it.
#[derive(Clone)]
pub struct MappedSlice {
    map: Arc<Mmap>,
    range: Range<usize>,
}

impl Deref for MappedSlice {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.map[self.range.clone()]
    }
}

/// A section: its address as stated in the file, and its bytes.
pub struct Section {
    pub svma: Range<u64>,
    pub data: MappedSlice,
}

/// The sections framehop needs, those the file has.
#[derive(Default)]
pub struct UnwindSections {
    pub text: Option<Section>,
    pub eh_frame: Option<Section>,
    pub eh_frame_hdr: Option<Section>,
    pub got: Option<Range<u64>>,
}

/// Maps a 64-bit little-endian ELF file; `None` if it cannot be read or is not one.
fn map_elf(path: &Path) -> Option<Arc<Mmap>> {
    let map = map_file(path).ok()?;
    (map.get(..6)? == b"\x7fELF\x02\x01").then(|| Arc::new(map))
}

/// The `PT_LOAD` segments of an ELF file, as its program headers state them: what the
/// loader maps, so what a capture recorded if the file is unchanged.
pub fn load_segments(path: &Path) -> Option<Vec<Segment>> {
    let loads = program_loads(path)?;
    Some(loads.into_iter().map(|(segment, _)| segment).collect())
}

/// The `PT_LOAD` segments of an ELF file with the file offset each starts at.
pub fn program_loads(path: &Path) -> Option<Vec<(Segment, u64)>> {
    let map = map_elf(path)?;
    let bytes = &map[..];
    let headers = read_u64(bytes, 0x20)? as usize;
    let entry_size = usize::from(read_u16(bytes, 0x36)?);
    let count = usize::from(read_u16(bytes, 0x38)?);
    let mut segments = Vec::new();
    for index in 0..count {
        let header = bytes.get(headers + index * entry_size..)?.get(..56)?;
        if read_u32(header, 0)? == libc::PT_LOAD {
            let segment = Segment {
                vaddr: read_u64(header, 16)?,
                memsz: read_u64(header, 40)?,
            };
            segments.push((segment, read_u64(header, 8)?));
        }
    }
    Some(segments)
}

/// Maps `path` and finds its unwind sections; `None` when the file cannot be read or is not
/// a 64-bit little-endian ELF file with section headers.
pub fn unwind_sections(path: &Path) -> Option<UnwindSections> {
    let map = map_elf(path)?;
    let bytes = &map[..];
    let section_headers = read_u64(bytes, 0x28)? as usize;
    let entry_size = usize::from(read_u16(bytes, 0x3a)?);
    let count = usize::from(read_u16(bytes, 0x3c)?);
    let names_index = usize::from(read_u16(bytes, 0x3e)?);
    if entry_size < 64 {
        return None;
    }
    let header = |index: usize| bytes.get(section_headers + index * entry_size..)?.get(..64);
    let names_offset = read_u64(header(names_index)?, 24)? as usize;
    let mut sections = UnwindSections::default();
    for index in 0..count {
        let header = header(index)?;
        let name_offset = names_offset + read_u32(header, 0)? as usize;
        let name = bytes.get(name_offset..)?;
        let name = &name[..name.iter().position(|&b| b == 0)?];
        let kind = read_u32(header, 4)?;
        let address = read_u64(header, 16)?;
        let offset = read_u64(header, 24)? as usize;
        let size = read_u64(header, 32)?;
        let svma = address..address + size;
        let section = || {
            const SHT_NOBITS: u32 = 8;
            let end = offset.checked_add(size as usize)?;
            (kind != SHT_NOBITS && end <= bytes.len()).then(|| Section {
                svma: svma.clone(),
                data: MappedSlice {
                    map: map.clone(),
                    range: offset..end,
                },
            })
        };
        match name {
            b".text" => sections.text = section(),
            b".eh_frame" => sections.eh_frame = section(),
            b".eh_frame_hdr" => sections.eh_frame_hdr = section(),
            b".got" => sections.got = Some(svma),
            _ => {}
        }
    }
    Some(sections)
}

fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}
