//! Streaming capture reader. Plain files are read through a small sliding
//! buffer (never mapped or read as a whole: the reports' peak memory must not
//! grow with the capture), with their trailing zero padding ignored; LZ4-frame
//! files are decompressed through the same kind of buffer.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::decode::{Decoder, HotRecords, RecordSlot};
use crate::encoding::DecodeError;
use crate::error::FormatError;
use crate::file_hints::advise_sequential;
use crate::header::{Header, MAGIC};
use crate::lost_records;
use crate::read_ahead::ReadAhead;
use crate::record::Record;

pub const LZ4_MAGIC: [u8; 4] = [0x04, 0x22, 0x4d, 0x18];
/// The least free room a refill reads into: memray's LZ4 blocks are 64 KiB.
/// The sliding buffer starts at 4 chunks (256 KiB) and grows only for a
/// record (or header) longer than what is buffered.
const CHUNK: usize = 64 << 10;

/// The I/O error a source hit, kept aside: the LZ4 decoder above a source
/// also fails on cut-off or damaged data, which is not an I/O error.
type SourceError = Arc<Mutex<Option<io::Error>>>;

/// A file (or bytes) that records its own read errors in a [`SourceError`].
struct Source<R> {
    inner: R,
    error: SourceError,
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|error| {
            if !is_retryable(error) {
                let kept = io::Error::new(error.kind(), error.to_string());
                *self.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(kept);
            }
        })
    }
}

/// An interrupted read, or (for a followed stream) one that found no data
/// within its timeout: neither ends the data.
fn is_retryable(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Wraps `inner`; the error it hits will be in the returned cell.
fn source<R: Read + Send + 'static>(inner: R) -> (Source<R>, SourceError) {
    let error = SourceError::default();
    let source = Source {
        inner,
        error: error.clone(),
    };
    (source, error)
}

/// A file, an LZ4 frame or bytes in memory, read through a sliding buffer
/// (one struct for all, so that reading a record dispatches on nothing).
struct Input {
    source: Box<dyn Read + Send>,
    /// The file's own I/O error, once reading stopped on one.
    source_error: SourceError,
    buf: Vec<u8>,
    /// Bytes of `buf` holding data.
    filled: usize,
    /// No more data will come (end of input, or a cut-off/corrupt block).
    exhausted: bool,
    /// Bytes dropped from the front of `buf` so far.
    discarded: u64,
    /// Decompressed data keeps the writer's zero padding, so a zero token
    /// ends the stream (plain files have it trimmed before reading).
    zero_token_ends: bool,
    /// A live stream ([`CaptureReader::follow`]): a refill returns whatever
    /// one read brings, and a read that times out means "no data yet".
    follow: bool,
    /// The last refill of a followed stream found no data yet.
    waiting: bool,
}

impl Input {
    fn new(
        source: Box<dyn Read + Send>,
        source_error: SourceError,
        zero_token_ends: bool,
        follow: bool,
    ) -> Input {
        let mut input = Input {
            source,
            source_error,
            buf: vec![0; 4 * CHUNK],
            filled: 0,
            exhausted: false,
            discarded: 0,
            zero_token_ends,
            follow,
            waiting: false,
        };
        input.refill(0);
        input
    }

    /// Bytes already in memory: the whole buffer, nothing more to read.
    fn bytes(bytes: Vec<u8>) -> Input {
        Input {
            source: Box::new(io::empty()),
            source_error: SourceError::default(),
            filled: bytes.len(),
            buf: bytes,
            exhausted: true,
            discarded: 0,
            zero_token_ends: false,
            follow: false,
            waiting: false,
        }
    }

    #[inline(always)]
    fn data(&self) -> &[u8] {
        &self.buf[..self.filled]
    }

    /// Keeps `buf[keep_from..filled]` and appends more data; false at the end.
    fn refill(&mut self, keep_from: usize) -> bool {
        if self.exhausted {
            return false;
        }
        self.buf.copy_within(keep_from..self.filled, 0);
        self.filled -= keep_from;
        self.discarded += keep_from as u64;
        if self.buf.len() - self.filled < CHUNK {
            // A record bigger than what is buffered: grow.
            self.buf.resize(self.filled + CHUNK.max(self.buf.len()), 0);
        }
        let mut got_any = false;
        self.waiting = false;
        while self.filled < self.buf.len() {
            match self.source.read(&mut self.buf[self.filled..]) {
                Err(error) if self.follow && is_retryable(&error) => {
                    self.waiting = !got_any;
                    break;
                }
                Ok(0) | Err(_) => {
                    // Unless the file itself failed (see `io_error`), an
                    // error means a cut-off or corrupt block: what was read
                    // before it is still good.
                    self.exhausted = true;
                    break;
                }
                Ok(n) => {
                    self.filled += n;
                    got_any = true;
                    if self.follow {
                        break;
                    }
                }
            }
        }
        got_any
    }

