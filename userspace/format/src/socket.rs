//! memray's `SocketSink`: the record stream of a live session, sent to the
//! one reader connected over TCP. Records are gathered in a buffer and sent
//! when it fills, when the writer flushes (every memory record, 10 ms) and
//! the last send is [`FLUSH_EVERY`] old, and at the end. Each send wakes the
//! reader, which on a busy machine takes the CPU from the program: few large
//! sends cost the program less than many small ones.

use std::io;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::sink::Sink;

/// Bytes gathered before a send.
const BUFFER: usize = 1 << 20;
/// How stale a flush may leave the reader's view (it redraws at most 10
/// times a second).
const FLUSH_EVERY: Duration = Duration::from_millis(100);

pub struct SocketSink {
    stream: TcpStream,
    buf: Vec<u8>,
    /// `None` until the first send (the header goes at the first flush).
    last_send: Option<Instant>,
}

impl SocketSink {
    pub fn new(stream: TcpStream) -> SocketSink {
        // Small records should not wait for the peer's acknowledgements.
        let _ = stream.set_nodelay(true);
        SocketSink {
            stream,
            buf: Vec::with_capacity(BUFFER),
            last_send: None,
        }
    }

    /// Sends the buffer. `MSG_NOSIGNAL`: a reader that went away is an error
    /// for the recorder to report, never a SIGPIPE that kills the program.
    fn send_buffer(&mut self) -> io::Result<()> {
        self.last_send = Some(Instant::now());
        let mut sent = 0;
        while sent < self.buf.len() {
            let rest = &self.buf[sent..];
            // SAFETY: sending from a live slice on our own connected socket.
            let n = unsafe {
                libc::send(
                    self.stream.as_raw_fd(),
                    rest.as_ptr().cast(),
                    rest.len(),
                    libc::MSG_NOSIGNAL,
                )
            };
            if n < 0 {
                let error = io::Error::last_os_error();
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                self.buf.clear();
                return Err(disconnected(error));
            }
            sent += n as usize;
        }
        self.buf.clear();
        Ok(())
    }
}

/// A failed send, in words that say what happened.
fn disconnected(error: io::Error) -> io::Error {
    match error.kind() {
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => {
            io::Error::new(error.kind(), "the live reader disconnected")
        }
        _ => error,
    }
}

impl Sink for SocketSink {
    #[inline]
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= BUFFER {
            self.send_buffer()?;
        }
        Ok(())
    }

    /// A stream cannot go back: the reader has the header sent at the start.
    fn rewrite_header(&mut self, _header: &[u8]) -> io::Result<()> {
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self
            .last_send
            .is_some_and(|last| last.elapsed() < FLUSH_EVERY)
        {
            return Ok(());
        }
        self.send_buffer()
    }

    fn finish(&mut self) -> io::Result<()> {
        self.send_buffer()
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::time::Duration;

    use super::*;
    use crate::{Allocator, CaptureReader, CaptureWriter, Header, Record, StreamingWriter};

    fn connected() -> (SocketSink, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let reader = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        reader
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        (SocketSink::new(listener.accept().unwrap().0), reader)
    }

    fn allocations(reader: &mut CaptureReader) -> usize {
        let mut count = 0;
        while let Some(record) = reader.next_record().unwrap() {
            count += matches!(record, Record::Allocation(_)) as usize;
        }
        count
    }

    #[test]
    fn a_followed_stream_tells_no_data_yet_from_its_end() {
        let (sink, stream) = connected();
        let mut writer = StreamingWriter::new(sink, Header::default()).unwrap();
        writer.flush().unwrap();
        let mut reader = CaptureReader::follow(stream).unwrap();
        assert_eq!(allocations(&mut reader), 0);
        assert!(reader.is_waiting() && !reader.is_truncated());
        for i in 0..10_000 {
            writer
                .write_allocation(1, 0x1000 + i * 16, 16, Allocator::Malloc, 0)
                .unwrap();
        }
        std::thread::sleep(FLUSH_EVERY);
        writer.flush().unwrap();
        let mut seen = 0;
        while seen < 10_000 {
            seen += allocations(&mut reader);
            assert!(reader.is_waiting(), "ended after {seen} allocations");
        }
        assert_eq!(seen, 10_000);
        // Closed without a trailer: cut off, not waiting.
        drop(writer);
        assert_eq!(allocations(&mut reader), 0);
        assert!(reader.is_truncated() && !reader.is_waiting());
    }

    #[test]
    fn flushes_are_paced_and_the_end_sends_everything() {
        let (sink, stream) = connected();
        let mut writer = StreamingWriter::new(sink, Header::default()).unwrap();
        // The first flush sends the header at once.
        writer.flush().unwrap();
        let sent = Instant::now();
        let mut reader = CaptureReader::follow(stream).unwrap();
        writer
            .write_allocation(1, 0x1000, 16, Allocator::Malloc, 0)
            .unwrap();
        writer.flush().unwrap();
        if sent.elapsed() < FLUSH_EVERY {
            // Too soon after the last send: kept for the next one.
            assert_eq!(allocations(&mut reader), 0);
        }
        writer.finish(0).unwrap();
        let mut seen = allocations(&mut reader);
        while reader.is_waiting() {
            seen += allocations(&mut reader);
        }
        assert_eq!(seen, 1);
        assert!(!reader.is_truncated(), "the trailer came");
    }

    #[test]
    fn a_reader_that_went_away_is_an_error_not_a_signal() {
        let (sink, stream) = connected();
        let mut writer = StreamingWriter::new(sink, Header::default()).unwrap();
        drop(stream);
        let error = (0..1_000_000u64)
            .find_map(|i| {
                writer
                    .write_allocation(1, i * 16, 16, Allocator::Malloc, 0)
                    .and_then(|()| writer.flush())
                    .err()
            })
            .expect("the send fails once the peer is gone");
        assert_eq!(error.to_string(), "the live reader disconnected");
    }
}
