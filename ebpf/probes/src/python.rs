//! What the probes know of each profiled interpreter, for the Python stack
//! walk that comes next.

use aya_ebpf::{macros::map, maps::HashMap};
use python_frames_core::Target;

/// The interpreter of each profiled process (keyed by tgid), written by
/// userspace from python-frames' remote reader: the offsets the probes walk
/// Python stacks with are the ones every other walker uses.
#[map]
static PYTHON_TARGETS: HashMap<u32, Target> = HashMap::with_max_entries(1024, 0);
