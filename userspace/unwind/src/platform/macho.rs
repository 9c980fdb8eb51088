//! The load commands of a 64-bit Mach-O image: its segments and sections, read from the
//! image in memory or from its file (the slice of a universal file for this architecture).

use std::path::Path;

const MH_MAGIC_64: u32 = 0xfeed_facf;
const FAT_MAGIC: u32 = 0xcafe_babe;
const LC_SEGMENT_64: u32 = 0x19;
const HEADER_SIZE: usize = 32;
const SEGMENT_SIZE: usize = 72;
const SECTION_SIZE: usize = 80;
/// `CPU_TYPE_ARM64` or `CPU_TYPE_X86_64`.
const THIS_CPU: u32 = if cfg!(target_arch = "aarch64") {
    0x0100_000c
} else {
    0x0100_0007
};

pub struct MachSegment {
    pub name: [u8; 16],
    pub vmaddr: u64,
    pub vmsize: u64,
}

pub struct MachSection {
    pub segment: [u8; 16],
    pub name: [u8; 16],
    pub addr: u64,
    pub size: u64,
}

/// Segments and sections in load-command order.
#[derive(Default)]
pub struct LoadCommands {
    pub segments: Vec<MachSegment>,
    pub sections: Vec<MachSection>,
}

impl LoadCommands {
    /// The address range of section `segment,name`.
    pub fn section(&self, segment: &str, name: &str) -> Option<std::ops::Range<u64>> {
        self.sections
            .iter()
            .find(|s| {
                trimmed(&s.segment) == segment.as_bytes() && trimmed(&s.name) == name.as_bytes()
            })
            .map(|s| s.addr..s.addr + s.size)
    }
}

/// A fixed-size Mach-O name without its NUL padding.
pub fn trimmed(name: &[u8; 16]) -> &[u8] {
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    &name[..end]
}

/// The bytes the header and load commands of the image starting at `header` take, from
/// its first 32 bytes (`None` if they are not a 64-bit Mach-O header).
pub fn header_and_commands_len(header: &[u8]) -> Option<usize> {
    (read_u32(header, 0)? == MH_MAGIC_64).then_some(())?;
    Some(HEADER_SIZE + read_u32(header, 20)? as usize)
}

/// Parses the load commands of the image whose header starts `bytes`.
pub fn load_commands(bytes: &[u8]) -> Option<LoadCommands> {
    let end = header_and_commands_len(bytes)?;
    let count = read_u32(bytes, 16)?;
    let mut commands = LoadCommands::default();
    let mut at = HEADER_SIZE;
    for _ in 0..count {
        let command = read_u32(bytes, at)?;
        let size = read_u32(bytes, at + 4)? as usize;
        if size < 8 || at + size > end {
            return None;
        }
        if command == LC_SEGMENT_64 {
            let segment = bytes.get(at..at + size)?;
            commands.segments.push(MachSegment {
                name: name_at(segment, 8)?,
                vmaddr: read_u64(segment, 24)?,
                vmsize: read_u64(segment, 32)?,
            });
            for index in 0..read_u32(segment, 64)? as usize {
                let section = segment.get(SEGMENT_SIZE + index * SECTION_SIZE..)?;
                commands.sections.push(MachSection {
                    name: name_at(section, 0)?,
                    segment: name_at(section, 16)?,
                    addr: read_u64(section, 32)?,
                    size: read_u64(section, 40)?,
                });
            }
        }
        at += size;
    }
    Some(commands)
}

/// The load commands of a Mach-O file (this architecture's slice of a universal one).
pub fn file_load_commands(path: &Path) -> Option<LoadCommands> {
    let bytes = std::fs::read(path).ok()?;
    let image = if u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) == FAT_MAGIC {
        let count = u32::from_be_bytes(bytes.get(4..8)?.try_into().ok()?) as usize;
        (0..count).find_map(|index| {
            let arch = bytes.get(8 + index * 20..8 + index * 20 + 20)?;
            let field =
                |at: usize| Some(u32::from_be_bytes(arch.get(at..at + 4)?.try_into().ok()?));
            (field(0)? == THIS_CPU).then_some(())?;
            let offset = field(8)? as usize;
            bytes.get(offset..offset + field(12)? as usize)
        })?
    } else {
        &bytes[..]
    };
    load_commands(image)
}

fn name_at(bytes: &[u8], at: usize) -> Option<[u8; 16]> {
    bytes.get(at..at + 16)?.try_into().ok()
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}
