//! Reading plain Python objects of another process: dicts, sets, weak
//! references, the attributes of an instance, small ints. Enough to find `threading.Thread.name`
//! ([`crate::thread_names`]); offsets measured from each version's internal
//! headers (`pycore_dict.h`, `pycore_object.h`, `Objects/dict-common.h`).

use crate::code::read_str;
use crate::layout::{debug_offsets_slot, Layout};
use crate::memory::{Memory, MemoryExt};

/// Bound on the entries read from one dict (a torn read must not allocate
/// without end).
const MAX_ENTRIES: u64 = 1 << 16;

// `PyDictObject`, every version.
const DICT_USED: u64 = 16;
const DICT_KEYS: u64 = 32;
const DICT_VALUES: u64 = 40;
// `PyTypeObject`, every version.
const TYPE_BASICSIZE: u64 = 32;
const TYPE_FLAGS: u64 = 168;
const TYPE_DICTOFFSET: u64 = 288;
// `PyVarObject.ob_size` (3.12+: `lv_tag` of ints), then the digits.
const VAR_SIZE: u64 = 16;
const LONG_DIGITS: u64 = 24;
// `PyModuleObject.md_dict`.
const MODULE_DICT: u64 = 16;
// `PySetObject`, every version: `mask`, then `table`, of 16-byte
// `setentry`s (key, hash).
const SET_MASK: u64 = 32;
const SET_TABLE: u64 = 40;
const SET_ENTRY: u64 = 16;
// `PyWeakReference.wr_object`.
const WEAKREF_OBJECT: u64 = 16;

const TPFLAGS_INLINE_VALUES: u64 = 1 << 2;
const TPFLAGS_MANAGED_DICT: u64 = 1 << 4;

/// How one version lays out the objects read here.
#[derive(Clone, Copy, Debug)]
pub struct ObjectLayout {
    /// `PyInterpreterState.modules` (`imports.modules` from 3.12): `sys.modules`.
    pub interp_modules: u64,
    keys: KeysLayout,
    /// How instances of classes keep their attributes (3.11+; before, in
    /// a dict at `tp_dictoffset`, as other types still do).
    managed: Option<ManagedDict>,
    /// `PyHeapTypeObject.ht_cached_keys`: the keys an instance's values
    /// (without a dict of their own) share.
    cached_keys: u64,
    /// Bytes before `PyDictValues.values` (a header from 3.13).
    values_header: u64,
    /// 3.12+ ints keep their digit count in `lv_tag`.
    tagged_ints: bool,
}

/// `PyDictKeysObject`.
#[derive(Clone, Copy, Debug)]
enum KeysLayout {
    /// 3.8–3.10: `dk_size` index slots of 1–8 bytes each, then 24-byte entries.
    Sized,
    /// 3.11+: `1 << dk_log2_index_bytes` index bytes, then entries of 24
    /// bytes (general keys) or 16 (str keys: `dk_kind` 1 or 2).
    Log2,
}

/// Where an instance of a class (`Py_TPFLAGS_MANAGED_DICT`) keeps its
/// attributes.
#[derive(Clone, Copy, Debug)]
enum ManagedDict {
    /// 3.11: values at `obj - 32` or a dict at `obj - 24`.
    ValuesOrDict,
    /// 3.12: at `obj - 24`, values tagged with their low bit (stored minus
    /// one) or a dict.
    TaggedValuesOrDict,
    /// 3.13+: values inline after the object (if `valid`), else the dict
    /// at `obj - 24`.
    InlineValues,
}

