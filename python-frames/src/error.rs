//! Errors of the std-side API, each one line that says what to do about it.

use std::path::PathBuf;

use crate::layout::LayoutError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no process with pid {pid}")]
    NoSuchProcess { pid: i32 },
    #[error(
        "permission denied reading the memory of process {pid}: {}",
        crate::platform::PERMISSION_HINT
    )]
    PermissionDenied { pid: i32 },
    #[error(
        "process {pid} is not a CPython process: no mapped python executable or \
         libpython exports _PyRuntime"
    )]
    NotPython { pid: i32 },
    #[error(
        "cannot tell the CPython version of {}: it has no Py_Version symbol and \
         its name carries no version",
        binary.display()
    )]
    UnknownVersion { binary: PathBuf },
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(
        "cannot read {} file {}: {message}",
        crate::platform::EXECUTABLE_FORMAT,
        binary.display()
    )]
    Elf { binary: PathBuf, message: String },
    #[error(
        "cannot read {what} at {address:#x}: the process exited or changed under us; \
         try again"
    )]
    Unreadable { what: &'static str, address: u64 },
    #[error("cannot find the allocator tables of {}: {why}", binary.display())]
    NoAllocatorTables { binary: PathBuf, why: String },
    #[error(
        "the allocator tables of process {pid} (at {at:#x}) do not look like CPython's: \
         not where this version keeps them, or wrapped by another tool"
    )]
    AllocatorTables { pid: i32, at: u64 },
    /// In process: the symbols of a running CPython are not visible.
    #[error("no CPython interpreter in this process (_PyRuntime is not visible to dlsym)")]
    NoInterpreterHere,
}
