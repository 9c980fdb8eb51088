//! Naming the code objects of probe-walked stacks by reading them from the
//! process, cached by address and fingerprint: an address reused by a new
//! code object carries another fingerprint, so it is never given the old name.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use memray_ebpf_common::python_stack::StackFrame;
use memray_recorder::CodeNamer;
use python_frames::fingerprint::CodeFingerprint;
use python_frames::{read_code, CodeInfo, Layout, RemoteMemory};

use super::CodeSnapshots;

/// The code objects of one process.
pub struct RemoteCodes {
    memory: RemoteMemory,
    layout: Layout,
    named: HashMap<(u64, u64), Arc<CodeInfo>>,
    /// The fingerprint each address had in the latest stack that held it.
    current: HashMap<u64, u64>,
    /// The code objects that could not be named: freed (their memory or
    /// their strings taken by other objects) before their records were
    /// taken in. Their frames are `<unknown>`.
    unnamed: HashSet<(u64, u64)>,
}

impl RemoteCodes {
    pub fn new(memory: RemoteMemory, layout: Layout) -> RemoteCodes {
        RemoteCodes {
            memory,
            layout,
            named: HashMap::new(),
            current: HashMap::new(),
            unnamed: HashSet::new(),
        }
    }

    /// Takes note of the code objects a stack of process `tgid` holds, and
    /// names those not named yet (call it before handing the stack to the
    /// recorder): from the process's memory while they are alive, else
    /// from the `snapshots` the probes took as they were freed. Returns
    /// the addresses that now hold another code object than before: tell
    /// the recorder they died.
    pub fn note(
        &mut self,
        frames: &[StackFrame],
        tgid: u32,
        snapshots: &mut CodeSnapshots,
    ) -> Vec<u64> {
        for frame in frames {
            self.name_frame(frame, tgid, snapshots);
        }
        frames
            .iter()
            .filter(|f| {
                let before = self.current.insert(f.code, f.fingerprint);
                before.is_some_and(|before| before != f.fingerprint)
            })
            .map(|f| f.code)
            .collect()
    }

    fn name_frame(&mut self, frame: &StackFrame, tgid: u32, snapshots: &mut CodeSnapshots) {
        let key = (frame.code, frame.fingerprint);
        if self.named.contains_key(&key) {
            return;
        }
        let layout = self.layout;
        let snapshot = |snapshots: &CodeSnapshots| {
            let snapshot = snapshots.get(tgid, frame.code, frame.fingerprint)?;
            read_code(&snapshot.memory, &layout, frame.code).ok()
        };
        let mut info = snapshot(snapshots);
        // Known unnamed: its memory was read once already (the snapshots
        // are taken in again with each batch).
        let read_before = self.unnamed.contains(&key);
        if info.is_none() && !read_before && self.name(frame.code, frame.fingerprint).is_none() {
            // Freed since the snapshots were last taken in: its snapshot
            // was sent before its memory went.
            snapshots.drain();
            info = snapshot(snapshots);
        }
        if let Some(info) = info {
            self.unnamed.remove(&key);
            self.named.insert(key, Arc::new(info));
        }
    }

    /// The code object at `code` if it still has the fingerprint `fingerprint`.
    pub fn name(&mut self, code: u64, fingerprint: u64) -> Option<Arc<CodeInfo>> {
        let key = (code, fingerprint);
        if let Some(info) = self.named.get(&key) {
            return Some(Arc::clone(info));
        }
        if self.unnamed.contains(&key) {
            return None;
        }
        let unchanged = || {
            CodeFingerprint::read(&self.memory, &self.layout, code).map(|f| f.digest())
                == Some(fingerprint)
        };
        // Read between two fingerprint checks: a code object replaced
        // meanwhile is left unnamed rather than misnamed.
        let read = unchanged()
            .then(|| read_code(&self.memory, &self.layout, code).ok())
            .flatten()
            .filter(|_| unchanged());
        let Some(info) = read else {
            self.unnamed.insert(key);
            return None;
        };
        let info = Arc::new(info);
        self.named.insert(key, Arc::clone(&info));
        Some(info)
    }

    /// How many code objects could not be named.
    pub fn unnamed(&self) -> usize {
        self.unnamed.len()
    }
}

impl CodeNamer for RemoteCodes {
    fn code(&mut self, address: u64) -> Option<CodeInfo> {
        let fingerprint = *self.current.get(&address)?;
        self.name(address, fingerprint).map(|info| (*info).clone())
    }
}
