//! The file header (docs/memray-format.md §4), for versions 11, 12 and 13.

use crate::encoding::{put_cstr, Cursor, DecodeError, FieldReader};
use crate::error::FormatError;

pub const MAGIC: &[u8; 7] = b"memray\0";
/// The version this crate writes (memray 1.20).
pub const CURRENT_VERSION: i32 = 13;
/// The versions this crate reads.
pub const READABLE_VERSIONS: [i32; 3] = [11, 12, 13];

/// `ALL_ALLOCATIONS` (a record stream) or `AGGREGATED_ALLOCATIONS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    AllAllocations = 0,
    AggregatedAllocations = 1,
}

impl FileFormat {
    pub fn name(self) -> &'static str {
        match self {
            FileFormat::AllAllocations => "ALL_ALLOCATIONS",
            FileFormat::AggregatedAllocations => "AGGREGATED_ALLOCATIONS",
        }
    }
}

/// The interpreter's allocator (`PythonAllocatorType`), stored as one byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PythonAllocator {
    Pymalloc = 1,
    PymallocDebug = 2,
    Malloc = 3,
    Other = 4,
    Mimalloc = 5,
    MimallocDebug = 6,
}

impl PythonAllocator {
    pub fn from_id(id: u8) -> Option<PythonAllocator> {
        Some(match id {
            1 => PythonAllocator::Pymalloc,
            2 => PythonAllocator::PymallocDebug,
            3 => PythonAllocator::Malloc,
            4 => PythonAllocator::Other,
            5 => PythonAllocator::Mimalloc,
            6 => PythonAllocator::MimallocDebug,
            _ => return None,
        })
    }

    /// From `sys._xoptions`-style names (`_PyMem_GetCurrentAllocatorName()`).
    pub fn from_name(name: &str) -> PythonAllocator {
        match name {
            "pymalloc" => PythonAllocator::Pymalloc,
            "pymalloc_debug" => PythonAllocator::PymallocDebug,
            "malloc" => PythonAllocator::Malloc,
            "mimalloc" => PythonAllocator::Mimalloc,
            "mimalloc_debug" => PythonAllocator::MimallocDebug,
            _ => PythonAllocator::Other,
        }
    }

    /// The name `FileReader.metadata.python_allocator` reports.
    pub fn name(self) -> &'static str {
        match self {
            PythonAllocator::Pymalloc => "pymalloc",
            PythonAllocator::PymallocDebug => "pymalloc debug",
            PythonAllocator::Malloc => "malloc",
            PythonAllocator::Other => "unknown",
            PythonAllocator::Mimalloc => "mimalloc",
            PythonAllocator::MimallocDebug => "mimalloc debug",
        }
    }
}

/// `TrackerStats`: 32 raw bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackerStats {
    /// ALLOCATION records, frees included; 0 in aggregated and killed captures.
    pub n_allocations: u64,
    pub n_frames: u64,
    pub start_time_ms: i64,
    pub end_time_ms: i64,
}

/// Everything in a header. Writers fill it (the version, format and stats
/// are set by the writer itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub version: i32,
    /// `PY_VERSION_HEX`; only major/minor matter. 0 in v11 files.
    pub python_version: u32,
    pub native_traces: bool,
    pub file_format: FileFormat,
    pub stats: TrackerStats,
    pub command_line: String,
    pub pid: i32,
    pub main_tid: u64,
    pub skipped_frames_on_main_tid: u64,
    /// Raw `PythonAllocatorType` byte (see [`PythonAllocator::from_id`]).
    pub python_allocator: u8,
    pub trace_python_allocators: bool,
    pub track_object_lifetimes: bool,
    pub libdest: String,
    pub site_packages: Vec<String>,
    pub sys_path: Vec<String>,
}

impl Default for Header {
    fn default() -> Self {
        Header {
            version: CURRENT_VERSION,
            python_version: 0,
            native_traces: false,
            file_format: FileFormat::AllAllocations,
            stats: TrackerStats::default(),
            command_line: String::new(),
            pid: 0,
            main_tid: 0,
            skipped_frames_on_main_tid: 0,
            python_allocator: PythonAllocator::Pymalloc as u8,
            trace_python_allocators: false,
            track_object_lifetimes: false,
            libdest: String::new(),
            site_packages: Vec::new(),
            sys_path: Vec::new(),
        }
    }
}

impl Header {
    /// Drops from a stack of `tid` (leaf first) the outermost frames memray
    /// hides (its `stack_trace()`): on the main thread, those above the frame
    /// that started tracking; none on other threads.
    pub fn hide_outer_frames<T>(&self, tid: u64, frames: &mut Vec<T>) {
        if tid == self.main_tid {
            let hidden = self.skipped_frames_on_main_tid as usize;
            frames.truncate(frames.len().saturating_sub(hidden));
        }
    }

    /// `(major, minor)` of the interpreter whose line tables the file holds.
    pub fn python_major_minor(&self) -> (u32, u32) {
        (
            (self.python_version >> 24) & 0xff,
            (self.python_version >> 16) & 0xff,
        )
    }

