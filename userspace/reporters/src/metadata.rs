//! memray's `Metadata` of a capture, as reports print it.

use memray_format::{FileFormat, Header, PythonAllocator};
use serde_json::{json, Value};

/// What memray's `FileReader.metadata` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub start_time_ms: i64,
    pub end_time_ms: i64,
    /// Allocation records counted while reading (frees included).
    pub total_allocations: u64,
    pub total_frames: u64,
    pub peak_memory: u64,
    pub command_line: String,
    pub pid: i32,
    pub main_thread_id: u64,
    pub python_allocator: &'static str,
    pub has_native_traces: bool,
    pub trace_python_allocators: bool,
    pub file_format: FileFormat,
}

impl Metadata {
    pub fn new(header: &Header, records: u64, peak_memory: u64) -> Metadata {
        Metadata {
            start_time_ms: header.stats.start_time_ms,
            end_time_ms: header.stats.end_time_ms,
            total_allocations: records,
            total_frames: header.stats.n_frames,
            peak_memory,
            command_line: header.command_line.clone(),
            pid: header.pid,
            main_thread_id: header.main_tid,
            python_allocator: PythonAllocator::from_id(header.python_allocator)
                .map_or("unknown", PythonAllocator::name),
            has_native_traces: header.native_traces,
            trace_python_allocators: header.trace_python_allocators,
            file_format: header.file_format,
        }
    }

    /// The `metadata` object of `memray stats --json`.
    pub fn to_json(&self) -> Value {
        json!({
            "start_time": local_datetime(self.start_time_ms),
            "end_time": local_datetime(self.end_time_ms),
            "total_allocations": self.total_allocations,
            "total_frames": self.total_frames,
            "peak_memory": self.peak_memory,
            "command_line": self.command_line,
            "pid": self.pid,
            "main_thread_id": self.main_thread_id,
            "python_allocator": self.python_allocator,
            "has_native_traces": self.has_native_traces,
            "trace_python_allocators": self.trace_python_allocators,
            "file_format": self.file_format as u8,
        })
    }
}

/// `str()` of the aware local datetime memray builds from epoch
/// milliseconds, e.g. `2026-11-21 22:34:03.769000+00:00` (no fraction when
/// the milliseconds are 0).
pub fn local_datetime(ms: i64) -> String {
    let seconds = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let time: libc::time_t = seconds as libc::time_t;
    // SAFETY: localtime_r only writes into the zeroed `tm` we own.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&time, &mut tm);
        tm
    };
    let fraction = if millis == 0 {
        String::new()
    } else {
        format!(".{:06}", millis * 1000)
    };
    let offset = tm.tm_gmtoff;
    let sign = if offset < 0 { '-' } else { '+' };
    let offset = offset.abs();
    let mut zone = format!("{sign}{:02}:{:02}", offset / 3600, offset % 3600 / 60);
    if offset % 60 != 0 {
        zone.push_str(&format!(":{:02}", offset % 60));
    }
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}{fraction}{zone}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}
