//! Stacks as reports show them. The engine only carries trie node ids; a
//! [`StackResolver`] (backed by the capture reader) turns them into frames.

pub use memray_format::Frame;
use memray_format::{AllocationEvent, Header};
use memray_symbolize::{hybrid_stack, HybridFrame};

use crate::temporal::TemporalLocation;

/// What names the stack of an allocation or a location: its thread, its Python trie node,
/// its native trie node and the segment generation its native addresses belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackIds {
    pub tid: u64,
    pub python_node: u32,
    pub native_frame_id: u64,
    pub native_segment_generation: u32,
}

impl From<&AllocationEvent> for StackIds {
    fn from(allocation: &AllocationEvent) -> Self {
        StackIds {
            tid: allocation.tid,
            python_node: allocation.python_node,
            native_frame_id: allocation.native_frame_id,
            native_segment_generation: allocation.native_segment_generation,
        }
    }
}

impl From<&TemporalLocation> for StackIds {
    fn from(location: &TemporalLocation) -> Self {
        StackIds {
            tid: location.tid,
            python_node: location.python_node,
            native_frame_id: location.native_frame_id,
            native_segment_generation: location.native_segment_generation,
        }
    }
}

/// Renders the stacks a capture refers to.
pub trait StackResolver {
    /// Every Python frame of trie node `node`, leaf first (empty for node 0).
    fn python_frames(&self, node: u32) -> Vec<Frame>;

    /// Like [`StackResolver::python_frames`], each frame with its entry-frame bit.
    fn python_frames_with_entries(&self, node: u32) -> Vec<(Frame, bool)>;

    /// The native frames of native trie node `native_frame_id`, recorded under segment
    /// generation `generation`, leaf first, inlined functions expanded (empty for node 0).
    fn native_frames(&self, native_frame_id: u64, generation: u32) -> Vec<Frame>;

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

    /// The stack memray's reports show for `allocation` (leaf first): its
    /// `hybrid_stack_trace()` when the capture has native traces, else its `stack_trace()`.
    fn stack(&self, allocation: StackIds) -> Vec<Frame> {
        if !self.header().native_traces {
            return self.python_stack(allocation.python_node, allocation.tid);
        }
        let native = self.native_frames(
            allocation.native_frame_id,
            allocation.native_segment_generation,
        );
        let (python, is_entry): (Vec<Frame>, Vec<bool>) = self
            .python_frames_with_entries(allocation.python_node)
            .into_iter()
            .unzip();
        let header = self.header();
        let skip = if allocation.tid == header.main_tid {
            header.skipped_frames_on_main_tid as usize
        } else {
            0
        };
        // When Python frames remain unplaced memray shows them all, the hidden ones too.
        hybrid_stack(&native, |frame| &frame.function, &python, &is_entry, skip)
            .into_iter()
            .map(|frame| match frame {
                HybridFrame::Native(frame) | HybridFrame::Python(frame) => frame,
            })
            .collect()
    }
}
