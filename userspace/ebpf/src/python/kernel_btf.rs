//! Offsets of kernel struct fields, read from the running kernel's BTF
//! (`/sys/kernel/btf/vmlinux`): aya-ebpf has no CO-RE for arbitrary fields,
//! so userspace finds the one the probes need and hands it in.

use std::borrow::Cow;

const VMLINUX: &str = "/sys/kernel/btf/vmlinux";
const MAGIC: u16 = 0xeb9f;

const KIND_STRUCT: u32 = 4;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_TYPE_TAG: u32 = 18;

/// Offset of `task_struct.thread.fsbase`: where the thread pointer (glibc's
/// `struct pthread`) of a task is saved. Read once (the kernel's BTF is
/// megabytes; `attach --all` registers many processes).
pub fn task_fsbase_offset() -> Result<u64, String> {
    static OFFSET: std::sync::OnceLock<Result<u64, String>> = std::sync::OnceLock::new();
    OFFSET.get_or_init(read_task_fsbase_offset).clone()
}

fn read_task_fsbase_offset() -> Result<u64, String> {
    let data = std::fs::read(VMLINUX).map_err(|e| format!("{VMLINUX}: {e}"))?;
    let btf = Btf::parse(&data).ok_or_else(|| format!("{VMLINUX}: not a BTF file"))?;
    let task = btf.struct_named("task_struct")?;
    let (thread_offset, thread_type) = btf.member(task, "thread")?;
    let (fsbase_offset, _) = btf.member(btf.resolve(thread_type), "fsbase")?;
    Ok(thread_offset + fsbase_offset)
}

/// One BTF type: its kind, name, the `size_or_type` word and its trailer.
struct Type<'a> {
    kind: u32,
    name: u32,
    kind_flag: bool,
    reference: u32,
    members: &'a [u8],
}

struct Btf<'a> {
    /// Index 0 is the `void` type.
    types: Vec<Type<'a>>,
    strings: &'a [u8],
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

impl<'a> Btf<'a> {
    fn parse(data: &'a [u8]) -> Option<Btf<'a>> {
        if data.get(..2)? != MAGIC.to_le_bytes() {
            return None;
        }
        let header = u32_at(data, 4)? as usize;
        let field = |index: usize| u32_at(data, 8 + index * 4).map(|v| v as usize);
        let (type_off, type_len, str_off, str_len) = (field(0)?, field(1)?, field(2)?, field(3)?);
        let type_data = data.get(header + type_off..header + type_off + type_len)?;
        let strings = data.get(header + str_off..header + str_off + str_len)?;
        let mut types = vec![Type {
            kind: 0,
            name: 0,
            kind_flag: false,
            reference: 0,
            members: &[],
        }];
        let mut at = 0;
        while at < type_data.len() {
            let info = u32_at(type_data, at + 4)?;
            let kind = (info >> 24) & 0x1f;
            let vlen = (info & 0xffff) as usize;
            let trailer = match kind {
                1 | 14 | 17 => 4,
                3 => 12,
                4 | 5 | 15 | 19 => 12 * vlen,
                6 | 13 => 8 * vlen,
                _ => 0,
            };
            let start = at + 12;
            types.push(Type {
                kind,
                name: u32_at(type_data, at)?,
                kind_flag: info >> 31 != 0,
                reference: u32_at(type_data, at + 8)?,
                members: type_data.get(start..start + trailer)?,
            });
            at = start + trailer;
        }
        Some(Btf { types, strings })
    }

    fn name(&self, offset: u32) -> Cow<'_, str> {
        let rest = self.strings.get(offset as usize..).unwrap_or_default();
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        String::from_utf8_lossy(&rest[..end])
    }

    fn struct_named(&self, name: &str) -> Result<u32, String> {
        self.types
            .iter()
            .position(|t| t.kind == KIND_STRUCT && self.name(t.name) == name)
            .map(|i| i as u32)
            .ok_or_else(|| format!("the kernel's BTF has no struct {name}"))
    }

    /// Follows typedefs and qualifiers.
    fn resolve(&self, mut id: u32) -> u32 {
        while let Some(t) = self.types.get(id as usize) {
            match t.kind {
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                    id = t.reference
                }
                _ => break,
            }
        }
        id
    }

    /// Byte offset and type of member `name` of struct `id`.
    fn member(&self, id: u32, name: &str) -> Result<(u64, u32), String> {
        let owner = self.types.get(id as usize).ok_or("bad BTF type id")?;
        for member in owner.members.chunks_exact(12) {
            let word = |i: usize| u32_at(member, i * 4).unwrap_or(0);
            if self.name(word(0)) == name {
                // With kind_flag the top 8 bits hold a bitfield size.
                let bits = if owner.kind_flag {
                    word(2) & 0xff_ffff
                } else {
                    word(2)
                };
                return Ok((u64::from(bits / 8), word(1)));
            }
        }
        Err(format!(
            "the kernel's struct {} has no field {name}",
            self.name(owner.name)
        ))
    }
}