    /// The v13 encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + self.command_line.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&CURRENT_VERSION.to_ne_bytes());
        out.extend_from_slice(&self.python_version.to_ne_bytes());
        out.push(self.native_traces as u8);
        out.push(self.file_format as u8);
        for word in [
            self.stats.n_allocations,
            self.stats.n_frames,
            self.stats.start_time_ms as u64,
            self.stats.end_time_ms as u64,
        ] {
            out.extend_from_slice(&word.to_ne_bytes());
        }
        put_cstr(&mut out, self.command_line.as_bytes());
        out.extend_from_slice(&self.pid.to_ne_bytes());
        out.extend_from_slice(&self.main_tid.to_ne_bytes());
        out.extend_from_slice(&self.skipped_frames_on_main_tid.to_ne_bytes());
        out.push(self.python_allocator);
        out.push(self.trace_python_allocators as u8);
        out.push(self.track_object_lifetimes as u8);
        put_cstr(&mut out, self.libdest.as_bytes());
        for list in [&self.site_packages, &self.sys_path] {
            for path in list {
                put_cstr(&mut out, path.as_bytes());
            }
            put_cstr(&mut out, b"");
        }
        out
    }

    /// Parses a header at the start of `data`; returns it and its length.
    pub fn decode(data: &[u8]) -> Result<(Header, usize), FormatError> {
        Self::decode_prefix(data)?.ok_or(FormatError::BadHeader)
    }

    /// Like [`Header::decode`], but `None` when `data` stops inside a header
    /// that is valid so far (more data may complete it).
    pub(crate) fn decode_prefix(data: &[u8]) -> Result<Option<(Header, usize)>, FormatError> {
        if data.len() < MAGIC.len() || &data[..MAGIC.len()] != MAGIC {
            return Err(FormatError::NotMemray);
        }
        let mut c = Cursor::new(data, MAGIC.len());
        let version = match c.i32_raw() {
            Ok(version) => version,
            Err(error) => return header_error(error),
        };
        if !READABLE_VERSIONS.contains(&version) {
            return Err(FormatError::IncompatibleVersion(version));
        }
        match Self::decode_fields(&mut c, version) {
            Ok(header) => Ok(Some((header, c.pos()))),
            Err(error) => header_error(error),
        }
    }

    fn decode_fields(c: &mut Cursor<'_>, version: i32) -> Result<Header, DecodeError> {
        let python_version = if version >= 12 {
            c.i32_raw()? as u32
        } else {
            0
        };
        let native_traces = c.u8()? != 0;
        let file_format = match c.u8()? {
            0 => FileFormat::AllAllocations,
            1 => FileFormat::AggregatedAllocations,
            _ => return Err(DecodeError::Invalid),
        };
        let stats = TrackerStats {
            n_allocations: c.u64_raw()?,
            n_frames: c.u64_raw()?,
            start_time_ms: c.u64_raw()? as i64,
            end_time_ms: c.u64_raw()? as i64,
        };
        let command_line = lossy(c.cstr()?);
        let pid = c.i32_raw()?;
        let main_tid = c.u64_raw()?;
        let skipped_frames_on_main_tid = c.u64_raw()?;
        let python_allocator = c.u8()?;
        let trace_python_allocators = c.u8()? != 0;
        let track_object_lifetimes = version >= 12 && c.u8()? != 0;
        let mut header = Header {
            version,
            python_version,
            native_traces,
            file_format,
            stats,
            command_line,
            pid,
            main_tid,
            skipped_frames_on_main_tid,
            python_allocator,
            trace_python_allocators,
            track_object_lifetimes,
            ..Header::default()
        };
        if version >= 13 {
            header.libdest = lossy(c.cstr()?);
            for list in [&mut header.site_packages, &mut header.sys_path] {
                loop {
                    let entry = c.cstr()?;
                    if entry.is_empty() {
                        break;
                    }
                    list.push(lossy(entry));
                }
            }
        }
        Ok(header)
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn header_error<T>(error: DecodeError) -> Result<Option<T>, FormatError> {
    match error {
        DecodeError::Incomplete => Ok(None),
        DecodeError::Invalid => Err(FormatError::BadHeader),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header {
            python_version: 0x030b0ff0,
            native_traces: true,
            stats: TrackerStats {
                n_allocations: 3,
                n_frames: 0,
                start_time_ms: 1795302103457,
                end_time_ms: 1795302103460,
            },
            command_line: "memray test harness".into(),
            pid: 1295,
            main_tid: 1,
            libdest: "/some/path with spaces".into(),
            site_packages: vec!["/a".into(), "/b c".into()],
            sys_path: vec![],
            ..Header::default()
        }
    }

    #[test]
    fn v13_header_round_trips() {
        let header = sample();
        let bytes = header.encode();
        let (decoded, len) = Header::decode(&bytes).unwrap();
        assert_eq!(decoded, header);
        assert_eq!(len, bytes.len());
    }

    #[test]
    fn header_bytes_match_the_annotated_dump() {
        let header = Header {
            libdest: String::new(),
            site_packages: vec![],
            stats: TrackerStats::default(),
            ..sample()
        };
        let bytes = header.encode();
        assert_eq!(&bytes[7..11], &[0x0d, 0, 0, 0]);
        assert_eq!(&bytes[11..15], &[0xf0, 0x0f, 0x0b, 0x03]);
        assert_eq!(bytes.len(), 95, "the record stream starts at offset 95");
    }

    #[test]
    fn bad_headers_are_typed_errors() {
        assert!(matches!(
            Header::decode(b"nothing"),
            Err(FormatError::NotMemray)
        ));
        let mut v10 = sample().encode();
        v10[7] = 10;
        assert!(matches!(
            Header::decode(&v10),
            Err(FormatError::IncompatibleVersion(10))
        ));
        let bytes = sample().encode();
        for cut in 7..bytes.len() {
            assert!(Header::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn v12_header_has_no_path_lists() {
        let header = sample();
        let mut bytes = header.encode();
        bytes[7] = 12;
        let (decoded, _) = Header::decode(&bytes).unwrap();
        assert_eq!(decoded.version, 12);
        assert!(decoded.track_object_lifetimes == header.track_object_lifetimes);
        assert_eq!(decoded.libdest, "");
    }
}
