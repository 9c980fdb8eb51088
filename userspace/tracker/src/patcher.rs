//! Tracking without `LD_PRELOAD` (`memray.Tracker` in a running interpreter):
//! when this library was loaded late, its hooks interpose nothing, so each
//! loaded object's relocation slots (GOT/PLT) for the hooked functions are
//! pointed at the hooks instead, as memray's ELF patcher does. Objects loaded
//! while tracking are patched after each `dlopen`, and every slot gets its
//! original value back when tracking ends.
//!
//! The policy (which objects, which relocations, which symbols) is plain
//! code; reading the loader's tables and writing slots is the edge.

use std::collections::HashMap;
use std::ffi::{c_int, c_void, CStr};
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::{loader, tracking};

/// `R_X86_64_64`: a data word holding `symbol + addend`.
const R_X86_64_64: u32 = 1;
/// `R_X86_64_GLOB_DAT`: a GOT entry holding a symbol's address.
const R_X86_64_GLOB_DAT: u32 = 6;
/// `R_X86_64_JUMP_SLOT`: a PLT slot holding a function's address.
const R_X86_64_JUMP_SLOT: u32 = 7;

const DT_NULL: i64 = 0;
const DT_PLTRELSZ: i64 = 2;
const DT_STRTAB: i64 = 5;
const DT_SYMTAB: i64 = 6;
const DT_RELA: i64 = 7;
const DT_RELASZ: i64 = 8;
const DT_PLTREL: i64 = 20;
const DT_JMPREL: i64 = 23;

/// `Elf64_Dyn`.
#[repr(C)]
struct Dyn {
    tag: i64,
    value: u64,
}

/// `Elf64_Rela`.
#[repr(C)]
struct Rela {
    offset: u64,
    info: u64,
    addend: i64,
}

/// `Elf64_Sym`.
#[repr(C)]
struct Sym {
    name: u32,
    info: u8,
    other: u8,
    section: u16,
    value: u64,
    size: u64,
}

/// The functions the tracker hooks: its own exported definitions.
const HOOKED: [&CStr; 19] = [
    c"malloc",
    c"free",
    c"calloc",
    c"realloc",
    c"posix_memalign",
    c"aligned_alloc",
    c"memalign",
    c"valloc",
    c"pvalloc",
    c"free_sized",
    c"free_aligned_sized",
    c"mmap",
    c"mmap64",
    c"munmap",
    c"prctl",
    c"dlopen",
    c"dlclose",
    c"_exit",
    c"_Exit",
];

/// The address of the hook that replaces `symbol`, if the tracker hooks it.
fn hook_for(hooks: &[(&CStr, usize)], symbol: &[u8]) -> Option<usize> {
    hooks
        .iter()
        .find(|(name, _)| name.to_bytes() == symbol)
        .map(|&(_, hook)| hook)
}

/// Whether an object's slots are patched: not the dynamic loader's (it
/// allocates for itself before libc is there) nor the vDSO's (it has none).
/// This library itself is recognised by address, not by name.
fn patches_object(name: &[u8]) -> bool {
    let contains = |needle: &[u8]| name.windows(needle.len()).any(|w| w == needle);
    !contains(b"/ld-linux") && !contains(b"linux-vdso.so")
}

/// Whether a relocation's slot holds exactly the named symbol's address
/// (and so may be swapped for the hook's).
fn holds_symbol_address(kind: u32, addend: i64) -> bool {
    match kind {
        R_X86_64_JUMP_SLOT | R_X86_64_GLOB_DAT => true,
        R_X86_64_64 => addend == 0,
        _ => false,
    }
}

/// Where an object's dynamic tables are.
#[derive(Default, Debug, PartialEq)]
struct Tables {
    strtab: usize,
    symtab: usize,
    /// `DT_RELA`/`DT_RELASZ`: start and size in bytes.
    rela: (usize, usize),
    /// `DT_JMPREL`/`DT_PLTRELSZ`, when `DT_PLTREL` says its entries are RELA.
    jmprel: (usize, usize),
}

