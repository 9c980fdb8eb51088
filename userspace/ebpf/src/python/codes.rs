//! Naming the code objects of probe-walked stacks by reading them from the
//! process, cached by address and fingerprint: an address reused by a new
//! code object carries another fingerprint, so it is never given the old name.

use std::collections::HashMap;
use std::sync::Arc;

use memray_ebpf_common::python_stack::StackFrame;
use memray_recorder::CodeNamer;
use python_frames::fingerprint::CodeFingerprint;
use python_frames::{read_code, CodeInfo, Layout, RemoteMemory};

/// The code objects of one process.
pub struct RemoteCodes {
    memory: RemoteMemory,
    layout: Layout,
    named: HashMap<(u64, u64), Arc<CodeInfo>>,
    /// The fingerprint each address had in the latest stack that held it.
    current: HashMap<u64, u64>,
}

impl RemoteCodes {
    pub fn new(memory: RemoteMemory, layout: Layout) -> RemoteCodes {
        RemoteCodes {
            memory,
            layout,
            named: HashMap::new(),
            current: HashMap::new(),
        }
    }

    /// Takes note of the code objects a stack holds (call it before handing
    /// the stack to the recorder). Returns the addresses that now hold
    /// another code object than before: tell the recorder they died.
    pub fn note(&mut self, frames: &[StackFrame]) -> Vec<u64> {
        frames
            .iter()
            .filter(|f| {
                let before = self.current.insert(f.code, f.fingerprint);
                before.is_some_and(|before| before != f.fingerprint)
            })
            .map(|f| f.code)
            .collect()
    }

    /// The code object at `code` if it still has the fingerprint `fingerprint`.
    pub fn name(&mut self, code: u64, fingerprint: u64) -> Option<Arc<CodeInfo>> {
        if let Some(info) = self.named.get(&(code, fingerprint)) {
            return Some(Arc::clone(info));
        }
        let unchanged = || {
            CodeFingerprint::read(&self.memory, &self.layout, code).map(|f| f.digest())
                == Some(fingerprint)
        };
        // Read between two fingerprint checks: a code object replaced
        // meanwhile is left unnamed rather than misnamed.
        if !unchanged() {
            return None;
        }
        let info = read_code(&self.memory, &self.layout, code).ok()?;
        if !unchanged() {
            return None;
        }
        let info = Arc::new(info);
        self.named.insert((code, fingerprint), Arc::clone(&info));
        Some(info)
    }
}

impl CodeNamer for RemoteCodes {
    fn code(&mut self, address: u64) -> Option<CodeInfo> {
        let fingerprint = *self.current.get(&address)?;
        self.name(address, fingerprint).map(|info| (*info).clone())
    }
}
