//! `--ebpf --live` (`run` and `attach`): the eBPF recording streams to the
//! live view in this same process. The recording runs on its own thread and
//! stops when the process exits or the view is left, whichever comes first:
//! it waits on an epoll set holding both the process's pidfd and a pipe that
//! the view closes, so the recording's own loop needs no new way to stop.

use std::io::{self, PipeReader};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::thread;

use memray_ebpf::{Follow, OnSignal, Recording, Session};
use memray_recorder::{describe_os_error, CaptureSettings, LiveListener};

use crate::commands::ebpf_capture::{self, Recorded};
use crate::error::CliError;

/// What is recorded and shown: process `pid`, which has ended once `exited`
/// is readable.
pub struct Watched<'a> {
    pub pid: u32,
    pub exited: BorrowedFd<'a>,
    pub settings: CaptureSettings,
    /// Whether it is a program `run --ebpf` started (held at its start).
    pub starting: bool,
    pub follow: Follow,
}

/// Shows the live view of `watched` until it is left or the process ends;
/// the recording's outcome (its warnings printed by `memray command`).
pub fn watch(
    command: &str,
    watched: Watched<'_>,
    session: Session,
    verbose: bool,
) -> Result<Recorded, CliError> {
    let failed =
        |e: io::Error| CliError::new(format!("memray {command}: {}", describe_os_error(&e)));
    let Watched {
        pid,
        exited,
        mut settings,
        starting,
        follow,
    } = watched;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(failed)?;
    // Waits in the listener's backlog until the recorder accepts it.
    let reader = TcpStream::connect(listener.local_addr().map_err(failed)?).map_err(failed)?;
    settings.live = Some(LiveListener::new(listener));
    let (view_left, view_open) = io::pipe().map_err(failed)?;
    let stop = either_readable(exited, &view_left).map_err(failed)?;
    let feed = memray_live::Feed::start(reader).map_err(failed)?;
    thread::scope(|scope| {
        let recording = Recording {
            pid,
            exited: stop.as_fd(),
            settings,
            duration: None,
            // The view has the terminal: Ctrl-C is a key there.
            on_signal: OnSignal::Stop,
            starting,
            follow,
        };
        let recorded =
            scope.spawn(move || ebpf_capture::record(command, recording, session, None, verbose));
        let shown = memray_live::show(&feed).map_err(failed);
        drop(view_open);
        let recorded = recorded.join().unwrap_or_else(|_| {
            Err(CliError::new(format!(
                "memray {command}: the recording failed"
            )))
        });
        shown.and(recorded)
    })
}

/// An epoll descriptor readable once either `a` or `b` is.
fn either_readable(a: BorrowedFd<'_>, b: &PipeReader) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the result is checked before it is owned.
    let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if epoll < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor we just created and nothing else owns.
    let epoll = unsafe { OwnedFd::from_raw_fd(epoll) };
    for fd in [a.as_raw_fd(), b.as_raw_fd()] {
        let mut event = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: fd as u64,
        };
        // SAFETY: both descriptors are open for the call; `event` is valid.
        if unsafe { libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(epoll)
}
