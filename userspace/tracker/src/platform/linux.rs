//! Linux: the hooks are exported under the C names (`hooks`), so there is no
//! table.

/// Whether the loader inserted this library: `LD_PRELOAD` is honoured (or the
/// process is setuid, which nobody profiles), so nothing is checked.
pub fn loader_refusal() -> Option<String> {
    None
}
