//! Opening a capture file: which writer and sink the options ask for, and
//! the header fields the recorder fills itself.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use memray_format::{
    AggregatingWriter, BufferedFileSink, FileFormat, Header, MmapFileSink, SocketSink,
    StreamingWriter,
};

use crate::recorder::Writer;
use crate::rss::{self, Process};

/// How the capture is written.
#[derive(Debug, Clone, Copy, Default)]
pub struct CaptureOptions {
    /// AGGREGATED_ALLOCATIONS instead of ALL_ALLOCATIONS.
    pub aggregate: bool,
    /// Native stacks and loaded objects are recorded (`--native`).
    pub native_traces: bool,
    /// Says in the header that pymalloc is recorded too.
    pub trace_python_allocators: bool,
    /// LZ4-compress the file when it is finished.
    pub compress: bool,
    /// A buffered sink instead of memray's memory-mapped one.
    pub buffered: bool,
    /// Replace an existing file.
    pub overwrite: bool,
}

/// The listening socket of a live session (`memray run --live-remote`):
/// the capture goes to the first reader that connects, and no other.
#[derive(Debug, Clone)]
pub struct LiveListener(Arc<Mutex<Option<LiveReader>>>);

#[derive(Debug)]
enum LiveReader {
    Waiting(TcpListener),
    Connected(TcpStream),
}

impl LiveListener {
    pub fn new(listener: TcpListener) -> LiveListener {
        LiveListener::holding(LiveReader::Waiting(listener))
    }

    /// A reader that has connected already (its caller waited for it, in
    /// a way Ctrl-C can end).
    pub fn connected(reader: TcpStream) -> LiveListener {
        LiveListener::holding(LiveReader::Connected(reader))
    }

    fn holding(reader: LiveReader) -> LiveListener {
        LiveListener(Arc::new(Mutex::new(Some(reader))))
    }

    /// Waits for the reader (if it has not come), then closes the
    /// listening socket.
    fn accept(&self) -> io::Result<SocketSink> {
        let mut reader = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let stream = match reader.take() {
            Some(LiveReader::Waiting(listener)) => listener.accept()?.0,
            Some(LiveReader::Connected(stream)) => stream,
            None => return Err(io::Error::other("the live session's reader already came")),
        };
        Ok(SocketSink::new(stream))
    }
}

/// Everything needed to open a capture file (again, for a forked child).
#[derive(Debug, Clone)]
pub struct CaptureSettings {
    /// The capture file (unused when `live` is set).
    pub output: PathBuf,
    /// Stream the capture to a live reader instead of a file.
    pub live: Option<LiveListener>,
    pub options: CaptureOptions,
    /// The interpreter's details; pid, main tid, start time, file format
    /// and `trace_python_allocators` are filled at open.
    pub header: Header,
}

impl CaptureSettings {
    /// The settings of a `--follow-fork` child's capture, named as memray
    /// names it: the parent's name without a trailing `.<parent pid>`, then
    /// `.<child pid>`.
    pub fn for_child(&self, parent_pid: u32, child_pid: u32) -> CaptureSettings {
        let name = self.output.as_os_str().to_string_lossy();
        let base = name
            .strip_suffix(&format!(".{parent_pid}"))
            .unwrap_or(&name);
        CaptureSettings {
            output: PathBuf::from(format!("{base}.{child_pid}")),
            ..self.clone()
        }
    }

    /// Creates the file (or waits for the live reader) and writes the header.
    pub(crate) fn open_writer(&self, process: Process, main_tid: u64) -> io::Result<Writer> {
        let options = self.options;
        let mut header = self.header.clone();
        header.pid = process.pid() as i32;
        header.main_tid = main_tid;
        header.stats.start_time_ms = rss::now_ms() as i64;
        header.trace_python_allocators = options.trace_python_allocators;
        header.native_traces = options.native_traces;
        header.file_format = if options.aggregate {
            FileFormat::AggregatedAllocations
        } else {
            FileFormat::AllAllocations
        };
        if let Some(live) = &self.live {
            return Ok(Box::new(StreamingWriter::new(live.accept()?, header)?));
        }
        let path = &self.output;
        if options.aggregate {
            let sink = MmapFileSink::create(path, options.overwrite)?;
            return Ok(Box::new(AggregatingWriter::new(sink, header)));
        }
        if options.buffered {
            let sink = BufferedFileSink::create(path, options.overwrite)?;
            Ok(Box::new(StreamingWriter::new(sink, header)?))
        } else {
            let sink = MmapFileSink::create(path, options.overwrite)?;
            Ok(Box::new(StreamingWriter::new(sink, header)?))
        }
    }
}