impl ObjectLayout {
    /// The layout of `layout`'s version; `runtime_head` is the start of
    /// `_PyRuntime`, whose debug offsets (3.13+) give `sys.modules`.
    pub fn for_version(layout: &Layout, runtime_head: &[u8]) -> Option<ObjectLayout> {
        let debug_slot = |index| debug_offsets_slot(runtime_head, index);
        let old = |interp_modules, cached_keys| ObjectLayout {
            interp_modules,
            keys: KeysLayout::Sized,
            managed: None,
            cached_keys,
            values_header: 0,
            tagged_ints: false,
        };
        let new = |interp_modules, managed, values_header| ObjectLayout {
            interp_modules,
            keys: KeysLayout::Log2,
            managed: Some(managed),
            cached_keys: 880,
            values_header,
            tagged_ints: true,
        };
        Some(match (layout.major, layout.minor) {
            (3, 8) => old(56, 872),
            (3, 9) => old(856, 864),
            (3, 10) => old(856, 872),
            (3, 11) => ObjectLayout {
                cached_keys: 872,
                tagged_ints: false,
                ..new(888, ManagedDict::ValuesOrDict, 0)
            },
            (3, 12) => new(944, ManagedDict::TaggedValuesOrDict, 0),
            // `interpreter_state.imports_modules` of `_Py_DebugOffsets`.
            (3, 13) => new(debug_slot(11)?, ManagedDict::InlineValues, 8),
            (3, 14) => new(debug_slot(12)?, ManagedDict::InlineValues, 8),
            _ => return None,
        })
    }
}

/// Reads objects of one process through `mem`.
pub struct Objects<'a, M: ?Sized> {
    pub mem: &'a M,
    pub layout: &'a Layout,
    pub object_layout: ObjectLayout,
}

