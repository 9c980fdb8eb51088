//! memray's live mode, reader side: follow a tracked program's capture over
//! TCP ([`connect`], [`Feed`]) and show its heap in the terminal ([`show`]).
//!
//! * `snapshot`: the stream folded into the allocations alive now, the heap
//!   size, its peak and history, each live stack rendered once.
//! * `view`: what the user chose to see (sort, thread, merge, pause,
//!   scroll) and the table rows that follow; plain code, tested directly.
//! * `feed`: the reader thread that publishes snapshots.
//! * `tui`: the ratatui shell that draws them and reads the keys.

mod feed;
mod snapshot;
mod tui;
mod view;

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

pub use feed::Feed;
pub use snapshot::{Aggregator, End, LiveGroup, Location, Snapshot};
pub use tui::show;
pub use view::{Action, Row, SortBy, View};

/// How long [`connect`] keeps trying.
pub const CONNECT_PATIENCE: Duration = Duration::from_secs(3);

/// Connects to a live session on this machine's `port`, retrying for
/// [`CONNECT_PATIENCE`] (the tracked program may still be starting).
pub fn connect(port: u16) -> Result<TcpStream, String> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + CONNECT_PATIENCE;
    loop {
        match TcpStream::connect(address) {
            Ok(stream) => return Ok(stream),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Err(error) => {
                return Err(format!(
                    "Could not connect to a live session on port {port}: {error}"
                ))
            }
        }
    }
}
