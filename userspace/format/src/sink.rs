//! Where a writer's bytes go: memray's mmap'd file sink (survives kill -9),
//! a buffered file sink (`--buffered-file-io`), an in-memory sink for tests,
//! and the LZ4 compression applied to a finished file.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use crate::encoding::RecordBuf;
use crate::file_hints::grow_file;

/// A byte destination that can rewrite the header in place at the end.
pub trait Sink: Send {
    fn write_all(&mut self, data: &[u8]) -> io::Result<()>;
    /// Writes one record of at most `N` bytes that `encode` puts in the
    /// buffer it is given (the hot path: an ALLOCATION inside malloc).
    #[inline]
    fn write_with<const N: usize>(
        &mut self,
        encode: impl FnOnce(&mut RecordBuf<'_, N>),
    ) -> io::Result<()>
    where
        Self: Sized,
    {
        let mut bytes = [0; N];
        let mut record = RecordBuf::new(&mut bytes);
        encode(&mut record);
        self.write_all(record.as_slice())
    }
    /// Overwrites the first `header.len()` bytes (the header never changes size).
    fn rewrite_header(&mut self, header: &[u8]) -> io::Result<()>;
    /// Makes everything written so far visible to readers of the file.
    fn flush(&mut self) -> io::Result<()>;
    /// After the last write: everything written reaches its destination
    /// (a socket may leave some of a flush for later, never of this).
    fn finish(&mut self) -> io::Result<()> {
        self.flush()
    }
}

const WINDOW: usize = 16 << 20;

fn open_output(path: &Path, overwrite: bool) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).custom_flags(libc::O_CLOEXEC);
    if overwrite {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    options.open(path).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            io::Error::new(
                e.kind(),
                format!(
                    // memray also names its Python API's `overwrite=True`,
                    // which does not exist here yet.
                    "Output file {} already exists. Memray can overwrite it with the \
                     --force CLI argument.",
                    path.display()
                ),
            )
        } else {
            io::Error::new(
                e.kind(),
                format!("Could not create output file {}: {e}", path.display()),
            )
        }
    })
}

/// memray's `FileSink`: the file grows with `posix_fallocate` (to 110 % of
/// what is needed, page-rounded) and is written through a sliding 16 MiB
/// `MAP_SHARED` window, so the data is in the page cache as soon as it is
/// copied and survives the process being killed. The file is never
/// truncated: it ends in zero padding that readers ignore.
pub struct MmapFileSink {
    path: PathBuf,
    file: File,
    file_size: u64,
    window: Option<NonNull<u8>>,
    window_offset: u64,
    /// Bytes of the window that lie inside the file.
    window_len: usize,
    /// Next byte to write, relative to the window.
    needle: usize,
}

// SAFETY: the window is a private mapping owned by this sink alone.
unsafe impl Send for MmapFileSink {}

impl MmapFileSink {
    pub fn create(path: impl AsRef<Path>, overwrite: bool) -> io::Result<MmapFileSink> {
        let path = path.as_ref();
        Ok(MmapFileSink {
            path: path.to_path_buf(),
            file: open_output(path, overwrite)?,
            file_size: 0,
            window: None,
            window_offset: 0,
            window_len: 0,
            needle: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn bytes_beyond_needle(&self) -> u64 {
        self.file_size - self.window_offset - self.needle as u64
    }

    fn grow(&mut self, needed: u64) -> io::Result<()> {
        let page = page_size();
        let wanted = ((self.file_size + needed) as f64 * 1.1) as u64;
        let new_size = (wanted / page + 1) * page;
        let delta = new_size - self.file_size;
        let rc = loop {
            let rc = grow_file(self.file.as_raw_fd(), self.file_size, delta);
            if rc != libc::EINTR {
                break rc;
            }
        };
        if rc != 0 {
            return Err(io::Error::new(
                io::Error::from_raw_os_error(rc).kind(),
                format!(
                    "Failed to grow output file {} by {delta} bytes: {}",
                    self.path.display(),
                    io::Error::from_raw_os_error(rc)
                ),
            ));
        }
        self.file_size = new_size;
        if self.window.is_some() {
            // The window may now cover more of the file.
            self.window_len = (self.file_size - self.window_offset).min(WINDOW as u64) as usize;
        }
        Ok(())
    }

    fn map_window_at(&mut self, offset: u64) -> io::Result<()> {
        self.unmap();
        // SAFETY: mapping our own descriptor; mapping past EOF is allowed
        // (we never write past `window_len`, which stays inside the file).
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                WINDOW,
                libc::PROT_WRITE,
                libc::MAP_SHARED,
                self.file.as_raw_fd(),
                offset as libc::off_t,
            )
        };
        if ptr == libc::MAP_FAILED {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!(
                    "Failed to mmap {WINDOW} bytes of output file {} at offset {offset}: {e}",
                    self.path.display()
                ),
            ));
        }
        self.window = NonNull::new(ptr.cast());
        self.window_offset = offset;
        self.window_len = (self.file_size - offset).min(WINDOW as u64) as usize;
        self.needle = 0;
        Ok(())
    }

    fn unmap(&mut self) {
        if let Some(window) = self.window.take() {
            // SAFETY: unmapping the region mapped in `map_window_at`.
            unsafe { libc::munmap(window.as_ptr().cast(), WINDOW) };
        }
    }
}

