//! What can go wrong in the eBPF mode, each in one line.

use std::path::PathBuf;

use aya::programs::ProgramError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("this memray was built without eBPF support (MEMRAY_SKIP_EBPF was set)")]
    NotBuilt,
    #[error("the eBPF mode needs root, or the CAP_BPF and CAP_PERFMON capabilities: run it with sudo (sudo memray run --ebpf …)")]
    Privileges,
    #[error("pid must be positive, got {0}")]
    InvalidPid(i32),
    #[error("process {pid}: {what}")]
    Process { pid: u32, what: String },
    #[error("{}: no function {symbol}", library.display())]
    Symbol { library: PathBuf, symbol: String },
    #[error("process {0} is already attached")]
    AlreadyAttached(u32),
    #[error("process {0} is not attached")]
    NotAttached(u32),
    #[error("cannot load the eBPF object: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("eBPF program {name}: {source}")]
    Program {
        name: &'static str,
        source: ProgramError,
    },
    #[error("the eBPF object has no {0}")]
    Missing(&'static str),
    #[error("eBPF map: {0}")]
    Map(#[from] aya::maps::MapError),
    #[error("{0}")]
    Tracepoint(String),
    /// Loading or placing the uprobe programs ([`crate::uprobe_multi`]).
    #[error("{0}")]
    Probes(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Writing a capture (its file or its live reader) failed: the
    /// recording stops, the program goes on.
    #[error("{0}")]
    Capture(std::io::Error),
    #[error("{0}")]
    Launch(String),
}
