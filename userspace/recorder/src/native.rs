//! memray's native stack trie: every distinct native stack is a path of return addresses
//! from the outermost frame inwards; each node is written once, as NATIVE_TRACE_INDEX
//! `{ip, parent}` when it is created (ids 1, 2, 3… in creation order), and an allocation
//! names its stack by the leaf's id. Each thread remembers its last stack with its nodes, so
//! that only the frames that changed since (the innermost few, in a loop) are looked up.

use std::io;

use memray_format::FrameTree;

use crate::recorder::Writer;

/// A thread's last native stack, outermost first, with the trie node of each frame.
#[derive(Default)]
pub struct NativePath(Vec<(u64, u32)>);

impl NativePath {
    /// The next stack starts from the root (a new capture).
    pub fn clear(&mut self) {
        self.0.clear();
    }
}

/// The nodes written so far in one capture.
#[derive(Default)]
pub struct NativeTrie {
    tree: FrameTree,
}

impl NativeTrie {
    /// The id of `stack` (return addresses, innermost first; 0 when empty), writing the
    /// nodes it adds to the trie; `path` is the thread's last stack, made this one.
    pub fn leaf(
        &mut self,
        stack: &[u64],
        path: &mut NativePath,
        writer: &mut Writer,
    ) -> io::Result<u32> {
        let path = &mut path.0;
        let common = path
            .iter()
            .zip(stack.iter().rev())
            .take_while(|((known, _), ip)| known == *ip)
            .count();
        path.truncate(common);
        let mut node = path.last().map_or(0, |&(_, node)| node);
        for &ip in stack[..stack.len() - common].iter().rev() {
            let known = self.tree.len();
            let child = self.tree.trace_index(node, ip);
            if self.tree.len() != known {
                writer.write_native_trace_index(ip, node)?;
            }
            path.push((ip, child));
            node = child;
        }
        Ok(node)
    }
}
