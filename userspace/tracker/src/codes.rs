//! memray's code-object ids: a sequential id (from 1) per live code object,
//! announced with a CODE_OBJECT record the first time a frame uses it.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;

use crate::python;
use crate::recorder::Writer;

/// Code objects are 8-byte aligned heap addresses: a multiply-shift is enough.
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, address: u64) {
        self.0 = (address >> 3).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// The ids given so far in one capture file.
#[derive(Default)]
pub struct CodeRegistry {
    ids: HashMap<u64, u64, BuildHasherDefault<AddressHasher>>,
    last_id: u64,
}

impl CodeRegistry {
    /// The id of the code object at `address`, writing its CODE_OBJECT record first if new.
    pub fn id_for(&mut self, address: u64, writer: &mut Writer) -> io::Result<u64> {
        if let Some(&id) = self.ids.get(&address) {
            return Ok(id);
        }
        self.last_id += 1;
        let id = self.last_id;
        let code = python::read_code_object(address);
        writer.write_code_object(
            id,
            &code.function,
            &code.filename,
            code.firstlineno,
            &code.linetable,
        )?;
        self.ids.insert(address, id);
        Ok(id)
    }

    /// The code object at `address` died: a new one may take its place.
    pub fn forget(&mut self, address: u64) {
        self.ids.remove(&address);
    }
}
