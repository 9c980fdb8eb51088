//! Streaming capture reader. Plain files are memory-mapped (never read into
//! memory as a whole) with their trailing zero padding ignored; LZ4-frame
//! files are decompressed through a sliding buffer.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use memmap2::{Advice, Mmap, UncheckedAdvice};

use crate::decode::{Decoder, HotRecords};
use crate::encoding::DecodeError;
use crate::error::FormatError;
use crate::header::Header;
use crate::record::Record;

pub const LZ4_MAGIC: [u8; 4] = [0x04, 0x22, 0x4d, 0x18];
/// The least free room a refill decompresses into: memray's LZ4 blocks are
/// 64 KiB. The sliding buffer starts at 4 chunks (256 KiB) and grows only for
/// a record longer than what is buffered.
const LZ4_CHUNK: usize = 64 << 10;

/// Plain captures: every this many decoded bytes, the mapped pages behind
/// are dropped from the process (the page cache keeps them), so that reading
/// a large capture does not keep all of it resident.
const RELEASE_STEP: usize = 8 << 20;

/// Where the decoded bytes come from.
enum Input {
    /// `data = map[..end]`, `end` = last non-zero byte + 1; the pages
    /// before `released` were handed back (see [`RELEASE_STEP`]).
    Mapped {
        map: Mmap,
        end: usize,
        released: usize,
    },
    Bytes(Vec<u8>),
    Lz4(Box<Lz4Input>),
}

struct Lz4Input {
    decoder: lz4_flex::frame::FrameDecoder<Box<dyn Read + Send>>,
    buf: Vec<u8>,
    /// Bytes of `buf` holding decompressed data.
    filled: usize,
    /// No more data will come (end of frame, or a cut-off/corrupt block).
    exhausted: bool,
    /// Decompressed bytes dropped from the front of `buf` so far.
    discarded: u64,
}

impl Lz4Input {
    /// Keeps `buf[keep_from..filled]` and appends more data; false at the end.
    fn refill(&mut self, keep_from: usize) -> bool {
        if self.exhausted {
            return false;
        }
        self.buf.copy_within(keep_from..self.filled, 0);
        self.filled -= keep_from;
        self.discarded += keep_from as u64;
        if self.buf.len() - self.filled < LZ4_CHUNK {
            // A record bigger than what is buffered: grow.
            self.buf
                .resize(self.filled + LZ4_CHUNK.max(self.buf.len()), 0);
        }
        let mut got_any = false;
        while self.filled < self.buf.len() {
            match self.decoder.read(&mut self.buf[self.filled..]) {
                Ok(0) | Err(_) => {
                    // An error means a cut-off or corrupt block: what was
                    // decoded before it is still good.
                    self.exhausted = true;
                    break;
                }
                Ok(n) => {
                    self.filled += n;
                    got_any = true;
                }
            }
        }
        got_any
    }
}

impl Input {
    /// Drops the mapped pages wholly before `pos` from the process.
    fn release_before(&mut self, pos: usize) {
        if let Input::Mapped { map, released, .. } = self {
            // SAFETY: sysconf has no preconditions.
            let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as usize;
            let upto = pos / page * page;
            if upto > *released {
                // SAFETY: a read-only shared file mapping: dropped pages are
                // read back from the file if touched again, so no byte seen
                // through `map` changes (as for the mapping itself, if the
                // file is not rewritten under us).
                let _ = unsafe {
                    map.unchecked_advise_range(
                        UncheckedAdvice::DontNeed,
                        *released,
                        upto - *released,
                    )
                };
                *released = upto;
            }
        }
    }

    #[inline]
    fn data(&self) -> &[u8] {
        match self {
            Input::Mapped { map, end, .. } => &map[..*end],
            Input::Bytes(bytes) => bytes,
            Input::Lz4(lz4) => &lz4.buf[..lz4.filled],
        }
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
    /// `pos` at which to release the pages decoded so far.
    release_at: usize,
    finished: bool,
    truncated: bool,
    cut_off_token: Option<u8>,
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
        let file = File::open(path).map_err(open_error)?;
        let len = file.metadata().map_err(open_error)?.len();
        if len == 0 {
            return Err(FormatError::NotMemray);
        }
        // SAFETY: the map is read-only; a capture being written concurrently
        // can only change bytes we have not decoded yet (the writer appends).
        let map = unsafe { Mmap::map(&file) }.map_err(open_error)?;
        if map.starts_with(&LZ4_MAGIC) {
            drop(map);
            return Self::from_lz4(Box::new(file));
        }
        let end = readable_end(&map);
        // Best effort: only the readahead changes.
        let _ = map.advise(Advice::Sequential);
        Self::start(Input::Mapped {
            map,
            end,
            released: 0,
        })
    }

