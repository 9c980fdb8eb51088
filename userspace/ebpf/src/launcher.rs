//! Starting the program of `sudo memray run --ebpf`: forked before any
//! runtime or thread of ours exists, held before `exec` until the probes are
//! attached to it, then run as the user who invoked sudo.
//!
//! Between `fork` and `exec` the child makes only system calls (async-signal
//! safe): everything it needs is prepared before the fork.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::Error;

/// The user a program runs as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups, as `initgroups` would set them.
    pub groups: Vec<u32>,
    pub name: String,
    pub home: PathBuf,
}

impl RunAs {
    /// The user who ran `sudo` (`SUDO_UID`, `SUDO_GID`), if we run under it.
    pub fn invoking_user() -> Result<Option<RunAs>, Error> {
        let read = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u32>().ok());
        match (read("SUDO_UID"), read("SUDO_GID")) {
            (Some(uid), Some(gid)) => RunAs::user(uid, Some(gid)).map(Some),
            _ => Ok(None),
        }
    }

    /// User `uid` from the password database, with `gid` as its group if given
    /// (else its login group) and its supplementary groups.
    pub fn user(uid: u32, gid: Option<u32>) -> Result<RunAs, Error> {
        let mut buffer = vec![0 as libc::c_char; 16 * 1024];
        // SAFETY: zeroed passwd is a valid out-parameter.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found = std::ptr::null_mut();
        // SAFETY: the buffers outlive the call; `found` points into them or is NULL.
        let status = unsafe {
            libc::getpwuid_r(
                uid,
                &mut entry,
                buffer.as_mut_ptr(),
                buffer.len(),
                &mut found,
            )
        };
        if status != 0 || found.is_null() {
            return Err(Error::Launch(format!("no user with uid {uid}")));
        }
        // SAFETY: getpwuid_r filled these with NUL-terminated strings in `buffer`.
        let (name, home) = unsafe { (CStr::from_ptr(entry.pw_name), CStr::from_ptr(entry.pw_dir)) };
        let gid = gid.unwrap_or(entry.pw_gid);
        let groups = group_list(name, gid)?;
        Ok(RunAs {
            uid,
            gid,
            groups,
            name: name.to_string_lossy().into_owned(),
            home: PathBuf::from(OsStr::from_bytes(home.to_bytes())),
        })
    }

    /// The environment variables that say who the user is.
    fn variables(&self) -> Vec<(&'static str, OsString)> {
        vec![
            ("HOME", self.home.clone().into_os_string()),
            ("USER", self.name.clone().into()),
            ("LOGNAME", self.name.clone().into()),
        ]
    }
}

fn group_list(name: &CStr, gid: u32) -> Result<Vec<u32>, Error> {
    let mut groups = vec![0 as libc::gid_t; 64];
    loop {
        let mut count = groups.len() as libc::c_int;
        // SAFETY: `groups` has room for `count` entries; getgrouplist writes at most that.
        let found =
            unsafe { libc::getgrouplist(name.as_ptr(), gid, groups.as_mut_ptr(), &mut count) };
        if found >= 0 {
            groups.truncate(count as usize);
            return Ok(groups);
        }
        if count as usize <= groups.len() {
            return Err(Error::Launch(format!("cannot list the groups of {name:?}")));
        }
        groups.resize(count as usize, 0);
    }
}

/// How a program ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgramExit {
    Exited(i32),
    Signaled(i32),
}

/// Where a held program's standard streams go.
pub enum ProgramOutput {
    /// Ours.
    Inherited,
    /// Nothing in, nothing out, its error output into `stderr` (a pipe):
    /// the live view has the terminal.
    Quiet { stderr: OwnedFd },
}

/// A started program held before `exec`.
pub struct HeldProgram {
    pid: u32,
    /// The executable, as found in `PATH`.
    path: PathBuf,
    pidfd: OwnedFd,
    /// Written once to let the child go on.
    go: Option<OwnedFd>,
    /// Closed by a successful `exec`; carries `errno` if it failed.
    exec_status: OwnedFd,
}