/// Reads the dynamic section's entries. glibc relocates most addresses in
/// place; one below the load base is still a virtual address (memray's rule).
fn tables(dynamic: impl Iterator<Item = (i64, u64)>, base: usize) -> Tables {
    let address = |value: u64| {
        let value = value as usize;
        if value < base {
            base + value
        } else {
            value
        }
    };
    let mut tables = Tables::default();
    let mut jmprel_is_rela = true;
    for (tag, value) in dynamic.take_while(|&(tag, _)| tag != DT_NULL) {
        match tag {
            DT_STRTAB => tables.strtab = address(value),
            DT_SYMTAB => tables.symtab = address(value),
            DT_RELA => tables.rela.0 = address(value),
            DT_RELASZ => tables.rela.1 = value as usize,
            DT_JMPREL => tables.jmprel.0 = address(value),
            DT_PLTRELSZ => tables.jmprel.1 = value as usize,
            DT_PLTREL => jmprel_is_rela = value as i64 == DT_RELA,
            _ => {}
        }
    }
    if !jmprel_is_rela {
        tables.jmprel = (0, 0);
    }
    tables
}

/// One relocation slot pointed (or to be pointed) at a hook.
struct Slot {
    address: usize,
    hook: usize,
}

/// A loaded object as `dl_iterate_phdr` describes it.
struct Object<'a> {
    info: &'a libc::dl_phdr_info,
}

impl Object<'_> {
    fn base(&self) -> usize {
        self.info.dlpi_addr as usize
    }

    fn headers(&self) -> &[libc::Elf64_Phdr] {
        if self.info.dlpi_phdr.is_null() {
            return &[];
        }
        // SAFETY: the loader describes `dlpi_phnum` program headers there.
        unsafe { std::slice::from_raw_parts(self.info.dlpi_phdr, self.info.dlpi_phnum as usize) }
    }

    fn name(&self) -> &[u8] {
        if self.info.dlpi_name.is_null() {
            return b"";
        }
        // SAFETY: the loader's NUL-terminated name of the object.
        unsafe { CStr::from_ptr(self.info.dlpi_name) }.to_bytes()
    }

    /// The memory spans of the object's headers of `kind`.
    fn spans(&self, kind: u32) -> impl Iterator<Item = Range<usize>> + '_ {
        self.headers()
            .iter()
            .filter(move |header| header.p_type == kind)
            .map(|header| {
                let start = self.base() + header.p_vaddr as usize;
                start..start + header.p_memsz as usize
            })
    }

    fn contains(&self, address: usize) -> bool {
        self.spans(libc::PT_LOAD)
            .any(|span| span.contains(&address))
    }

    /// The slots of this object that hold a hooked function's address.
    fn hooked_slots(&self, hooks: &[(&CStr, usize)]) -> Vec<Slot> {
        let Some(dynamic) = self.spans(libc::PT_DYNAMIC).next() else {
            return Vec::new();
        };
        let entries = (dynamic.start..dynamic.end)
            .step_by(size_of::<Dyn>())
            // SAFETY: the PT_DYNAMIC segment is mapped and holds Dyn entries.
            .map(|at| unsafe { std::ptr::read(at as *const Dyn) })
            .map(|entry| (entry.tag, entry.value));
        let tables = tables(entries, self.base());
        if tables.strtab == 0 || tables.symtab == 0 {
            return Vec::new();
        }
        let mut slots = Vec::new();
        for (start, size) in [tables.rela, tables.jmprel] {
            if start == 0 {
                continue;
            }
            // SAFETY: the dynamic section says `size` bytes of Rela entries are there.
            let relocations = unsafe {
                std::slice::from_raw_parts(start as *const Rela, size / size_of::<Rela>())
            };
            for relocation in relocations {
                let (symbol, kind) = ((relocation.info >> 32) as usize, relocation.info as u32);
                if symbol == 0 || !holds_symbol_address(kind, relocation.addend) {
                    continue;
                }
                // SAFETY: a relocation's symbol index is within the symbol
                // table, whose names are NUL-terminated in the string table.
                let name = unsafe {
                    let entry = &*(tables.symtab as *const Sym).add(symbol);
                    CStr::from_ptr((tables.strtab + entry.name as usize) as *const libc::c_char)
                };
                if let Some(hook) = hook_for(hooks, name.to_bytes()) {
                    slots.push(Slot {
                        address: self.base() + relocation.offset as usize,
                        hook,
                    });
                }
            }
        }
        slots
    }

    /// The pages the loader made read-only after relocating (`PT_GNU_RELRO`,
    /// rounded down at both ends as glibc protects them).
    fn read_only_after_relocation(&self) -> Option<Range<usize>> {
        let page = page_size();
        self.spans(libc::PT_GNU_RELRO)
            .next()
            .map(|span| span.start & !(page - 1)..span.end & !(page - 1))
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// Slot address → the value it held before it was pointed at a hook.
static ORIGINALS: Mutex<Option<HashMap<usize, usize>>> = Mutex::new(None);

/// This library's own definitions of the hooked functions. Looked up on its
/// own handle: its references to its exported `malloc` bind like anyone
/// else's, to libc's when it was loaded late.
fn hooks() -> &'static [(&'static CStr, usize)] {
    static HOOKS: OnceLock<Vec<(&CStr, usize)>> = OnceLock::new();
    HOOKS.get_or_init(|| {
        let here = hooks as fn() -> &'static [(&'static CStr, usize)] as *const c_void;
        // SAFETY: `here` is only looked up; a link map is a valid dlsym handle in glibc.
        let Some(own) = (unsafe { loader::object_containing(here) }) else {
            return Vec::new();
        };
        HOOKED
            .iter()
            // SAFETY: dlsym with a valid handle and NUL-terminated name.
            .map(|&name| (name, unsafe { libc::dlsym(own, name.as_ptr()) } as usize))
            .filter(|&(_, address)| address != 0)
            .collect()
    })
}

