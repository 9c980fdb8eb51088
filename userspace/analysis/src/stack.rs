//! Stacks as reports show them. The engine only carries trie node ids; a
//! [`StackResolver`] (backed by the capture reader) turns them into frames.

pub use memray_format::Frame;
use memray_format::Header;

/// Renders the stacks a capture refers to.
pub trait StackResolver {
    /// Every Python frame of trie node `node`, leaf first (empty for node 0).
    fn python_frames(&self, node: u32) -> Vec<Frame>;

    /// The capture's header (its main thread and the frames hidden on it).
    fn header(&self) -> &Header;

    /// The name of a thread, if the capture recorded one.
    fn thread_name(&self, tid: u64) -> Option<String>;

    /// The stack of an allocation made by `tid`, as memray's
    /// `stack_trace()` shows it.
    fn python_stack(&self, node: u32, tid: u64) -> Vec<Frame> {
        let mut frames = self.python_frames(node);
        self.header().hide_outer_frames(tid, &mut frames);
        frames
    }
}