impl<M: Memory + ?Sized> Objects<'_, M> {
    /// The value under the `str` key `name` in the dict at `dict`.
    pub fn dict_item(&self, dict: u64, name: &str) -> Option<u64> {
        self.find(self.dict_entries(dict)?, name)
    }

    /// The number of items of the dict at `dict` (`ma_used`).
    pub fn dict_len(&self, dict: u64) -> Option<u64> {
        self.mem.read_u64(dict + DICT_USED)
    }

    /// The `(key, value)` pairs of the dict at `dict`, in storage order
    /// (deleted entries left out).
    pub fn dict_entries(&self, dict: u64) -> Option<Vec<(u64, u64)>> {
        let keys = self.mem.read_u64(dict + DICT_KEYS)?;
        match self.mem.read_u64(dict + DICT_VALUES)? {
            0 => self.keys_entries(keys, None),
            values => self.keys_entries(keys, Some(values)),
        }
    }

    /// The attribute `name` of the instance at `object` (from its
    /// `__dict__` or the values it keeps without one).
    pub fn attribute(&self, object: u64, name: &str) -> Option<u64> {
        let mem = self.mem;
        let object_type = mem.read_u64(object + self.layout.object_type)?;
        let flags = mem.read_u64(object_type + TYPE_FLAGS)?;
        let cached_keys = || mem.read_u64(object_type + self.object_layout.cached_keys);
        let managed = self
            .object_layout
            .managed
            .filter(|_| flags & TPFLAGS_MANAGED_DICT != 0);
        let entries = match managed {
            None => {
                let offset = mem.read_u64(object_type + TYPE_DICTOFFSET)? as i64;
                if offset <= 0 {
                    return None;
                }
                self.dict_entries(mem.read_u64(object + offset as u64)?)?
            }
            Some(ManagedDict::ValuesOrDict) => match mem.read_u64(object.wrapping_sub(32))? {
                0 => self.dict_entries(mem.read_u64(object.wrapping_sub(24))?)?,
                values => self.keys_entries(cached_keys()?, Some(values))?,
            },
            Some(ManagedDict::TaggedValuesOrDict) => match mem.read_u64(object.wrapping_sub(24))? {
                tagged if tagged & 1 == 1 => {
                    self.keys_entries(cached_keys()?, Some(tagged.wrapping_add(1)))?
                }
                dict => self.dict_entries(dict)?,
            },
            Some(ManagedDict::InlineValues) => {
                let size = mem.read_u64(object_type + TYPE_BASICSIZE)?;
                let values = object + size;
                // `PyDictValues.valid`, after `capacity`, `size` and `embedded`.
                let inline = flags & TPFLAGS_INLINE_VALUES != 0 && mem.read_u8(values + 3)? != 0;
                match inline {
                    true => self.keys_entries(cached_keys()?, Some(values))?,
                    false => self.dict_entries(mem.read_u64(object.wrapping_sub(24))?)?,
                }
            }
        };
        self.find(entries, name)
    }

    /// The keys of the set at `set`, with the dummies deleted keys leave
    /// (not objects of the set's kind: what is read from them fails).
    pub fn set_keys(&self, set: u64) -> Option<Vec<u64>> {
        let slots = self.mem.read_u64(set + SET_MASK)?.checked_add(1)?;
        if slots > MAX_ENTRIES {
            return None;
        }
        let table = self.mem.read_u64(set + SET_TABLE)?;
        let mut entries = vec![0u8; (slots * SET_ENTRY) as usize];
        self.mem.read(table, &mut entries).then_some(())?;
        Some(
            entries
                .chunks_exact(SET_ENTRY as usize)
                .map(|entry| word_at(entry, 0))
                .filter(|&key| key != 0)
                .collect(),
        )
    }

    /// The object the weak reference at `weakref` points to (`None` once
    /// it has died and points to `None`, whose attributes fail to read).
    pub fn weakref_target(&self, weakref: u64) -> Option<u64> {
        self.mem.read_u64(weakref + WEAKREF_OBJECT)
    }

    /// The `dict` of the module at `module`.
    pub fn module_dict(&self, module: u64) -> Option<u64> {
        self.mem.read_u64(module + MODULE_DICT)
    }

    /// The value of the `int` at `object`, if it fits 64 bits.
    pub fn int(&self, object: u64) -> Option<i128> {
        let tag = self.mem.read_u64(object + VAR_SIZE)?;
        let (digits, negative) = match self.object_layout.tagged_ints {
            true => (tag >> 3, tag & 3 == 2),
            false => ((tag as i64).unsigned_abs(), (tag as i64) < 0),
        };
        if digits > 3 {
            return None;
        }
        let mut value: i128 = 0;
        for index in (0..digits).rev() {
            let digit = self.mem.read_u32(object + LONG_DIGITS + 4 * index)?;
            value = (value << 30) | i128::from(digit);
        }
        Some(if negative { -value } else { value })
    }

    /// The `str` at `object`.
    pub fn str(&self, object: u64) -> Option<String> {
        read_str(self.mem, self.layout, object)
    }

    /// The value of the first entry whose `str` key is `name`.
    fn find(&self, entries: Vec<(u64, u64)>, name: &str) -> Option<u64> {
        entries
            .into_iter()
            .find(|&(key, _)| self.str(key).as_deref() == Some(name))
            .map(|(_, value)| value)
    }

    /// The entries of the keys object `keys`, with their values from the
    /// split `values` array if given.
    fn keys_entries(&self, keys: u64, values: Option<u64>) -> Option<Vec<(u64, u64)>> {
        let mem = self.mem;
        let (count, first, entry_size) = match self.object_layout.keys {
            KeysLayout::Sized => {
                let slots = mem.read_u64(keys + 8)?;
                let index_bytes = match slots {
                    0..=0xff => 1,
                    0x100..=0xffff => 2,
                    0x1_0000..=0xffff_ffff => 4,
                    _ => 8,
                };
                let first = keys + 40 + slots.checked_mul(index_bytes)?;
                (mem.read_u64(keys + 32)?, first, 24)
            }
            KeysLayout::Log2 => {
                let index_bytes = 1u64.checked_shl(u32::from(mem.read_u8(keys + 9)?))?;
                let entry_size = if mem.read_u8(keys + 10)? == 0 { 24 } else { 16 };
                (
                    mem.read_u64(keys + 24)?,
                    keys + 32 + index_bytes,
                    entry_size,
                )
            }
        };
        if count > MAX_ENTRIES {
            return None;
        }
        let mut table = vec![0u8; count as usize * entry_size];
        if !mem.read(first, &mut table) {
            return None;
        }
        // The key is the entry's last word but one (after the hash of
        // 24-byte entries), its value the last.
        let mut entries = Vec::new();
        for (index, entry) in table.chunks_exact(entry_size).enumerate() {
            let key = word_at(entry, entry_size - 16);
            let value = match values {
                Some(values) => {
                    mem.read_u64(values + self.object_layout.values_header + 8 * index as u64)?
                }
                None => word_at(entry, entry_size - 8),
            };
            if key != 0 && value != 0 {
                entries.push((key, value));
            }
        }
        Some(entries)
    }
}

/// The little-endian word at `at` of `bytes` (a table entry read whole).
fn word_at(bytes: &[u8], at: usize) -> u64 {
    bytes
        .get(at..at + 8)
        .and_then(|word| word.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}