    /// The I/O error that stopped reading, if that is what stopped it.
    fn io_error(&mut self) -> Option<io::Error> {
        self.source_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}

/// Reads one capture file record by record.
///
/// ```no_run
/// # use memray_format::{CaptureReader, Record};
/// let mut reader = CaptureReader::open("capture.bin")?;
/// while let Some(record) = reader.next_record()? {
///     if let Record::Allocation(a) = record { let _ = a.size; }
/// }
/// if reader.is_truncated() { eprintln!("the capture was cut off"); }
/// # Ok::<(), memray_format::FormatError>(())
/// ```
pub struct CaptureReader {
    header: Header,
    input: Input,
    pos: usize,
    decoder: Decoder,
    records: u64,
    finished: bool,
    /// Hot runs may apply records: a v12/v13 stream, not finished (one
    /// flag, checked once per record).
    hot_records: bool,
    truncated: bool,
    cut_off_token: Option<u8>,
    damage: Option<Damage>,
    lost_records: Option<u64>,
}

/// Where a capture's data stopped making sense: a record that cannot be
/// decoded (memray reads up to it, and so do we).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Damage {
    /// The undecodable record's token.
    pub token: u8,
    /// Its offset in the decoded data (the file's, for a plain capture).
    pub offset: u64,
}

impl CaptureReader {
    /// Opens a plain or LZ4-compressed capture.
    pub fn open(path: impl AsRef<Path>) -> Result<CaptureReader, FormatError> {
        let path = path.as_ref();
        if !path.exists() {
            return Err(FormatError::NoSuchFile(path.to_path_buf()));
        }
        let open_error = |source| FormatError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut file = File::open(path).map_err(open_error)?;
        let len = file.metadata().map_err(open_error)?.len();
        if len == 0 {
            return Err(FormatError::NotMemray);
        }
        let mut magic = [0; LZ4_MAGIC.len()];
        let is_lz4 = file.read_exact_at(&mut magic, 0).is_ok() && magic == LZ4_MAGIC;
        if is_lz4 {
            return Self::from_lz4(file);
        }
        let end = file_readable_end(&file, len).map_err(open_error)?;
        file.seek(SeekFrom::Start(0)).map_err(open_error)?;
        advise_sequential(file.as_raw_fd());
        let (file, error) = source(file.take(end));
        Self::start(Input::new(Box::new(file), error, false, false))
    }

    /// Follows a capture as it is written to `stream` (a live session's
    /// socket, never compressed): records are returned as they arrive. Give
    /// the stream a read timeout: when a read times out, `next_record`
    /// returns `None` with [`CaptureReader::is_waiting`] true ("no data yet")
    /// and can be called again; the data ends only when the writer closes
    /// the stream (cut off, unless the trailer came first).
    pub fn follow(stream: impl Read + Send + 'static) -> Result<CaptureReader, FormatError> {
        let (stream, error) = source(stream);
        let mut input = Input::new(Box::new(stream), error, false, true);
        // The header may be slow to come: its magic first (checked alone).
        while input.filled < MAGIC.len() && !input.exhausted {
            input.refill(0);
        }
        Self::start(input)
    }

