//! `memray attach PID` and `memray detach PID` without `--ebpf`, on CPython
//! 3.14+: a short script runs inside the process through `sys.remote_exec`
//! (PEP 768, called from the process's own interpreter executable) and
//! starts or stops a `memray.Tracker` there (the package's `memray._attach`,
//! which must be importable in the process). The script reports through a
//! status file in a private directory: `tracking`, `stopped` or
//! `error: <one line>`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::error::{CliError, CliResult};

/// How long the process may take to reach a point where it runs the script
/// (the interpreter runs it between bytecodes of its main thread).
const SCRIPT_PATIENCE: Duration = Duration::from_secs(10);
/// How often the commands look at the process and the status file.
pub const POLL: Duration = Duration::from_millis(50);

/// What `attach` asks the tracker in the process for.
pub struct TrackerOptions {
    pub output: PathBuf,
    pub force: bool,
    pub native: bool,
    pub trace_python_allocators: bool,
    pub follow_fork: bool,
    pub aggregate: bool,
    pub compress: bool,
}

/// A CPython 3.14+ process that scripts can be sent to.
pub struct Target {
    pid: u32,
    /// The process's interpreter executable, which calls `sys.remote_exec`.
    interpreter: PathBuf,
    /// Where the scripts and status files go (removed when dropped).
    control: PathBuf,
    scripts_sent: u32,
}

