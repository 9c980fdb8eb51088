//! memray's primitive encodings (docs/memray-format.md §3): LEB128 varints, zig-zag
//! signed varints, per-field deltas and the 15-slot pointer cache.

/// The longest LEB128 encoding of a `u64`.
pub const MAX_VARINT_LEN: usize = 10;

/// Zig-zag: small magnitudes of either sign become small unsigned values.
#[inline]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
pub fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// Encodes one record into a fixed-capacity destination: the sink's mapped
/// memory itself on the hot path (no intermediate copy, and no byte stores
/// re-read as a vector, which stalls store forwarding), or a stack array.
pub struct RecordBuf<'a, const N: usize> {
    bytes: &'a mut [u8; N],
    len: usize,
}

impl<'a, const N: usize> RecordBuf<'a, N> {
    #[inline]
    pub fn new(bytes: &'a mut [u8; N]) -> Self {
        RecordBuf { bytes, len: 0 }
    }

    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    pub fn byte(&mut self, b: u8) {
        self.bytes[self.len] = b;
        self.len += 1;
    }

    #[inline]
    pub fn raw(&mut self, data: &[u8]) {
        self.bytes[self.len..self.len + data.len()].copy_from_slice(data);
        self.len += data.len();
    }

    #[inline]
    pub fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.byte(v as u8 | 0x80);
            v >>= 7;
        }
        self.byte(v as u8);
    }

    #[inline]
    pub fn svarint(&mut self, v: i64) {
        self.varint(zigzag(v));
    }

    /// `svarint(v - *prev)`, then `*prev = v` (wrapping, as memray's unsigned maths).
    #[inline]
    pub fn delta(&mut self, prev: &mut u64, v: u64) {
        self.svarint(v.wrapping_sub(*prev) as i64);
        *prev = v;
    }
}

/// Appends to a growable buffer (headers, aggregated bodies): not the hot path.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn put_svarint(out: &mut Vec<u8>, v: i64) {
    put_varint(out, zigzag(v));
}

pub fn put_delta(out: &mut Vec<u8>, prev: &mut u64, v: u64) {
    put_svarint(out, v.wrapping_sub(*prev) as i64);
    *prev = v;
}

/// A C string: `s` up to its first NUL, as memray's C++ writer would
/// write it (a Python thread name may hold one), then the NUL. The
/// records after it stay where readers look for them.
pub fn put_cstr(out: &mut Vec<u8>, s: &[u8]) {
    let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
    out.extend_from_slice(&s[..end]);
    out.push(0);
}

/// The delta bases shared by the whole stream (not per thread, not per record type).
#[derive(Default, Clone, Debug)]
pub struct DeltaState {
    pub thread_id: u64,
    pub instruction_pointer: u64,
    pub data_pointer: u64,
    pub native_frame_id: u64,
    pub code_firstlineno: u64,
}

/// The 15 most recently *inserted* addresses; hits do not reorder (§3.2).
/// A ring of 16: slot `i` is `ring[(front + i) % 16]`, so an insert moves
/// `front` back instead of shifting every slot; the 16th entry is the one
/// that just fell off.
#[derive(Default, Clone, Debug)]
pub struct PointerCache {
    ring: [u64; 16],
    front: u8,
}

/// The token's slot value that means "not cached, the address follows".
pub const CACHE_MISS: u8 = 15;

impl PointerCache {
    /// Writer side: the slot holding `address`, or `None` after inserting it.
    #[inline]
    pub fn lookup_or_insert(&mut self, address: u64) -> Option<u8> {
        // The ring's entries are distinct (an address enters only on a
        // miss), but for the zeros it starts with: ring order finds the
        // first zero slot too, as the zeros follow the inserted entries.
        let found = self.ring.iter().position(|&a| a == address);
        match found.map(|index| (index as u8).wrapping_sub(self.front) % 16) {
            Some(slot) if slot != CACHE_MISS => Some(slot),
            _ => {
                self.insert(address);
                None
            }
        }
    }

    /// Reader side: the address in `slot` (0..15).
    #[inline(always)]
    pub fn get(&self, slot: u8) -> u64 {
        self.ring[(self.front.wrapping_add(slot) % 16) as usize]
    }

    #[inline(always)]
    pub fn insert(&mut self, address: u64) {
        self.front = self.front.wrapping_sub(1) % 16;
        self.ring[self.front as usize] = address;
    }
}

/// Why a decode stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The data ends inside the value: more bytes may complete it.
    Incomplete,
    /// The bytes can never be valid (e.g. a varint longer than 10 bytes).
    Invalid,
}