impl Sink for MmapFileSink {
    #[inline]
    fn write_with<const N: usize>(
        &mut self,
        encode: impl FnOnce(&mut RecordBuf<'_, N>),
    ) -> io::Result<()> {
        match self.window {
            // Room for N bytes in the window (which lies inside the file):
            // encode straight into the mapping.
            Some(window) if self.window_len - self.needle >= N => {
                // SAFETY: `needle + N <= window_len <= WINDOW`: inside the
                // mapping, and no other reference to it exists.
                let bytes = unsafe { &mut *window.as_ptr().add(self.needle).cast::<[u8; N]>() };
                let mut record = RecordBuf::new(bytes);
                encode(&mut record);
                self.needle += record.len();
                Ok(())
            }
            _ => {
                let mut bytes = [0; N];
                let mut record = RecordBuf::new(&mut bytes);
                encode(&mut record);
                self.write_all(record.as_slice())
            }
        }
    }

    #[inline]
    fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        if self.bytes_beyond_needle() < data.len() as u64 {
            self.grow(data.len() as u64 - self.bytes_beyond_needle())?;
        }
        while !data.is_empty() {
            if self.window.is_none() || self.needle == self.window_len {
                self.map_window_at(self.window_offset + self.needle as u64)?;
            }
            let window = self.window.expect("mapped above");
            let n = data.len().min(self.window_len - self.needle);
            // SAFETY: `needle + n <= window_len <= WINDOW`, inside the mapping.
            unsafe {
                std::ptr::copy_nonoverlapping(data.as_ptr(), window.as_ptr().add(self.needle), n)
            };
            self.needle += n;
            data = &data[n..];
        }
        Ok(())
    }

    fn rewrite_header(&mut self, header: &[u8]) -> io::Result<()> {
        // pwrite goes through the same page cache as the shared mapping.
        self.file.write_all_at(header, 0)
    }

    fn flush(&mut self) -> io::Result<()> {
        // MAP_SHARED pages are already visible to every reader of the file.
        Ok(())
    }
}

impl Drop for MmapFileSink {
    fn drop(&mut self) {
        self.unmap();
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as u64
    } else {
        4096
    }
}

/// `--buffered-file-io`: a 1 MiB buffer flushed with `write()`.
pub struct BufferedFileSink {
    path: PathBuf,
    out: io::BufWriter<File>,
}

impl BufferedFileSink {
    pub fn create(path: impl AsRef<Path>, overwrite: bool) -> io::Result<BufferedFileSink> {
        let path = path.as_ref();
        let file = open_output(path, overwrite)?;
        Ok(BufferedFileSink {
            path: path.to_path_buf(),
            out: io::BufWriter::with_capacity(1 << 20, file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Sink for BufferedFileSink {
    #[inline]
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.out.write_all(data)
    }

    fn rewrite_header(&mut self, header: &[u8]) -> io::Result<()> {
        self.out.flush()?;
        let file = self.out.get_mut();
        let end = file.stream_position()?;
        file.write_all_at(header, 0)?;
        file.seek(SeekFrom::Start(end))?;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Collects the bytes in memory.
#[derive(Default, Debug, Clone)]
pub struct MemorySink {
    pub bytes: Vec<u8>,
}

impl Sink for MemorySink {
    #[inline]
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.bytes.extend_from_slice(data);
        Ok(())
    }

    fn rewrite_header(&mut self, header: &[u8]) -> io::Result<()> {
        if self.bytes.len() < header.len() {
            return Err(io::Error::other("the header was never written"));
        }
        self.bytes[..header.len()].copy_from_slice(header);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// LZ4-frame compresses a finished capture (padding included) into
/// `<file>.lz4.tmp` and renames it over the original, as memray does at exit.
/// Frame: linked 64 KiB blocks, no checksums (FLG 0x40, BD 0x40).
pub fn compress_file(path: impl AsRef<Path>) -> io::Result<()> {
    use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
    let path = path.as_ref();
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".lz4.tmp");
    let tmp = PathBuf::from(tmp_name);
    let result = (|| {
        let mut input = File::open(path)?;
        let info = FrameInfo::new()
            .block_mode(BlockMode::Linked)
            .block_size(BlockSize::Max64KB);
        let mut encoder = FrameEncoder::with_frame_info(info, File::create(&tmp)?);
        io::copy(&mut input, &mut encoder)?;
        encoder.finish().map_err(io::Error::other)?.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mmap_sink_grows_page_rounded_and_slides_its_window() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        let mut sink = MmapFileSink::create(&path, false).unwrap();
        sink.write_all(b"hello").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), page_size());
        // Cross the 16 MiB window boundary with one write.
        let big = vec![0xabu8; WINDOW + 100];
        sink.write_all(&big).unwrap();
        sink.rewrite_header(b"HE").unwrap();
        drop(sink);
        let data = std::fs::read(&path).unwrap();
        assert_eq!(&data[..5], b"HEllo");
        assert!(data[5..5 + big.len()].iter().all(|&b| b == 0xab));
        assert!(data[5 + big.len()..].iter().all(|&b| b == 0));
        assert_eq!(data.len() as u64 % page_size(), 0);
    }

    #[test]
    fn existing_output_is_refused_unless_overwriting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        std::fs::write(&path, b"x").unwrap();
        let err = MmapFileSink::create(&path, false).err().unwrap();
        assert!(err.to_string().contains("already exists"), "{err}");
        assert!(BufferedFileSink::create(&path, true).is_ok());
    }

    #[test]
    fn compressed_file_has_memrays_frame_descriptor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &payload).unwrap();
        compress_file(&path).unwrap();
        let data = std::fs::read(&path).unwrap();
        assert_eq!(&data[..6], &[0x04, 0x22, 0x4d, 0x18, 0x40, 0x40]);
        let mut decoded = Vec::new();
        io::Read::read_to_end(
            &mut lz4_flex::frame::FrameDecoder::new(data.as_slice()),
            &mut decoded,
        )
        .unwrap();
        assert_eq!(decoded, payload);
        assert!(!dir.path().join("out.bin.lz4.tmp").exists());
    }
}