/// Whether this library's hooks already interpose the process's allocator
/// (it was preloaded), so that nothing needs patching.
pub fn interposed() -> bool {
    // SAFETY: dlopen(NULL) gives the program's own handle, whose lookups
    // find what the program's references bind to.
    let malloc = unsafe {
        let program = libc::dlopen(std::ptr::null(), libc::RTLD_LAZY | libc::RTLD_NOLOAD);
        libc::dlsym(program, c"malloc".as_ptr())
    };
    hook_for(hooks(), b"malloc") == Some(malloc as usize)
}

/// Points every loaded object's hooked slots at the hooks. Call with the
/// recursion guard held.
pub fn patch() {
    patch_into(tracking::lock(&ORIGINALS).get_or_insert_with(HashMap::new));
}

/// Patches objects loaded since, while patching is in effect (after a `dlopen`).
pub fn objects_loaded() {
    if let Some(originals) = tracking::lock(&ORIGINALS).as_mut() {
        patch_into(originals);
    }
}

fn patch_into(originals: &mut HashMap<usize, usize>) {
    let hooks = hooks();
    for_each_patched_object(|object| {
        let read_only = object.read_only_after_relocation();
        for slot in object.hooked_slots(hooks) {
            // SAFETY: a relocation slot of a loaded object: a mapped, aligned word.
            let current = unsafe { read_slot(slot.address) };
            if current != slot.hook {
                originals.insert(slot.address, current);
                // SAFETY: as above.
                unsafe { write_slot(slot.address, slot.hook, read_only.as_ref()) };
            }
        }
    });
}

/// Gives every slot still pointing at a hook its original value back. Call
/// with the recursion guard held.
pub fn restore() {
    let mut guard = tracking::lock(&ORIGINALS);
    let Some(originals) = guard.take() else {
        return;
    };
    let hooks = hooks();
    for_each_patched_object(|object| {
        let read_only = object.read_only_after_relocation();
        for slot in object.hooked_slots(hooks) {
            let Some(&original) = originals.get(&slot.address) else {
                continue;
            };
            // SAFETY: a relocation slot of a loaded object: a mapped, aligned word.
            if unsafe { read_slot(slot.address) } == slot.hook {
                // SAFETY: as above.
                unsafe { write_slot(slot.address, original, read_only.as_ref()) };
            }
        }
    });
}