/// A forward cursor over a byte slice; every read checks bounds.
pub struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    pub fn new(data: &'a [u8], pos: usize) -> Self {
        Cursor { data, pos }
    }

    #[inline]
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Invalid)?;
        let out = self
            .data
            .get(self.pos..end)
            .ok_or(DecodeError::Incomplete)?;
        self.pos = end;
        Ok(out)
    }

    #[inline]
    pub fn u32_raw(&mut self) -> Result<u32, DecodeError> {
        let b = self.bytes(4)?;
        Ok(u32::from_ne_bytes(b.try_into().expect("4 bytes")))
    }

    #[inline]
    pub fn i32_raw(&mut self) -> Result<i32, DecodeError> {
        let b = self.bytes(4)?;
        Ok(i32::from_ne_bytes(b.try_into().expect("4 bytes")))
    }

    /// A NUL-terminated string, without its terminator.
    #[inline]
    pub fn cstr(&mut self) -> Result<&'a [u8], DecodeError> {
        let rest = &self.data[self.pos.min(self.data.len())..];
        let len = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(DecodeError::Incomplete)?;
        self.pos += len + 1;
        Ok(&rest[..len])
    }
}

/// Reads the fields of a record: [`Cursor`] checks every read against the end
/// of the data; [`Window`] reads a hot record known to lie in its bytes.
pub trait FieldReader {
    fn u8(&mut self) -> Result<u8, DecodeError>;
    fn u64_raw(&mut self) -> Result<u64, DecodeError>;
    /// The position after the last byte read.
    fn pos(&self) -> usize;

    /// Inlined up to two bytes (most sizes and deltas); longer ones take a call.
    #[inline(always)]
    fn varint(&mut self) -> Result<u64, DecodeError> {
        let first = self.u8()?;
        if first < 0x80 {
            return Ok(first as u64);
        }
        let second = self.u8()?;
        let value = (first & 0x7f) as u64 | ((second & 0x7f) as u64) << 7;
        if second < 0x80 {
            return Ok(value);
        }
        self.varint_tail(value)
    }

    /// The rest of a varint whose first two bytes gave `value` (and went on).
    #[inline(never)]
    fn varint_tail(&mut self, mut value: u64) -> Result<u64, DecodeError> {
        let mut shift = 14;
        loop {
            let b = self.u8()?;
            if shift >= 64 {
                return Err(DecodeError::Invalid);
            }
            value |= ((b & 0x7f) as u64) << shift;
            if b < 0x80 {
                return Ok(value);
            }
            shift += 7;
        }
    }

    #[inline(always)]
    fn svarint(&mut self) -> Result<i64, DecodeError> {
        self.varint().map(unzigzag)
    }

    /// The value of a delta-encoded field, given its previous value. The
    /// caller commits it once the whole record has been decoded.
    #[inline(always)]
    fn delta(&mut self, prev: u64) -> Result<u64, DecodeError> {
        Ok(prev.wrapping_add(self.svarint()? as u64))
    }
}

impl FieldReader for Cursor<'_> {
    #[inline(always)]
    fn u8(&mut self) -> Result<u8, DecodeError> {
        let b = *self.data.get(self.pos).ok_or(DecodeError::Incomplete)?;
        self.pos += 1;
        Ok(b)
    }

    #[inline]
    fn u64_raw(&mut self) -> Result<u64, DecodeError> {
        let b = self.bytes(8)?;
        Ok(u64::from_ne_bytes(b.try_into().expect("8 bytes")))
    }

    #[inline(always)]
    fn pos(&self) -> usize {
        self.pos
    }
}

/// Bytes a [`Window`] spans: the longest hot record (see
/// `decode::MAX_HOT_RECORD_LEN`), a power of two.
pub const WINDOW: usize = 32;

/// A cursor over the next [`WINDOW`] bytes, for records that cannot be longer
/// (every varint ends within 10 bytes or is invalid): its reads need no bounds
/// checks, only a mask that keeps an invalid record's excess reads inside.
pub struct Window<'a> {
    bytes: &'a [u8; WINDOW],
    pos: usize,
}

impl<'a> Window<'a> {
    /// The window at the start of `bytes`, read from `pos` on.
    #[inline(always)]
    pub fn new(bytes: &'a [u8; WINDOW], pos: usize) -> Self {
        Window { bytes, pos }
    }
}

