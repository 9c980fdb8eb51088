//! The processes the system benchmark starts: resident Python processes
//! (bench/workloads/resident.py), `memray attach --ebpf --all` over them,
//! and how each is stopped.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use memray_tests::interpreters::Interpreter;

use crate::bench::measure::last_line;

/// How long a process asked to stop may take (memray finishes its captures).
const STOP_LIMIT: Duration = Duration::from_secs(60);
/// How long `attach --all` may take to attach.
const ATTACH_LIMIT: Duration = Duration::from_secs(60);

/// A process this benchmark started, killed on drop if still running (its
/// stdin, when piped, closes with it: residents end at that).
pub struct Owned(pub Child);

impl Drop for Owned {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// `count` bench/workloads/resident.py processes with `args`, spread over
/// `pythons` in turn, each ready (its interpreter running).
pub fn residents(
    pythons: &[Interpreter],
    count: usize,
    script: &Path,
    args: &[&str],
) -> Result<Vec<Owned>, String> {
    let mut started = Vec::new();
    for python in pythons.iter().cycle().take(count) {
        let child = Command::new(&python.path)
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", python.path.display()))?;
        started.push(Owned(child));
    }
    for Owned(child) in &mut started {
        let stdout = child.stdout.as_mut().ok_or("resident without stdout")?;
        await_lines(&mut BufReader::new(stdout), "ready", 1)?;
    }
    Ok(started)
}

/// Reads `output` until `count` lines that start with `prefix` have come.
pub fn await_lines(output: &mut impl BufRead, prefix: &str, count: usize) -> Result<(), String> {
    let mut line = String::new();
    let mut seen = 0;
    while seen < count {
        line.clear();
        match output.read_line(&mut line) {
            Ok(0) | Err(_) => return Err(format!("ended before printing {prefix:?}")),
            Ok(_) => seen += usize::from(line.starts_with(prefix)),
        }
    }
    Ok(())
}

/// Waits for `child` to end, for [`STOP_LIMIT`] at most (then kills it).
pub fn wait_for(child: &mut Child) -> Result<ExitStatus, String> {
    let deadline = Instant::now() + STOP_LIMIT;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| format!("wait: {e}"))? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "still running {} s after being asked to stop: killed",
                STOP_LIMIT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends SIGINT (Ctrl-C), then [`wait_for`].
pub fn interrupt(child: &mut Child) -> Result<ExitStatus, String> {
    // SAFETY: a plain signal to our own child, not yet waited for (so its
    // pid is not reused).
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    wait_for(child)
}

/// `memray attach --ebpf --all --verbose --name REGEX -o DIR`, running.
pub struct AttachAll {
    child: Owned,
    stderr: File,
    dir: PathBuf,
    launched: Instant,
}

impl AttachAll {
    /// Launches it into a fresh `dir`.
    pub fn launch(memray: &Path, name: &str, dir: &Path) -> Result<AttachAll, String> {
        let _ = std::fs::remove_dir_all(dir);
        let stderr = tempfile::tempfile().map_err(|e| format!("temporary file: {e}"))?;
        let launched = Instant::now();
        let child = Command::new(memray)
            .args([
                "attach",
                "--ebpf",
                "--all",
                "--verbose",
                "--name",
                name,
                "-o",
            ])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr.try_clone().map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", memray.display()))?;
        Ok(AttachAll {
            child: Owned(child),
            stderr,
            dir: dir.to_path_buf(),
            launched,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    pub fn launched(&self) -> Instant {
        self.launched
    }

    /// The time from the launch until `count` captures exist: memray
    /// creates a process's capture once its probes are placed.
    pub fn attached(&mut self, count: usize) -> Result<Duration, String> {
        let deadline = self.launched + ATTACH_LIMIT;
        loop {
            let found = captures(&self.dir);
            if found >= count {
                return Ok(self.launched.elapsed());
            }
            let ended = self.child.0.try_wait().map_err(|e| format!("wait: {e}"))?;
            if ended.is_some() || Instant::now() > deadline {
                return Err(format!(
                    "{found} of {count} captures after {:.1} s: {}",
                    self.launched.elapsed().as_secs_f64(),
                    self.last_error_line()
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Stops it as Ctrl-C does; its own attach time (its `--verbose` line).
    pub fn stop(mut self) -> Result<Duration, String> {
        let status = interrupt(&mut self.child.0)?;
        if !status.success() {
            return Err(format!("{status}: {}", self.last_error_line()));
        }
        let mut errors = String::new();
        let _ = self.stderr.rewind();
        let _ = self.stderr.read_to_string(&mut errors);
        own_attach_time(&errors).ok_or_else(|| "no attach time in its --verbose output".into())
    }

    fn last_error_line(&self) -> String {
        self.stderr
            .try_clone()
            .map_or_else(|e| e.to_string(), last_line)
    }
}

/// The captures in `dir` so far.
fn captures(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|entry| entry.file_name().to_string_lossy().ends_with(".bin"))
            .count()
    })
}

/// "memray attach: found and attached the running processes in 0.123 s"
fn own_attach_time(errors: &str) -> Option<Duration> {
    let seconds = errors
        .lines()
        .find_map(|line| {
            line.strip_prefix("memray attach: found and attached the running processes in ")
        })?
        .strip_suffix(" s")?
        .parse()
        .ok()?;
    Some(Duration::from_secs_f64(seconds))
}
