//! Line tables: from a code object's raw table and a frame's instruction
//! offset to a source line, with memray's conventions (so that a capture file
//! written by either implementation renders the same lines).
//!
//! The instruction offset is the one memray stores in FRAME_PUSH records:
//! bytes on 3.8/3.9 (`f_lasti`), code units on 3.10 (`f_lasti`), and bytes on
//! 3.11+ (`PyFrame_GetLasti`). Pure `core`, no allocation: usable anywhere.

/// Which of CPython's three line-table formats a code object carries (stored
/// in `Layout::linetable_kind` as its `u32` value).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineTableKind {
    /// `co_lnotab` (3.8, 3.9): `(bytecode delta, line delta)` byte pairs.
    Lnotab = 0,
    /// PEP 626 `co_linetable` (3.10): `(byte length, line delta)` pairs.
    Pep626 = 1,
    /// PEP 657 location table (3.11+): variable-length entries.
    Locations = 2,
}

impl LineTableKind {
    /// The kind stored as `code` (unknown values read as `Locations`, the
    /// format of every version after 3.10).
    pub const fn from_code(code: u32) -> LineTableKind {
        match code {
            0 => LineTableKind::Lnotab,
            1 => LineTableKind::Pep626,
            _ => LineTableKind::Locations,
        }
    }

    /// The format used by CPython `major.minor`.
    pub fn for_version(major: u32, minor: u32) -> LineTableKind {
        match (major, minor) {
            (3, 11..) | (4.., _) => LineTableKind::Locations,
            (3, 10) => LineTableKind::Pep626,
            _ => LineTableKind::Lnotab,
        }
    }
}

/// The line executing at `instruction_offset`. An empty table gives
/// `firstlineno`; a negative offset, an offset past the table or a malformed
/// table gives 0 ("unknown"), as in memray.
pub fn line_number(
    kind: LineTableKind,
    table: &[u8],
    firstlineno: i32,
    instruction_offset: i64,
) -> i32 {
    if instruction_offset < 0 {
        return 0;
    }
    if table.is_empty() {
        return firstlineno;
    }
    let offset = instruction_offset as u64;
    let line = match kind {
        LineTableKind::Lnotab => lnotab_line(table, firstlineno, offset),
        LineTableKind::Pep626 => pep626_line(table, firstlineno, offset.saturating_mul(2)),
        LineTableKind::Locations => location_table_line(table, firstlineno, offset / 2),
    };
    line.unwrap_or(0)
}

/// ≤ 3.9: the line changes by `line delta` once the bytecode address has
/// passed each `bytecode delta`; deltas are signed since 3.6.
fn lnotab_line(table: &[u8], firstlineno: i32, byte_offset: u64) -> Option<i32> {
    if !table.len().is_multiple_of(2) {
        return None;
    }
    let mut line = firstlineno;
    let mut address = 0u64;
    for pair in table.chunks_exact(2) {
        address += u64::from(pair[0]);
        if address > byte_offset {
            break;
        }
        line = line.checked_add(i32::from(pair[1] as i8))?;
    }
    Some(line)
}

/// Line delta that marks a PEP 626 range without a line.
const NO_LINE_NUMBER: i8 = -128;

/// 3.10: each pair covers `byte length` bytes of bytecode starting where the
/// previous one ended, at the previous line plus `line delta`.
fn pep626_line(table: &[u8], firstlineno: i32, byte_offset: u64) -> Option<i32> {
    if !table.len().is_multiple_of(2) {
        return None;
    }
    let mut line = firstlineno;
    let mut range_end = 0u64;
    for pair in table.chunks_exact(2) {
        range_end += u64::from(pair[0]);
        let delta = pair[1] as i8;
        if delta != NO_LINE_NUMBER {
            line = line.checked_add(i32::from(delta))?;
        }
        if range_end > byte_offset {
            break;
        }
    }
    Some(line)
}

/// Location-entry codes of the 3.11+ table (bits 3-6 of an entry's first byte).
const CODE_ONE_LINE_FIRST: u8 = 10;
const CODE_ONE_LINE_LAST: u8 = 12;
const CODE_NO_COLUMNS: u8 = 13;
const CODE_LONG: u8 = 14;
const CODE_NONE: u8 = 15;

