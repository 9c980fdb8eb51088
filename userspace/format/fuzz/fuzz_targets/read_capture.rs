//! Any byte sequence, read as a capture (plain or LZ4) and replayed, must end
//! in records, a "cut off" result or an error: never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use memray_format::{CaptureReader, Replay};

fuzz_target!(|data: &[u8]| {
    let Ok(reader) = CaptureReader::from_bytes(data.to_vec()) else {
        return;
    };
    let mut replay = Replay::new(reader);
    while let Ok(Some(event)) = replay.next_event() {
        if let memray_format::Event::Allocation(a) = event {
            let _ = replay.python_stack(a.python_node, a.tid);
            let _ = replay.native_stack(a.native_frame_id).count();
        }
    }
});
