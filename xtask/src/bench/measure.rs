//! One timed run of a command: wall time and peak RSS (from wait4's rusage).

use std::ffi::OsString;
use std::fs::File;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A benchmarked command; its stdout is discarded.
#[derive(Debug, Clone)]
pub struct BenchCommand {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

impl BenchCommand {
    pub fn new(
        program: impl Into<PathBuf>,
        args: impl IntoIterator<Item = impl Into<OsString>>,
    ) -> Self {
        BenchCommand {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
        }
    }

    pub fn display(&self) -> String {
        std::iter::once(self.program.as_os_str())
            .chain(self.args.iter().map(OsString::as_os_str))
            .map(|part| part.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub wall: Duration,
    pub peak_rss_kib: u64,
}

/// Runs `command` once. A failure comes back as one line: how it ended and
/// the last line it wrote to stderr.
pub fn measure(command: &BenchCommand) -> Result<Sample, String> {
    let stderr_file = tempfile::tempfile().map_err(|e| format!("temporary file: {e}"))?;
    let start = Instant::now();
    let child = Command::new(&command.program)
        .args(&command.args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr_file.try_clone().map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", command.program.display()))?;
    let (status, usage) = wait_with_usage(child.id())?;
    let wall = start.elapsed();
    if !status.success() {
        return Err(format!("{status}: {}", last_line(stderr_file)));
    }
    Ok(Sample {
        wall,
        // Linux reports ru_maxrss in KiB.
        peak_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
    })
}

fn wait_with_usage(pid: u32) -> Result<(ExitStatus, libc::rusage), String> {
    let pid = libc::pid_t::try_from(pid).map_err(|e| e.to_string())?;
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to locals; `pid` is a child we spawned and
        // have not waited for.
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if rc == pid {
            return Ok((ExitStatus::from_raw(status), usage));
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("wait4: {error}"));
        }
    }
}

/// The last non-blank line of a command's captured output.
pub fn last_line(mut file: File) -> String {
    use std::io::{Read, Seek};
    let mut text = String::new();
    let _ = file
        .rewind()
        .and_then(|()| file.read_to_string(&mut text).map(drop));
    text.lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("(no output on stderr)")
        .trim()
        .to_string()
}

/// The median of `key` over `items` (NaN when there are none).
pub fn median_by<T>(items: &[T], key: impl Fn(&T) -> f64) -> f64 {
    let mut values: Vec<f64> = items.iter().map(key).collect();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}