/// 3.11+: entries `1CCCCLLL` covering `LLL + 1` code units each.
fn location_table_line(table: &[u8], firstlineno: i32, unit_offset: u64) -> Option<i32> {
    let mut bytes = Bytes { rest: table };
    let mut line = firstlineno;
    let mut start = 0u64;
    while !bytes.rest.is_empty() {
        let first = bytes.next()?;
        let code = (first >> 3) & 15;
        let end = start + u64::from(first & 7) + 1;
        match code {
            CODE_NONE => {}
            CODE_LONG => {
                line = line.checked_add(bytes.signed_varint()?)?;
                // End line, start column, end column.
                for _ in 0..3 {
                    bytes.varint()?;
                }
            }
            CODE_NO_COLUMNS => line = line.checked_add(bytes.signed_varint()?)?,
            CODE_ONE_LINE_FIRST..=CODE_ONE_LINE_LAST => {
                line += i32::from(code - CODE_ONE_LINE_FIRST);
                bytes.next()?;
                bytes.next()?;
            }
            _ => {
                // Short form: one column byte whose top bit must be clear.
                if bytes.next()? & 0x80 != 0 {
                    return None;
                }
            }
        }
        if (start..end).contains(&unit_offset) {
            return Some(line);
        }
        start = end;
    }
    None
}

/// A cursor over a location table; every read fails cleanly at the end.
struct Bytes<'a> {
    rest: &'a [u8],
}

impl Bytes<'_> {
    fn next(&mut self) -> Option<u8> {
        let (&first, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(first)
    }

    /// 6-bit groups, least significant first, 0x40 = "more follows".
    fn varint(&mut self) -> Option<u32> {
        let mut byte = self.next()?;
        let mut value = u32::from(byte & 63);
        let mut shift = 0u32;
        while byte & 64 != 0 {
            byte = self.next()?;
            shift += 6;
            let chunk = u32::from(byte & 63);
            if shift >= u32::BITS || chunk > (u32::MAX >> shift) {
                return None;
            }
            value |= chunk << shift;
        }
        Some(value)
    }

    /// Sign in bit 0, magnitude above it.
    fn signed_varint(&mut self) -> Option<i32> {
        let raw = self.varint()?;
        let magnitude = i32::try_from(raw >> 1).ok()?;
        Some(if raw & 1 != 0 { -magnitude } else { magnitude })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_map_to_formats() {
        assert_eq!(LineTableKind::for_version(3, 8), LineTableKind::Lnotab);
        assert_eq!(LineTableKind::for_version(3, 9), LineTableKind::Lnotab);
        assert_eq!(LineTableKind::for_version(3, 10), LineTableKind::Pep626);
        assert_eq!(LineTableKind::for_version(3, 11), LineTableKind::Locations);
        assert_eq!(LineTableKind::for_version(3, 14), LineTableKind::Locations);
    }

    #[test]
    fn empty_table_and_negative_offset() {
        for kind in [
            LineTableKind::Lnotab,
            LineTableKind::Pep626,
            LineTableKind::Locations,
        ] {
            assert_eq!(line_number(kind, &[], 7, 10), 7);
            assert_eq!(line_number(kind, &[2, 1], 7, -1), 0);
        }
    }

    #[test]
    fn lnotab_accumulates_until_the_offset() {
        // Line 1 for bytes 0..6, line 2 for 6..10, line 0 (delta -2) from 10.
        let table = [6, 1, 4, 0xfe];
        assert_eq!(line_number(LineTableKind::Lnotab, &table, 1, 0), 1);
        assert_eq!(line_number(LineTableKind::Lnotab, &table, 1, 5), 1);
        assert_eq!(line_number(LineTableKind::Lnotab, &table, 1, 6), 2);
        assert_eq!(line_number(LineTableKind::Lnotab, &table, 1, 12), 0);
        assert_eq!(line_number(LineTableKind::Lnotab, &[1, 2, 3], 1, 0), 0);
    }

    #[test]
    fn pep626_compares_code_units_times_two() {
        // Bytes 0..4 at line 5+1, 4..8 without a line (keeps 6), 8..12 at 8.
        let table = [4, 1, 4, 0x80, 4, 2];
        assert_eq!(line_number(LineTableKind::Pep626, &table, 5, 0), 6);
        assert_eq!(line_number(LineTableKind::Pep626, &table, 5, 2), 6);
        assert_eq!(line_number(LineTableKind::Pep626, &table, 5, 4), 8);
    }

    #[test]
    fn location_table_forms() {
        // NO_COLUMNS +1 over 2 units, SHORT over 1, ONE_LINE2 over 1, LONG -3 over 1, NONE.
        let table = [
            0x80 | (13 << 3) | 1,
            2,
            0x80 | (3 << 3),
            0x05,
            0x80 | (12 << 3),
            1,
            9,
            0x80 | (14 << 3),
            7,
            0,
            1,
            2,
            0x80 | (15 << 3),
        ];
        let line = |bytes| line_number(LineTableKind::Locations, &table, 10, bytes);
        assert_eq!(line(0), 11);
        assert_eq!(line(2), 11);
        assert_eq!(line(4), 11);
        assert_eq!(line(6), 13);
        assert_eq!(line(8), 10);
        assert_eq!(line(10), 10);
        assert_eq!(line(12), 0, "past the end of the table");
        assert_eq!(line_number(LineTableKind::Locations, &table[..1], 10, 0), 0);
    }
}
