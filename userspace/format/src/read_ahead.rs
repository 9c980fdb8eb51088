//! Reads a source on another thread, a few chunks ahead of its reader: an LZ4
//! capture decompresses on the second core while the first decodes records.
//! The bytes, and where they end, are the source's own whatever the
//! scheduling: only when they are ready changes.

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

/// Bytes one hand-over carries (the worker reads until it has this many).
const CHUNK: usize = 256 << 10;
/// Chunks ready ahead of the reader: bounds the memory to a few chunks.
const AHEAD: usize = 2;

/// A [`Read`] whose source is read by a worker thread.
pub(crate) struct ReadAhead {
    /// Filled chunks, in order; closed after the last one (the source ended
    /// or failed: the worker stops there, as a direct reader would).
    chunks: Option<Receiver<Vec<u8>>>,
    /// Read chunks go back to the worker, so that it allocates none.
    spent: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    at: usize,
    worker: Option<JoinHandle<()>>,
}

impl ReadAhead {
    /// Starts reading `source` ahead; gives it back if no thread can start.
    pub(crate) fn spawn<R: Read + Send + 'static>(source: R) -> Result<ReadAhead, R> {
        let (ready, chunks) = sync_channel(AHEAD);
        let (spent, recycled) = sync_channel(AHEAD + 1);
        // The source comes back through this slot if the spawn fails.
        let handed = Arc::new(Mutex::new(Some(source)));
        let for_worker = handed.clone();
        let spawned = thread::Builder::new()
            .name("memray-read-ahead".into())
            .spawn(move || {
                let source = for_worker.lock().ok().and_then(|mut slot| slot.take());
                if let Some(source) = source {
                    fill_chunks(source, &ready, &recycled);
                }
            });
        let Ok(worker) = spawned else {
            let source = handed.lock().ok().and_then(|mut slot| slot.take());
            return Err(source.expect("a thread that never started left the source"));
        };
        Ok(ReadAhead {
            chunks: Some(chunks),
            spent,
            current: Vec::new(),
            at: 0,
            worker: Some(worker),
        })
    }
}

/// The worker: fills chunks until the source ends or fails, or the reader
/// is gone.
fn fill_chunks(mut source: impl Read, ready: &SyncSender<Vec<u8>>, recycled: &Receiver<Vec<u8>>) {
    loop {
        let mut chunk = recycled.try_recv().unwrap_or_default();
        chunk.resize(CHUNK, 0);
        let mut filled = 0;
        let mut ended = false;
        while filled < CHUNK {
            match source.read(&mut chunk[filled..]) {
                Ok(0) => {
                    ended = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                // The source keeps its own I/O error (see `reader::Source`);
                // for the reader, the data ends here.
                Err(_) => {
                    ended = true;
                    break;
                }
            }
        }
        chunk.truncate(filled);
        if (filled > 0 && ready.send(chunk).is_err()) || ended {
            return;
        }
    }
}

impl Read for ReadAhead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at == self.current.len() {
            let Some(next) = self.chunks.as_ref().and_then(|chunks| chunks.recv().ok()) else {
                return Ok(0);
            };
            let spent = std::mem::replace(&mut self.current, next);
            // A full queue only means the worker has enough buffers.
            let _ = self.spent.try_send(spent);
            self.at = 0;
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        // Closing the channel stops a worker that is still reading ahead.
        self.chunks = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out its bytes a few at a time, then fails.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.at == self.data.len() {
                return Err(io::Error::from_raw_os_error(libc::EIO));
            }
            let n = buf.len().min(7).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    #[test]
    fn every_byte_comes_in_order_and_a_failure_ends_the_data() {
        let data: Vec<u8> = (0..3 * CHUNK + 1234).map(|i| (i % 251) as u8).collect();
        let mut ahead = ReadAhead::spawn(Trickle {
            data: data.clone(),
            at: 0,
        })
        .unwrap_or_else(|_| panic!("no thread"));
        let mut out = Vec::new();
        ahead.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn a_reader_dropped_early_stops_the_worker() {
        let endless = io::repeat(1);
        let mut ahead = ReadAhead::spawn(endless).unwrap_or_else(|_| panic!("no thread"));
        let mut some = [0; 10];
        ahead.read_exact(&mut some).unwrap();
        drop(ahead); // joins: the test would hang if the worker went on
    }
}