impl FieldReader for Window<'_> {
    #[inline(always)]
    fn u8(&mut self) -> Result<u8, DecodeError> {
        let b = self.bytes[self.pos % WINDOW];
        self.pos += 1;
        Ok(b)
    }

    #[inline]
    fn u64_raw(&mut self) -> Result<u64, DecodeError> {
        let b = self
            .bytes
            .get(self.pos..self.pos + 8)
            .ok_or(DecodeError::Invalid)?;
        self.pos += 8;
        Ok(u64::from_ne_bytes(b.try_into().expect("8 bytes")))
    }

    #[inline(always)]
    fn pos(&self) -> usize {
        self.pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint_bytes(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, v);
        out
    }

    #[test]
    fn a_c_string_ends_at_its_first_nul() {
        let mut out = Vec::new();
        put_cstr(&mut out, b"worker\0 #2");
        put_cstr(&mut out, b"next");
        let mut cursor = Cursor::new(&out, 0);
        assert_eq!(cursor.cstr(), Ok(&b"worker"[..]));
        assert_eq!(cursor.cstr(), Ok(&b"next"[..]));
    }

    #[test]
    fn varints_round_trip_at_the_edges() {
        for v in [0, 1, 127, 128, 300, 1 << 35, u64::MAX - 1, u64::MAX] {
            let bytes = varint_bytes(v);
            assert_eq!(Cursor::new(&bytes, 0).varint(), Ok(v));
            let mut storage = [0; 16];
            let mut buf = RecordBuf::new(&mut storage);
            buf.varint(v);
            assert_eq!(buf.as_slice(), bytes.as_slice());
        }
        assert_eq!(varint_bytes(300), vec![0xac, 0x02]);
        assert_eq!(varint_bytes(u64::MAX).len(), MAX_VARINT_LEN);
    }

    #[test]
    fn a_window_reads_varints_as_a_cursor_does() {
        let mut bytes = Vec::new();
        for v in [0, 127, 128, 300, 1 << 35] {
            put_varint(&mut bytes, v);
        }
        bytes.resize(WINDOW, 0);
        let window: &[u8; WINDOW] = bytes.as_slice().try_into().unwrap();
        let (mut w, mut c) = (Window::new(window, 0), Cursor::new(&bytes, 0));
        for _ in 0..5 {
            assert_eq!(w.varint(), c.varint());
            assert_eq!(w.pos(), c.pos());
        }
        let overlong = [0xff; WINDOW];
        assert_eq!(
            Window::new(&overlong, 0).varint(),
            Err(DecodeError::Invalid)
        );
    }

    #[test]
    fn zigzag_matches_memray() {
        assert_eq!(zigzag(0), 0);
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
        assert_eq!(zigzag(7), 0x0e);
        assert_eq!(zigzag(12), 0x18);
        for v in [i64::MIN, -300, -1, 0, 1, 300, i64::MAX] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }

    #[test]
    fn deltas_wrap_like_unsigned_maths() {
        let mut bytes = [0; 32];
        let mut buf = RecordBuf::new(&mut bytes);
        let mut prev = 0x200;
        buf.delta(&mut prev, 0x100);
        buf.delta(&mut prev, u64::MAX);
        let mut cursor = Cursor::new(buf.as_slice(), 0);
        let a = cursor.delta(0x200).unwrap();
        let b = cursor.delta(a).unwrap();
        assert_eq!((a, b), (0x100, u64::MAX));
    }

    #[test]
    fn truncated_and_overlong_varints_are_told_apart() {
        assert_eq!(
            Cursor::new(&[0x80, 0x80], 0).varint(),
            Err(DecodeError::Incomplete)
        );
        assert_eq!(
            Cursor::new(&[0xff; 11], 0).varint(),
            Err(DecodeError::Invalid)
        );
        assert_eq!(Cursor::new(b"abc", 0).cstr(), Err(DecodeError::Incomplete));
    }

    #[test]
    fn pointer_cache_matches_a_list_of_the_last_fifteen_inserted() {
        let mut cache = PointerCache::default();
        let mut model = vec![0u64; 15];
        // A small pool, so that hits, misses and evictions all happen.
        let mut x = 12345u64;
        for _ in 0..10_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let address = (x >> 33) % 24 * 8;
            let expected = model.iter().position(|&a| a == address);
            assert_eq!(cache.lookup_or_insert(address), expected.map(|s| s as u8));
            if expected.is_none() {
                model.insert(0, address);
                model.truncate(15);
            }
            for (slot, &a) in model.iter().enumerate() {
                assert_eq!(cache.get(slot as u8), a);
            }
        }
    }

    #[test]
    fn pointer_cache_inserts_at_front_and_never_reorders_on_hit() {
        let mut cache = PointerCache::default();
        // All slots start at 0, so 0 is a hit in slot 0.
        assert_eq!(cache.lookup_or_insert(0), Some(0));
        assert_eq!(cache.lookup_or_insert(0x10), None);
        assert_eq!(cache.lookup_or_insert(0x20), None);
        assert_eq!(cache.lookup_or_insert(0x10), Some(1));
        assert_eq!(
            cache.lookup_or_insert(0x10),
            Some(1),
            "a hit does not move the entry"
        );
        for a in 1..=13 {
            assert_eq!(cache.lookup_or_insert(0x1000 * a), None);
        }
        assert_eq!(cache.lookup_or_insert(0x20), Some(13));
        assert_eq!(cache.lookup_or_insert(0x30), None);
        assert_eq!(
            cache.lookup_or_insert(0x10),
            None,
            "0x10 dropped off the end"
        );
    }
}
