//! memray's native stack trie: every distinct native stack is a path of return addresses
//! from the outermost frame inwards; each node is written once, as NATIVE_TRACE_INDEX
//! `{ip, parent}` when it is created (ids 1, 2, 3… in creation order), and an allocation
//! names its stack by the leaf's id.

use std::io;

use memray_format::FrameTree;

use crate::recorder::Writer;

/// The nodes written so far in one capture.
#[derive(Default)]
pub struct NativeTrie {
    tree: FrameTree,
}

impl NativeTrie {
    /// The id of `stack` (return addresses, innermost first; 0 when empty), writing the
    /// nodes it adds to the trie.
    pub fn leaf(&mut self, stack: &[u64], writer: &mut Writer) -> io::Result<u32> {
        let mut node = 0;
        for &ip in stack.iter().rev() {
            let known = self.tree.len();
            let child = self.tree.trace_index(node, ip);
            if self.tree.len() != known {
                writer.write_native_trace_index(ip, node)?;
            }
            node = child;
        }
        Ok(node)
    }
}
