//! The compiled probes, embedded by build.rs (absent when the build skipped them).

#[cfg(memray_ebpf_built)]
pub static PROBES: Option<&[u8]> = Some(aya::include_bytes_aligned!(concat!(
    env!("OUT_DIR"),
    "/memray-ebpf-probes"
)));

#[cfg(not(memray_ebpf_built))]
pub static PROBES: Option<&[u8]> = None;
