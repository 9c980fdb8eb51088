//! Errors of the std-side API, each one line that says what to do about it.

use std::fmt;
use std::path::PathBuf;

use crate::layout::LayoutError;

#[derive(Debug)]
pub enum Error {
    NoSuchProcess {
        pid: i32,
    },
    PermissionDenied {
        pid: i32,
    },
    NotPython {
        pid: i32,
    },
    UnknownVersion {
        binary: PathBuf,
    },
    Layout(LayoutError),
    Elf {
        binary: PathBuf,
        message: String,
    },
    Unreadable {
        what: &'static str,
        address: u64,
    },
    /// In process: the symbols of a running CPython are not visible.
    NoInterpreterHere,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoSuchProcess { pid } => write!(f, "no process with pid {pid}"),
            Error::PermissionDenied { pid } => write!(
                f,
                "permission denied reading the memory of process {pid}: run as root or \
                 the same user with CAP_SYS_PTRACE, or set kernel.yama.ptrace_scope=0"
            ),
            Error::NotPython { pid } => write!(
                f,
                "process {pid} is not a CPython process: no mapped python executable or \
                 libpython exports _PyRuntime"
            ),
            Error::UnknownVersion { binary } => write!(
                f,
                "cannot tell the CPython version of {}: it has no Py_Version symbol and \
                 its name carries no version",
                binary.display()
            ),
            Error::Layout(err) => write!(f, "{err}"),
            Error::Elf { binary, message } => {
                write!(f, "cannot read ELF file {}: {message}", binary.display())
            }
            Error::Unreadable { what, address } => write!(
                f,
                "cannot read {what} at {address:#x}: the process exited or changed under us; \
                 try again"
            ),
            Error::NoInterpreterHere => f.write_str(
                "no CPython interpreter in this process (_PyRuntime is not visible to dlsym)",
            ),
        }
    }
}

impl std::error::Error for Error {}

impl From<LayoutError> for Error {
    fn from(err: LayoutError) -> Error {
        Error::Layout(err)
    }
}