/// Runs `visit` on every loaded object whose slots are patched.
fn for_each_patched_object(mut visit: impl FnMut(&Object)) {
    extern "C" fn callback(info: *mut libc::dl_phdr_info, _: usize, data: *mut c_void) -> c_int {
        // SAFETY: `for_each_patched_object` passes its visitor; the loader a valid info.
        let (visit, info) = unsafe { (&mut *(data as *mut &mut dyn FnMut(&Object)), &*info) };
        let object = Object { info };
        let own = object.contains(patches_object as fn(&[u8]) -> bool as usize);
        if !own && patches_object(object.name()) {
            visit(&object);
        }
        0
    }
    let mut visit: &mut dyn FnMut(&Object) = &mut visit;
    // SAFETY: the callback only uses `data` as the visitor it is, during the call.
    unsafe {
        libc::dl_iterate_phdr(
            Some(callback),
            (&mut visit as *mut &mut dyn FnMut(&Object)).cast(),
        )
    };
}

/// # Safety
/// `address` is a mapped, aligned word.
unsafe fn read_slot(address: usize) -> usize {
    // SAFETY: per the contract; other threads may read it at the same time.
    unsafe { AtomicUsize::from_ptr(address as *mut usize) }.load(Ordering::Acquire)
}

/// Writes a slot in one store (other threads may be calling through it),
/// lifting the loader's read-only protection around the write when the slot
/// lies in it.
///
/// # Safety
/// `address` is a mapped, aligned relocation slot; `read_only` is the
/// object's RELRO span.
unsafe fn write_slot(address: usize, value: usize, read_only: Option<&Range<usize>>) {
    let page = address & !(page_size() - 1);
    let protected = read_only.is_some_and(|span| span.contains(&page));
    if protected {
        // SAFETY: the slot's own page, made writable for the store below.
        unsafe {
            libc::mprotect(
                page as *mut c_void,
                page_size(),
                libc::PROT_READ | libc::PROT_WRITE,
            )
        };
    }
    // SAFETY: per the contract.
    unsafe { AtomicUsize::from_ptr(address as *mut usize) }.store(value, Ordering::Release);
    if protected {
        // SAFETY: the page goes back to the protection the loader gave it.
        unsafe { libc::mprotect(page as *mut c_void, page_size(), libc::PROT_READ) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_hooked_functions_are_patched() {
        let hooks = [(c"malloc", 1), (c"dlopen", 2)];
        assert_eq!(hook_for(&hooks, b"malloc"), Some(1));
        assert_eq!(hook_for(&hooks, b"dlopen"), Some(2));
        assert_eq!(hook_for(&hooks, b"strdup"), None);
        assert_eq!(hook_for(&hooks, b"malloc_usable_size"), None);
    }

    #[test]
    fn the_loader_and_the_vdso_keep_their_slots() {
        assert!(!patches_object(b"/lib64/ld-linux-x86-64.so.2"));
        assert!(!patches_object(b"linux-vdso.so.1"));
        assert!(patches_object(b""));
        assert!(patches_object(b"/lib/x86_64-linux-gnu/libc.so.6"));
    }

    #[test]
    fn slots_holding_a_symbol_address_only() {
        assert!(holds_symbol_address(R_X86_64_JUMP_SLOT, 0));
        assert!(holds_symbol_address(R_X86_64_GLOB_DAT, 0));
        assert!(holds_symbol_address(R_X86_64_64, 0));
        assert!(!holds_symbol_address(R_X86_64_64, 8));
        // R_X86_64_RELATIVE and R_X86_64_TPOFF64 name no function.
        assert!(!holds_symbol_address(8, 0));
        assert!(!holds_symbol_address(18, 0));
    }

    #[test]
    fn dynamic_tables_relocated_or_not() {
        let base = 0x7f00_0000_0000;
        let entries = [
            (DT_STRTAB, base as u64 + 0x100),
            (DT_SYMTAB, 0x200),
            (DT_RELA, 0x300),
            (DT_RELASZ, 48),
            (DT_JMPREL, 0x400),
            (DT_PLTRELSZ, 24),
            (DT_PLTREL, DT_RELA as u64),
            (DT_NULL, 0),
            (DT_STRTAB, 0x999),
        ];
        let found = tables(entries.into_iter(), base);
        assert_eq!(
            found,
            Tables {
                strtab: base + 0x100,
                symtab: base + 0x200,
                rela: (base + 0x300, 48),
                jmprel: (base + 0x400, 24),
            }
        );
        let rel = [(DT_JMPREL, 0x400), (DT_PLTRELSZ, 16), (DT_PLTREL, 17)];
        assert_eq!(tables(rel.into_iter(), base).jmprel, (0, 0));
    }
}