impl HeldProgram {
    /// Forks `program` (looked up in `PATH` if it has no `/`) with `args`,
    /// our environment and `output`; `run_as` drops to that user. Call
    /// before any thread or async runtime is started.
    pub fn start(
        program: &OsStr,
        args: &[OsString],
        run_as: Option<&RunAs>,
        output: ProgramOutput,
    ) -> Result<HeldProgram, Error> {
        let found = find_program(program)?;
        let path = c_string(found.clone().into_os_string())?;
        let argv_owned: Vec<CString> = std::iter::once(program.to_os_string())
            .chain(args.iter().cloned())
            .map(c_string)
            .collect::<Result<_, _>>()?;
        let envp_owned = environment(run_as)?;
        let argv = null_terminated(&argv_owned);
        let envp = null_terminated(&envp_owned);
        let (go_read, go_write) = pipe()?;
        let (status_read, status_write) = pipe()?;
        let identity = run_as.map(|user| (user.uid, user.gid, user.groups.clone()));
        let streams = match &output {
            ProgramOutput::Inherited => None,
            ProgramOutput::Quiet { stderr } => Some((dev_null()?, stderr.as_raw_fd())),
        };

        // SAFETY: the child only makes system calls until execve or _exit.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(Error::Io(std::io::Error::last_os_error()));
        }
        if pid == 0 {
            // SAFETY: in the child: async-signal-safe calls only, on data prepared above.
            unsafe {
                child(
                    go_read.as_raw_fd(),
                    status_write.as_raw_fd(),
                    identity.as_ref(),
                    streams
                        .as_ref()
                        .map(|(null, stderr)| (null.as_raw_fd(), *stderr)),
                    &path,
                    &argv,
                    &envp,
                )
            }
        }
        drop((go_read, status_write, streams, output));
        Ok(HeldProgram {
            pid: pid as u32,
            path: found,
            pidfd: pidfd_open(pid as u32).map_err(Error::Io)?,
            go: Some(go_write),
            exec_status: status_read,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The file it executes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Readable once the program has exited (for an async wait).
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// Lets the program run; fails if it could not be executed.
    pub fn release(&mut self) -> Result<(), Error> {
        let Some(go) = self.go.take() else {
            return Ok(());
        };
        // SAFETY: one byte from a live buffer to our pipe.
        unsafe { libc::write(go.as_raw_fd(), b"g".as_ptr().cast(), 1) };
        let mut errno = [0u8; 4];
        // SAFETY: reads into a live 4-byte buffer.
        let read =
            unsafe { libc::read(self.exec_status.as_raw_fd(), errno.as_mut_ptr().cast(), 4) };
        if read == 4 {
            let error = std::io::Error::from_raw_os_error(i32::from_ne_bytes(errno));
            return Err(Error::Launch(format!("cannot run the program: {error}")));
        }
        Ok(())
    }

    /// Whether the program has ended (not reaped: [`HeldProgram::wait`] tells how).
    pub fn has_ended(&self) -> bool {
        let mut poll = libc::pollfd {
            fd: self.pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, no wait.
        unsafe { libc::poll(&mut poll, 1, 0) == 1 }
    }

    /// Asks the program to end (SIGTERM), as memray ends the program of a
    /// live view left before it.
    pub fn terminate(&self) {
        // SAFETY: no memory arguments; the pidfd is the program's, valid
        // until it is reaped.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                libc::SIGTERM,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
    }

    /// Waits until the program ends.
    pub fn wait(&self) -> Result<ProgramExit, Error> {
        // SAFETY: zeroed siginfo_t is a valid out-parameter.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        loop {
            // SAFETY: `info` is a live out-parameter; the pidfd is ours.
            let status = unsafe {
                libc::waitid(
                    libc::P_PIDFD,
                    self.pidfd.as_raw_fd() as libc::id_t,
                    &mut info,
                    libc::WEXITED,
                )
            };
            if status == 0 {
                break;
            }
            let error = std::io::Error::last_os_error();
            if error.kind() != std::io::ErrorKind::Interrupted {
                return Err(Error::Io(error));
            }
        }
        // SAFETY: waitid filled a SIGCHLD siginfo.
        let code = unsafe { info.si_status() };
        Ok(match info.si_code {
            libc::CLD_EXITED => ProgramExit::Exited(code),
            _ => ProgramExit::Signaled(code),
        })
    }
}

/// The child between fork and exec: waits for the go byte, takes `quiet`'s
/// `/dev/null` as stdin and stdout and its pipe as stderr, becomes the
/// user, executes; reports errno through `status` on failure.
unsafe fn child(
    go: libc::c_int,
    status: libc::c_int,
    identity: Option<&(u32, u32, Vec<u32>)>,
    quiet: Option<(libc::c_int, libc::c_int)>,
    path: &CStr,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> ! {
    let fail = |status: libc::c_int| -> ! {
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        // SAFETY: writes 4 bytes of a live buffer, then ends the child without unwinding.
        unsafe {
            libc::write(status, errno.to_ne_bytes().as_ptr().cast(), 4);
            libc::_exit(127)
        }
    };
    let mut byte = 0u8;
    // SAFETY: system calls on descriptors and buffers prepared before the fork (the whole block).
    unsafe {
        libc::fcntl(status, libc::F_SETFD, libc::FD_CLOEXEC);
        if libc::read(go, (&raw mut byte).cast(), 1) != 1 {
            // The parent went away without letting us run.
            libc::_exit(127);
        }
        libc::close(go);
        if let Some((null, stderr)) = quiet {
            if libc::dup2(null, 0) < 0 || libc::dup2(null, 1) < 0 || libc::dup2(stderr, 2) < 0 {
                fail(status);
            }
        }
        if let Some((uid, gid, groups)) = identity {
            if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                || libc::setgid(*gid) != 0
                || libc::setuid(*uid) != 0
            {
                fail(status);
            }
        }
        libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
    }
    fail(status)
}

/// The interpreter executable that `program` (looked up in `PATH` if it has
/// no `/`) runs: itself if it is an ELF file, else the `sys.executable` it
/// reports when run as `run_as`. A launcher script such as pyenv's shims
/// execs the interpreter only after other programs: started directly, the
/// interpreter is held and probed from its first instruction.
pub fn resolve_interpreter(program: &OsStr, run_as: Option<&RunAs>) -> Result<PathBuf, Error> {
    use std::os::unix::process::CommandExt;
    let found = find_program(program)?;
    if !is_executable(&found) {
        return Err(Error::Launch(format!(
            "{}: no such program",
            found.display()
        )));
    }
    if is_elf(&found) {
        return Ok(found);
    }
    let mut command = std::process::Command::new(&found);
    command
        .args(["-c", "import sys; sys.stdout.write(sys.executable)"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    if let Some(user) = run_as {
        // Dropping from root, std clears the supplementary groups too.
        command.uid(user.uid).gid(user.gid).envs(user.variables());
    }
    let failed = |why: String| {
        Error::Launch(format!(
            "{} is a script, and it did not name the Python it runs ({why})",
            found.display()
        ))
    };
    let output = command.output().map_err(|e| failed(e.to_string()))?;
    let executable = PathBuf::from(OsString::from_vec(output.stdout));
    if !output.status.success() || !executable.is_absolute() || !is_elf(&executable) {
        return Err(failed(format!("`-c sys.executable` gave {executable:?}")));
    }
    Ok(executable)
}

/// Whether `path` starts with the ELF magic number.
fn is_elf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path).is_ok_and(|mut file| file.read_exact(&mut magic).is_ok())
        && &magic == b"\x7fELF"
}

fn find_program(program: &OsStr) -> Result<PathBuf, Error> {
    if program.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(program));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| Error::Launch(format!("{}: not found in PATH", program.to_string_lossy())))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Our environment, with `HOME`, `USER` and `LOGNAME` of `run_as`.
fn environment(run_as: Option<&RunAs>) -> Result<Vec<CString>, Error> {
    let own = run_as.map(RunAs::variables).unwrap_or_default();
    std::env::vars_os()
        .filter(|(name, _)| !own.iter().any(|(own, _)| name == own))
        .chain(own.iter().map(|(name, value)| (name.into(), value.clone())))
        .map(|(name, value)| c_string([name, value].join(OsStr::new("="))))
        .collect()
}

fn c_string(value: OsString) -> Result<CString, Error> {
    CString::new(value.into_vec())
        .map_err(|_| Error::Launch("an argument contains a NUL byte".into()))
}

fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

fn pipe() -> Result<(OwnedFd, OwnedFd), Error> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Error::Io(std::io::Error::last_os_error()));
    }
    // SAFETY: both descriptors are new and ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn dev_null() -> Result<OwnedFd, Error> {
    // SAFETY: a constant NUL-terminated path; the result is checked.
    let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(Error::Io(std::io::Error::last_os_error()));
    }
    // SAFETY: a new descriptor that we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A descriptor of process `pid` that becomes readable when it exits.
pub fn pidfd_open(pid: u32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open has no memory arguments.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if pidfd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new descriptor that we own.
    Ok(unsafe { OwnedFd::from_raw_fd(pidfd as i32) })
}