    /// Reads a capture held in memory (plain or LZ4).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<CaptureReader, FormatError> {
        if bytes.starts_with(&LZ4_MAGIC) {
            return Self::from_lz4(io::Cursor::new(bytes));
        }
        let mut bytes = bytes;
        bytes.truncate(readable_end(&bytes));
        Self::start(Input::bytes(bytes))
    }

    /// Decompresses on another thread where one can start (see [`ReadAhead`]).
    fn from_lz4(input: impl Read + Send + 'static) -> Result<CaptureReader, FormatError> {
        let (input, error) = source(input);
        let decoder = lz4_flex::frame::FrameDecoder::new(input);
        let decoded: Box<dyn Read + Send> = match ReadAhead::spawn(decoder) {
            Ok(ahead) => Box::new(ahead),
            Err(decoder) => Box::new(decoder),
        };
        Self::start(Input::new(decoded, error, true, false))
    }

    fn start(mut input: Input) -> Result<CaptureReader, FormatError> {
        let (header, pos) = loop {
            if let Some(decoded) = Header::decode_prefix(input.data())? {
                break decoded;
            }
            // A header longer than the buffer: read more of it.
            // A followed stream's header may be slow to come.
            if !(input.refill(0) || input.waiting) {
                if let Some(error) = input.io_error() {
                    return Err(FormatError::Read(error));
                }
                return Err(FormatError::BadHeader);
            }
        };
        let decoder = Decoder::new(&header);
        Ok(CaptureReader {
            hot_records: decoder.has_hot_records(),
            decoder,
            header,
            input,
            pos,
            records: 0,
            finished: false,
            truncated: false,
            cut_off_token: None,
            damage: None,
            lost_records: None,
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Records returned so far (the trailer excluded).
    pub fn records_read(&self) -> u64 {
        self.records
    }

    /// After `next_record` returned `None`: the data ended without a trailer
    /// (a killed process, or a cut-off file). Everything before was returned.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// After `next_record` returned `None` on a followed stream: no data
    /// came yet, the capture goes on (call `next_record` again).
    pub fn is_waiting(&self) -> bool {
        self.input.waiting && !self.finished
    }

    /// After a truncated end: the token of the record the data stopped in
    /// the middle of (`None` if it stopped between two records).
    pub fn cut_off_token(&self) -> Option<u8> {
        self.cut_off_token
    }

    /// After `next_record` returned `None`: the record it stopped at could not
    /// be decoded. Everything before was returned.
    pub fn damage(&self) -> Option<Damage> {
        self.damage
    }

    /// After the trailer: the number of records the capture misses, noted
    /// after the trailer by our eBPF mode (`None` if there is no note).
    pub fn lost_records(&self) -> Option<u64> {
        self.lost_records
    }

    /// The next record, `None` after the trailer, at the end of the data, or
    /// at a damaged record (see [`CaptureReader::damage`]).
    #[inline]
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, FormatError> {
        // Most records are hot ones, well inside the buffered data.
        let mut slot = RecordSlot(None);
        if self.apply_hot_records(&mut slot) {
            return Ok(slot.0);
        }
        self.next_record_of_any_kind()
    }

    /// [`CaptureReader::next_record`] where the hot path does not apply: any
    /// kind of record, refills, the end of the data.
    fn next_record_of_any_kind(&mut self) -> Result<Option<Record<'_>>, FormatError> {
        if self.finished {
            return Ok(None);
        }
        loop {
            // SAFETY: `data` borrows the input's buffer. On success we return
            // a record borrowing it and touch nothing else; on the paths that
            // refill (and so may move the buffer), the decoded record has been
            // dropped. The borrow checker cannot see through this loop.
            let data: &[u8] = unsafe { &*(self.input.data() as *const [u8]) };
            match data.get(self.pos) {
                None => {
                    if !self.refill()? {
                        if self.is_waiting() {
                            return Ok(None);
                        }
                        return Ok(self.end_without_trailer(None));
                    }
                    continue;
                }
                // Decompressed data keeps the writer's zero padding: it ends
                // the stream. (Plain inputs had it trimmed at open, so a zero
                // token there is corruption, reported below.)
                Some(0) if self.input.zero_token_ends => {
                    return Ok(self.end_without_trailer(None));
                }
                Some(_) => {}
            }
            match self.decoder.decode(data, self.pos) {
                Ok((Record::Trailer, next)) => {
                    self.finish();
                    self.read_lost_records(next);
                    return Ok(Some(Record::Trailer));
                }
                Ok((record, next)) => {
                    self.pos = next;
                    self.records += 1;
                    return Ok(Some(record));
                }
                Err(DecodeError::Incomplete) => {
                    let token = data[self.pos];
                    if !self.refill()? {
                        if self.is_waiting() {
                            return Ok(None);
                        }
                        return Ok(self.end_without_trailer(Some(token)));
                    }
                }
                Err(DecodeError::Invalid) => {
                    self.finish();
                    self.damage = Some(Damage {
                        token: data[self.pos],
                        offset: self.decoded_offset(),
                    });
                    return Ok(None);
                }
            }
        }
    }

    /// Hands the hot records ahead (see [`HotRecords`]) to `sink` until it
    /// stops (true), or a record needs [`CaptureReader::next_record`]
    /// (false): another kind, the end of the buffered data, a damaged record.
    #[inline]
    pub(crate) fn apply_hot_records<S: HotRecords>(&mut self, sink: &mut S) -> bool {
        if !self.hot_records {
            return false;
        }
        let run = self.decoder.hot_run(self.input.data(), self.pos, sink);
        self.pos = run.pos;
        self.records += run.applied;
        run.stopped
    }

    fn finish(&mut self) {
        self.finished = true;
        self.hot_records = false;
    }

    fn end_without_trailer(&mut self, cut_inside: Option<u8>) -> Option<Record<'static>> {
        self.finish();
        self.truncated = true;
        self.cut_off_token = cut_inside;
        None
    }

    /// The note after the trailer, if any, from `from` on.
    fn read_lost_records(&mut self, mut from: usize) {
        let input = &mut self.input;
        if input.filled - from < lost_records::MAX_LEN && !input.exhausted {
            // Not exhausted: it moves `from` to the start, read or not.
            input.refill(from);
            from = 0;
        }
        self.lost_records = self.input.data().get(from..).and_then(lost_records::read);
    }

    /// More data after `pos`; false if there is none,
    /// an error if the file could not be read.
    fn refill(&mut self) -> Result<bool, FormatError> {
        let refilled = self.input.refill(self.pos);
        self.pos = 0;
        if !refilled {
            if let Some(error) = self.input.io_error() {
                self.finish();
                return Err(FormatError::Read(error));
            }
        }
        Ok(refilled)
    }

    fn decoded_offset(&self) -> u64 {
        self.input.discarded + self.pos as u64
    }
}

