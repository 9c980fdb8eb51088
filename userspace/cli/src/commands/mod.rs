//! One module per subcommand; each exposes `Args` (its flags) and `run`.

pub mod attach;
pub mod capture;
pub mod detach;
pub mod diff;
pub mod dump_stacks;
#[cfg(target_os = "linux")]
pub mod ebpf_capture;
#[cfg(target_os = "linux")]
pub mod ebpf_live;
pub mod flamegraph;
pub mod inputs;
pub mod live;
pub mod parse;
#[cfg(target_os = "linux")]
pub mod remote_exec;
pub mod report;
pub mod run;
pub mod selection;
pub mod stats;
pub mod summary;
pub mod table;
pub mod transform;
pub mod tree;

/// `--ebpf` where there is no eBPF: it is a feature of the Linux kernel.
#[cfg(not(target_os = "linux"))]
pub fn ebpf_is_linux_only(command: &str) -> crate::error::CliError {
    crate::error::CliError::new(format!(
        "memray {command}: --ebpf is Linux-only (eBPF is a feature of the Linux kernel)"
    ))
}

/// Attaching without `--ebpf` (a tracker started through
/// `sys.remote_exec`) is only written for Linux so far.
#[cfg(not(target_os = "linux"))]
pub fn remote_tracking_is_linux_only(command: &str) -> crate::error::CliError {
    crate::error::CliError::new(format!(
        "memray {command}: without --ebpf, only on Linux in memray-rs so far"
    ))
}
