//! Record tokens: the first byte of every record. The v12/v13 stream and the
//! aggregated format number their records differently; v11 streams (read
//! only) keep their kind in the token's low nibble and flags in the high one.

/// Tokens of the ALL_ALLOCATIONS stream (v12/v13). The last four carry data
/// in their low bits: ALLOCATION (pointer-cache slot and allocator),
/// FRAME_PUSH (entry flag), OBJECT_RECORD (slot and created flag) and
/// FRAME_POP (count - 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StreamToken {
    Trailer = 0x01,
    MemoryRecord = 0x02,
    NativeTraceIndex = 0x05,
    MemoryMapStart = 0x06,
    SegmentHeader = 0x07,
    Segment = 0x08,
    ThreadRecord = 0x0a,
    ContextSwitch = 0x0c,
    CodeObject = 0x0e,
    FramePop = 0x10,
    ObjectRecord = 0x20,
    FramePush = 0x40,
    Allocation = 0x80,
}

impl StreamToken {
    /// The token a record starts with (flags aside); `None` if unknown.
    #[inline(always)]
    pub fn of(byte: u8) -> Option<StreamToken> {
        use StreamToken::*;
        Some(if byte & Allocation as u8 != 0 {
            Allocation
        } else if byte & FramePush as u8 != 0 {
            FramePush
        } else if byte & ObjectRecord as u8 != 0 {
            ObjectRecord
        } else if byte & 0xf0 == FramePop as u8 {
            FramePop
        } else {
            match byte {
                0x01 => Trailer,
                0x02 => MemoryRecord,
                0x05 => NativeTraceIndex,
                0x06 => MemoryMapStart,
                0x07 => SegmentHeader,
                0x08 => Segment,
                0x0a => ThreadRecord,
                0x0c => ContextSwitch,
                0x0e => CodeObject,
                _ => return None,
            }
        })
    }

    /// The token byte, before any flags are or-ed in.
    #[inline(always)]
    pub const fn byte(self) -> u8 {
        self as u8
    }
}

/// Tokens of AGGREGATED_ALLOCATIONS files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum AggregatedToken {
    MemorySnapshot = 0x01,
    AggregatedAllocation = 0x02,
    PythonTraceIndex = 0x03,
    PythonFrameIndex = 0x04,
    NativeTraceIndex = 0x05,
    MemoryMapStart = 0x06,
    SegmentHeader = 0x07,
    Segment = 0x08,
    ThreadRecord = 0x0a,
    ContextSwitch = 0x0c,
    SurvivingObject = 0x0d,
    CodeObject = 0x0e,
    AggregatedTrailer = 0x0f,
}

impl AggregatedToken {
    /// The token of a record; `None` if unknown.
    pub fn of(byte: u8) -> Option<AggregatedToken> {
        use AggregatedToken::*;
        Some(match byte {
            0x01 => MemorySnapshot,
            0x02 => AggregatedAllocation,
            0x03 => PythonTraceIndex,
            0x04 => PythonFrameIndex,
            0x05 => NativeTraceIndex,
            0x06 => MemoryMapStart,
            0x07 => SegmentHeader,
            0x08 => Segment,
            0x0a => ThreadRecord,
            0x0c => ContextSwitch,
            0x0d => SurvivingObject,
            0x0e => CodeObject,
            0x0f => AggregatedTrailer,
            _ => return None,
        })
    }

    #[inline(always)]
    pub const fn byte(self) -> u8 {
        self as u8
    }
}

/// Record kinds of v11 ALL_ALLOCATIONS streams (memray 1.11-1.18): a token's
/// low nibble. The high nibble carries flags: the allocator of ALLOCATION and
/// ALLOCATION_WITH_NATIVE, "not an entry frame" for FRAME_INDEX, count - 1
/// for FRAME_POP, and 1 (TRAILER) for `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum LegacyToken {
    Other = 0,
    Allocation = 1,
    AllocationWithNative = 2,
    FrameIndex = 3,
    FramePush = 4,
    NativeTraceIndex = 5,
    MemoryMapStart = 6,
    SegmentHeader = 7,
    Segment = 8,
    FramePop = 9,
    ThreadRecord = 10,
    MemoryRecord = 11,
    ContextSwitch = 12,
}

impl LegacyToken {
    /// Every kind, in numbering order (the numbers are 0 to 12).
    const ALL: [LegacyToken; 13] = {
        use LegacyToken::*;
        [
            Other,
            Allocation,
            AllocationWithNative,
            FrameIndex,
            FramePush,
            NativeTraceIndex,
            MemoryMapStart,
            SegmentHeader,
            Segment,
            FramePop,
            ThreadRecord,
            MemoryRecord,
            ContextSwitch,
        ]
    };

    /// The kind of a record (its token's low nibble); `None` if unknown.
    pub fn of(byte: u8) -> Option<LegacyToken> {
        Self::ALL.get(usize::from(Self::kind_bits(byte))).copied()
    }

    /// The kind number of a token, known or not (memray's dump prints it).
    pub const fn kind_bits(byte: u8) -> u8 {
        byte & 0x0f
    }

    /// The flags of a token.
    pub const fn flags(byte: u8) -> u8 {
        byte >> 4
    }

    #[inline(always)]
    pub const fn byte(self) -> u8 {
        self as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_maps_to_its_token() {
        for byte in 0..=u8::MAX {
            if let Some(token) = StreamToken::of(byte) {
                let flags = byte & !token.byte();
                assert!(flags < token.byte().max(1), "{byte:#04x} as {token:?}");
            }
            if let Some(token) = AggregatedToken::of(byte) {
                assert_eq!(token.byte(), byte);
            }
        }
        assert_eq!(StreamToken::of(0x9b), Some(StreamToken::Allocation));
        assert_eq!(StreamToken::of(0x1f), Some(StreamToken::FramePop));
        assert_eq!(StreamToken::of(0x00), None);
        assert_eq!(
            AggregatedToken::of(0x0f),
            Some(AggregatedToken::AggregatedTrailer)
        );
        assert_eq!(AggregatedToken::of(0x10), None);
        for byte in 0..=u8::MAX {
            if let Some(token) = LegacyToken::of(byte) {
                assert_eq!(token.byte(), LegacyToken::kind_bits(byte));
            }
        }
        assert_eq!(LegacyToken::of(0x10), Some(LegacyToken::Other));
        assert_eq!(LegacyToken::of(0x31), Some(LegacyToken::Allocation));
        assert_eq!(LegacyToken::of(0x0d), None);
    }
}