    /// Reads a capture held in memory (plain or LZ4).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<CaptureReader, FormatError> {
        if bytes.starts_with(&LZ4_MAGIC) {
            return Self::from_lz4(Box::new(std::io::Cursor::new(bytes)));
        }
        let mut bytes = bytes;
        bytes.truncate(readable_end(&bytes));
        Self::start(Input::Bytes(bytes))
    }

    fn from_lz4(source: Box<dyn Read + Send>) -> Result<CaptureReader, FormatError> {
        let mut lz4 = Box::new(Lz4Input {
            decoder: lz4_flex::frame::FrameDecoder::new(source),
            buf: vec![0; 4 * LZ4_CHUNK],
            filled: 0,
            exhausted: false,
            discarded: 0,
        });
        lz4.refill(0);
        Self::start(Input::Lz4(lz4))
    }

    fn start(input: Input) -> Result<CaptureReader, FormatError> {
        let (header, pos) = Header::decode(input.data())?;
        Ok(CaptureReader {
            decoder: Decoder::new(&header),
            header,
            input,
            pos,
            records: 0,
            release_at: RELEASE_STEP,
            finished: false,
            truncated: false,
            cut_off_token: None,
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

    /// After a truncated end: the token of the record the data stopped in
    /// the middle of (`None` if it stopped between two records).
    pub fn cut_off_token(&self) -> Option<u8> {
        self.cut_off_token
    }

    /// The next record, `None` after the trailer or at the end of the data.
    #[inline]
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, FormatError> {
        if self.finished {
            return Ok(None);
        }
        self.release_decoded();
        loop {
            // SAFETY: `data` borrows the input's buffer. On success we return
            // a record borrowing it and touch nothing else; on the paths that
            // refill (and so may move the buffer), the decoded record has been
            // dropped. The borrow checker cannot see through this loop.
            let data: &[u8] = unsafe { &*(self.input.data() as *const [u8]) };
            match data.get(self.pos) {
                None => {
                    if !self.refill() {
                        return Ok(self.end_without_trailer(None));
                    }
                    continue;
                }
                // Decompressed data keeps the writer's zero padding: it ends
                // the stream. (Plain inputs had it trimmed at open, so a zero
                // token there is corruption, reported below.)
                Some(0) if matches!(self.input, Input::Lz4(_)) => {
                    return Ok(self.end_without_trailer(None));
                }
                Some(_) => {}
            }
            match self.decoder.decode(data, self.pos) {
                Ok((Record::Trailer, _)) => {
                    self.finished = true;
                    return Ok(Some(Record::Trailer));
                }
                Ok((record, next)) => {
                    self.pos = next;
                    self.records += 1;
                    return Ok(Some(record));
                }
                Err(DecodeError::Incomplete) => {
                    let token = data[self.pos];
                    if !self.refill() {
                        return Ok(self.end_without_trailer(Some(token)));
                    }
                }
                Err(DecodeError::Invalid) => {
                    self.finished = true;
                    return Err(FormatError::CorruptRecord {
                        token: data[self.pos],
                        offset: self.decoded_offset(),
                    });
                }
            }
        }
    }

    /// Hands the hot records ahead (see [`HotRecords`]) to `sink` until it
    /// stops (true), or a record needs [`CaptureReader::next_record`]
    /// (false): another kind, the end of the buffered data, a damaged record.
    #[inline]
    pub(crate) fn apply_hot_records<S: HotRecords>(&mut self, sink: &mut S) -> bool {
        if self.finished {
            return false;
        }
        self.release_decoded();
        let run = self.decoder.hot_run(self.input.data(), self.pos, sink);
        self.pos = run.pos;
        self.records += run.applied;
        run.stopped
    }

    /// Every [`RELEASE_STEP`] bytes: drops what is behind `pos` (no record
    /// borrows it any more: the caller asks for the next one).
    #[inline]
    fn release_decoded(&mut self) {
        if self.pos >= self.release_at {
            self.input.release_before(self.pos);
            self.release_at = self.pos + RELEASE_STEP;
        }
    }

    fn end_without_trailer(&mut self, cut_inside: Option<u8>) -> Option<Record<'static>> {
        self.finished = true;
        self.truncated = true;
        self.cut_off_token = cut_inside;
        None
    }

    /// More data after `pos`, for the LZ4 input; false if there is none.
    fn refill(&mut self) -> bool {
        match &mut self.input {
            Input::Lz4(lz4) => {
                let refilled = lz4.refill(self.pos);
                self.pos = 0;
                refilled
            }
            _ => false,
        }
    }

    fn decoded_offset(&self) -> u64 {
        match &self.input {
            Input::Lz4(lz4) => lz4.discarded + self.pos as u64,
            _ => self.pos as u64,
        }
    }
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
    use super::readable_end;

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
