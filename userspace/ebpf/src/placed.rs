//! Which probes are placed for which process, by file and offset: each is
//! placed once per process, and a followed child has its parent's.

use std::collections::HashSet;

/// A file by (device, inode): the same file seen through different paths.
pub type FileId = (u64, u64);

#[derive(Default)]
pub struct Placed(HashSet<(u32, FileId, u64)>);

impl Placed {
    /// The probe at `offset` of `file` is placed for `owner`; false if it
    /// was already.
    pub fn insert(&mut self, owner: u32, file: FileId, offset: u64) -> bool {
        self.0.insert((owner, file, offset))
    }

    pub fn contains(&self, owner: u32, file: FileId, offset: u64) -> bool {
        self.0.contains(&(owner, file, offset))
    }

    /// The probes placed for `parent` are placed for `child` too.
    pub fn copy(&mut self, parent: u32, child: u32) {
        let copies: Vec<_> = self
            .0
            .iter()
            .filter(|&&(owner, _, _)| owner == parent)
            .map(|&(_, file, offset)| (child, file, offset))
            .collect();
        self.0.extend(copies);
    }

    /// The probes placed for `owner` are gone.
    pub fn forget(&mut self, owner: u32) {
        self.0.retain(|&(placed_for, _, _)| placed_for != owner);
    }
}