/// [`readable_end`] of a whole file, reading only its tail.
fn file_readable_end(file: &File, len: u64) -> std::io::Result<u64> {
    let mut tail = vec![0; CHUNK];
    let mut end = len;
    while end > 0 {
        let start = end.saturating_sub(CHUNK as u64);
        let block = &mut tail[..(end - start) as usize];
        file.read_exact_at(block, start)?;
        let data_end = readable_end(block);
        if data_end > 0 {
            return Ok(start + data_end as u64);
        }
        end = start;
    }
    Ok(0)
}

/// The length without trailing zero bytes (memray's `findReadableSize`).
fn readable_end(data: &[u8]) -> usize {
    let mut end = data.len();
    // Skip zero words first: the padding can be megabytes long.
    while end >= 8 && data[end - 8..end] == [0; 8] {
        end -= 8;
    }
    while end > 0 && data[end - 1] == 0 {
        end -= 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Allocator, CaptureWriter, MemorySink, StreamingWriter};

    /// Reads `data`, then fails as a dying disk does.
    struct FailingAfter {
        data: io::Cursor<Vec<u8>>,
    }

    impl Read for FailingAfter {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.data.read(buf)? {
                0 => Err(io::Error::from_raw_os_error(libc::EIO)),
                n => Ok(n),
            }
        }
    }

    #[test]
    fn a_failed_read_is_an_io_error_not_a_cut_off_capture() {
        let bytes = allocations(1000);
        let half = bytes[..bytes.len() / 2].to_vec();
        let (input, error) = source(FailingAfter {
            data: io::Cursor::new(half),
        });
        let stream = Input::new(Box::new(input), error, false, false);
        let mut reader = CaptureReader::start(stream).unwrap();
        let failure = loop {
            match reader.next_record() {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("reported as a capture cut short"),
                Err(error) => break error,
            }
        };
        assert!(matches!(&failure, FormatError::Read(e) if e.raw_os_error().is_none()));
        assert!(
            failure.to_string().contains("Input/output error"),
            "{failure}"
        );
        assert!(!reader.is_truncated());
    }

    fn allocations(count: u64) -> Vec<u8> {
        let mut writer = StreamingWriter::new(MemorySink::default(), Header::default()).unwrap();
        for i in 0..count {
            writer
                .write_allocation(1, 0x1000 * i, 10, Allocator::Malloc, 0)
                .unwrap();
        }
        writer.into_sink().bytes
    }

    #[test]
    fn a_damaged_record_ends_the_data_after_every_record_before_it() {
        let read_all = |bytes: Vec<u8>| {
            let mut reader = CaptureReader::from_bytes(bytes).unwrap();
            while reader.next_record().unwrap().is_some() {}
            reader
        };
        // The header has the same length in both: the 501st allocation
        // starts where the 500-allocation capture ends.
        let first = allocations(500);
        let before = first.len();
        let records_before = read_all(first).records_read();
        let mut bytes = allocations(1000);
        bytes[before] = 0;
        let reader = read_all(bytes);
        assert_eq!(reader.records_read(), records_before);
        assert_eq!(
            reader.damage(),
            Some(Damage {
                token: 0,
                offset: before as u64
            })
        );
        assert!(!reader.is_truncated());
    }

    #[test]
    fn readable_end_ignores_only_trailing_zeros() {
        assert_eq!(readable_end(&[]), 0);
        assert_eq!(readable_end(&[0; 100]), 0);
        assert_eq!(readable_end(&[1, 0, 2, 0, 0]), 3);
        let mut long = vec![7u8; 13];
        long.extend([0; 4096]);
        assert_eq!(readable_end(&long), 13);
    }
}