impl Target {
    /// Checks that `pid` is a CPython process recent enough; `command` names
    /// the subcommand in messages.
    pub fn find(command: &str, pid: u32) -> Result<Target, CliError> {
        let process = python_frames::PythonProcess::attach(pid as i32)
            .map_err(|e| CliError::new(format!("memray {command}: {e}")))?;
        let minor = process.layout().minor;
        if minor < 14 {
            return Err(CliError::new(format!(
                "memray {command}: process {pid} runs CPython 3.{minor}; without a debugger \
                 this needs CPython 3.14+ (sys.remote_exec): use `sudo memray attach --ebpf {pid}`"
            )));
        }
        let interpreter = std::fs::read_link(format!("/proc/{pid}/exe"))
            .map_err(|e| CliError::new(format!("memray {command}: process {pid}: {e}")))?;
        let control =
            std::env::temp_dir().join(format!("memray-{command}-{pid}-{}", std::process::id()));
        std::fs::create_dir(&control)
            .and_then(|()| {
                std::fs::set_permissions(
                    &control,
                    std::os::unix::fs::PermissionsExt::from_mode(0o700),
                )
            })
            .map_err(|e| CliError::new(format!("memray {command}: {}: {e}", control.display())))?;
        Ok(Target {
            pid,
            interpreter,
            control,
            scripts_sent: 0,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Starts tracking; returns the status file that says when it stopped.
    pub fn start_tracker(&mut self, options: &TrackerOptions) -> Result<PathBuf, CliError> {
        let status = self.control.join("attach.status");
        let call = format!(
            "_attach.start({status}, {output}, force={force}, native={native}, \
             trace_python_allocators={trace}, follow_fork={fork}, aggregate={aggregate}, \
             compress={compress})",
            status = python_string(&status),
            output = python_string(&options.output),
            force = python_bool(options.force),
            native = python_bool(options.native),
            trace = python_bool(options.trace_python_allocators),
            fork = python_bool(options.follow_fork),
            aggregate = python_bool(options.aggregate),
            compress = python_bool(options.compress),
        );
        self.run("attach", &status, &call, "tracking")?;
        Ok(status)
    }

    /// Stops the tracking a previous `start_tracker` (of any command) began.
    pub fn stop_tracker(&mut self, command: &str) -> CliResult {
        let status = self.control.join(format!("{command}.status"));
        let call = format!("_attach.stop({})", python_string(&status));
        self.run(command, &status, &call, "stopped")
    }

    /// Sends a script that imports the package and makes `call`, and waits
    /// until `status` says `expected`.
    fn run(&mut self, command: &str, status: &Path, call: &str, expected: &str) -> CliResult {
        self.scripts_sent += 1;
        let script = self
            .control
            .join(format!("{command}-{}.py", self.scripts_sent));
        let source = format!(
            "try:\n\
             \x20   from memray import _attach\n\
             except ImportError as error:\n\
             \x20   import sys\n\
             \x20   with open({status}, 'w') as file:\n\
             \x20       file.write('error: memray-rs is not importable in process {pid} (%s): \
             install it into the environment of %s' % (error, sys.executable))\n\
             else:\n\
             \x20   {call}\n",
            status = python_string(status),
            pid = self.pid,
        );
        let fail = |message: String| CliError::new(format!("memray {command}: {message}"));
        std::fs::write(&script, source).map_err(|e| fail(format!("{}: {e}", script.display())))?;
        let sent = Command::new(&self.interpreter)
            .args([
                "-I",
                "-c",
                "import sys; sys.remote_exec(int(sys.argv[1]), sys.argv[2])",
            ])
            .arg(self.pid.to_string())
            .arg(&script)
            .output()
            .map_err(|e| fail(format!("{}: {e}", self.interpreter.display())))?;
        if !sent.status.success() {
            let stderr = String::from_utf8_lossy(&sent.stderr);
            let reason = stderr.lines().last().unwrap_or("sys.remote_exec failed");
            return Err(fail(format!("process {}: {reason}", self.pid)));
        }
        let deadline = Instant::now() + SCRIPT_PATIENCE;
        loop {
            if let Some(said) = read_status(status) {
                if said == expected {
                    return Ok(());
                }
                let said = said.strip_prefix("error: ").unwrap_or(&said);
                return Err(fail(said.to_owned()));
            }
            if !is_running(self.pid) {
                return Err(fail(format!("process {} exited", self.pid)));
            }
            if Instant::now() > deadline {
                return Err(fail(format!(
                    "process {} did not run the script within {} s (is its main thread \
                     running Python code?)",
                    self.pid,
                    SCRIPT_PATIENCE.as_secs()
                )));
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.control);
    }
}

/// SIGINT and SIGTERM, blocked while the command waits, so that they end the
/// wait (and the tracking) instead of the command.
pub struct Signals {
    set: libc::sigset_t,
}

impl Signals {
    pub fn block() -> Signals {
        // SAFETY: a local set filled before use; blocking signals in this thread.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGINT);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            Signals { set }
        }
    }

    /// Waits at most `timeout`; whether one of the signals arrived.
    pub fn wait(&self, timeout: Duration) -> bool {
        let timeout = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: a valid set and timeout; no siginfo wanted.
        unsafe { libc::sigtimedwait(&self.set, std::ptr::null_mut(), &timeout) > 0 }
    }
}

/// The status file's word, once the script has written it.
pub fn read_status(status: &Path) -> Option<String> {
    let text = std::fs::read_to_string(status).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Whether process `pid` still exists (and is not a zombie).
pub fn is_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
            Some(state != 'Z' && state != 'X')
        })
        .unwrap_or(false)
}

fn python_bool(value: bool) -> &'static str {
    if value {
        "True"
    } else {
        "False"
    }
}

/// A Python string literal for `path`.
fn python_string(path: &Path) -> String {
    let mut literal = String::from("\"");
    for c in path.to_string_lossy().chars() {
        match c {
            '\\' => literal.push_str("\\\\"),
            '"' => literal.push_str("\\\""),
            c if c.is_control() => literal.push_str(&format!("\\U{:08x}", c as u32)),
            c => literal.push(c),
        }
    }
    literal.push('"');
    literal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_literals() {
        assert_eq!(python_string(Path::new("/tmp/a b")), "\"/tmp/a b\"");
        assert_eq!(python_string(Path::new("/tmp/\"x\\")), "\"/tmp/\\\"x\\\\\"");
        assert_eq!(python_string(Path::new("/t\nx")), "\"/t\\U0000000ax\"");
    }
}
