//! Stacks as reports show them. The engine only carries trie node ids; a
//! [`StackResolver`] (backed by the capture reader) turns them into frames.

use std::sync::Arc;

/// One frame, as memray's `stack_trace()` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Frame {
    pub function: Arc<str>,
    pub filename: Arc<str>,
    pub lineno: i64,
}

impl Frame {
    pub fn new(function: &str, filename: &str, lineno: i64) -> Frame {
        Frame {
            function: function.into(),
            filename: filename.into(),
            lineno,
        }
    }
}

/// Renders the stacks a capture refers to.
pub trait StackResolver {
    /// Every Python frame of trie node `node`, leaf first (empty for node 0).
    fn python_frames(&self, node: u32) -> Vec<Frame>;

    /// The main thread's id and how many outermost frames to hide on it.
    fn main_thread(&self) -> (u64, usize);

    /// The name of a thread, if the capture recorded one.
    fn thread_name(&self, tid: u64) -> Option<String>;

    /// The stack of an allocation made by `tid`, as memray's
    /// `stack_trace()` shows it: on the main thread the frames above the one
    /// that started tracking are dropped.
    fn python_stack(&self, node: u32, tid: u64) -> Vec<Frame> {
        let mut frames = self.python_frames(node);
        let (main_tid, skipped) = self.main_thread();
        if tid == main_tid {
            frames.truncate(frames.len().saturating_sub(skipped));
        }
        frames
    }
}
