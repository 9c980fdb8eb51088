//! Where a thread's pthread-specific values live, derived from the target's
//! libc: the stack walk reads the interpreter's thread state of the
//! allocating thread through CPython's `autoTSSkey`, a pthread key.
//!
//! glibc keeps the values of the first keys in `struct pthread` itself
//! (`specific_1stblock`, entries of `{seq, data}`), and `struct pthread` is at
//! the thread pointer (`%fs` base). Its offset changes between glibc builds,
//! so it is read off `pthread_getspecific`'s own code: the fast path computes
//! the slot address from the key and the thread pointer and loads from it.
//! A few instructions are evaluated symbolically as `thread_pointer? +
//! scale·key + constant` until that load.

use iced_x86::{Decoder, DecoderOptions, FlowControl, Instruction, Mnemonic, OpKind, Register};

/// Instructions followed before giving up.
const MAX_INSTRUCTIONS: usize = 32;

/// How to find the value of a pthread key in a thread's `struct pthread`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PthreadKeyLayout {
    /// Keys below this are stored in the thread itself.
    pub inline_keys: u32,
    /// Bytes between the values of consecutive keys.
    pub stride: u64,
    /// Offset of key 0's value from the thread pointer.
    pub value_offset: u64,
}

impl PthreadKeyLayout {
    /// Decodes `pthread_getspecific`'s code (from its first instruction).
    pub fn from_getspecific(code: &[u8]) -> Option<PthreadKeyLayout> {
        let mut decoder = Decoder::with_ip(64, code, 0, DecoderOptions::NONE);
        let mut state = Registers::new();
        let mut inline_keys = None;
        for instruction in decoder.iter().take(MAX_INSTRUCTIONS) {
            if instruction.is_invalid() {
                return None;
            }
            // The bound check of the fast path: `cmp $31,%edi; ja slow_path`.
            if instruction.mnemonic() == Mnemonic::Cmp
                && state.get(instruction.op_register(0)) == Some(Value::KEY)
                && instruction.op_kind(1) != OpKind::Register
            {
                inline_keys = u32::try_from(instruction.immediate(1)).ok()?.checked_add(1);
                continue;
            }
            if let Some(address) = state.loaded_address(&instruction) {
                if address.thread_pointer && address.scale > 0 {
                    return Some(PthreadKeyLayout {
                        inline_keys: inline_keys?,
                        stride: address.scale as u64,
                        value_offset: address.constant as u64,
                    });
                }
            }
            match instruction.flow_control() {
                // The slow path is behind the conditional branch: fall through.
                FlowControl::Next | FlowControl::ConditionalBranch => state.step(&instruction),
                _ => return None,
            }
        }
        None
    }

    /// Address of `key`'s value for the thread whose thread pointer
    /// (`pthread_self()`, the `%fs` base) is `thread_pointer`.
    pub fn value_address(&self, thread_pointer: u64, key: u32) -> Option<u64> {
        (key < self.inline_keys)
            .then(|| thread_pointer + self.value_offset + self.stride * u64::from(key))
    }
}

/// `thread_pointer? + scale·key + constant`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Value {
    thread_pointer: bool,
    scale: i64,
    constant: i64,
}

impl Value {
    const KEY: Value = Value {
        thread_pointer: false,
        scale: 1,
        constant: 0,
    };
    const THREAD_POINTER: Value = Value {
        thread_pointer: true,
        scale: 0,
        constant: 0,
    };

    fn constant(constant: i64) -> Value {
        Value {
            thread_pointer: false,
            scale: 0,
            constant,
        }
    }

    fn plus(self, other: Value) -> Option<Value> {
        (!(self.thread_pointer && other.thread_pointer)).then(|| Value {
            thread_pointer: self.thread_pointer || other.thread_pointer,
            scale: self.scale.wrapping_add(other.scale),
            constant: self.constant.wrapping_add(other.constant),
        })
    }

    fn times(self, factor: i64) -> Option<Value> {
        (!self.thread_pointer).then(|| Value {
            thread_pointer: false,
            scale: self.scale.wrapping_mul(factor),
            constant: self.constant.wrapping_mul(factor),
        })
    }
}

/// What is known of the general registers (by full register).
struct Registers(Vec<(Register, Value)>);

impl Registers {
    fn new() -> Registers {
        Registers(vec![(Register::RDI, Value::KEY)])
    }

    fn get(&self, register: Register) -> Option<Value> {
        let full = register.full_register();
        self.0.iter().find(|(r, _)| *r == full).map(|(_, v)| *v)
    }

    fn set(&mut self, register: Register, value: Option<Value>) {
        let full = register.full_register();
        self.0.retain(|(r, _)| *r != full);
        if let Some(value) = value {
            self.0.push((full, value));
        }
    }

    /// The value of a memory operand's address, where it is known.
    fn address(&self, instruction: &Instruction) -> Option<Value> {
        let displacement = Value::constant(instruction.memory_displacement64() as i64);
        let base = match instruction.memory_base() {
            Register::None => Value::constant(0),
            base => self.get(base)?,
        };
        let index = match instruction.memory_index() {
            Register::None => Value::constant(0),
            index => self
                .get(index)?
                .times(i64::from(instruction.memory_index_scale()))?,
        };
        base.plus(index)?.plus(displacement)
    }

    /// The thread pointer, read from `%fs:0x10` (glibc's `header.self`) or `%fs:0` (`tcb`).
    fn thread_pointer_load(instruction: &Instruction) -> bool {
        instruction.memory_segment() == Register::FS
            && instruction.memory_base() == Register::None
            && instruction.memory_index() == Register::None
            && matches!(instruction.memory_displacement64(), 0 | 0x10)
    }

    /// The address a `mov reg, [mem]` reads from, if it is known and not `%fs`-relative.
    fn loaded_address(&self, instruction: &Instruction) -> Option<Value> {
        let loads = instruction.mnemonic() == Mnemonic::Mov
            && instruction.op_kind(0) == OpKind::Register
            && instruction.op_kind(1) == OpKind::Memory
            && instruction.memory_segment() != Register::FS;
        loads.then(|| self.address(instruction)).flatten()
    }

    /// Evaluates one instruction; whatever it writes and is not understood becomes unknown.
    fn step(&mut self, instruction: &Instruction) {
        if instruction.op_count() == 0 || instruction.op_kind(0) != OpKind::Register {
            return;
        }
        let target = instruction.op_register(0);
        let source = || -> Option<Value> {
            match instruction.op_kind(1) {
                OpKind::Register => self.get(instruction.op_register(1)),
                OpKind::Memory if Self::thread_pointer_load(instruction) => {
                    Some(Value::THREAD_POINTER)
                }
                OpKind::Memory => None,
                _ => Some(Value::constant(instruction.immediate(1) as i64)),
            }
        };
        let value = match instruction.mnemonic() {
            Mnemonic::Mov => source(),
            Mnemonic::Add => self.get(target).zip(source()).and_then(|(a, b)| a.plus(b)),
            Mnemonic::Shl => match (self.get(target), source()) {
                (Some(a), Some(b)) if !b.thread_pointer && b.scale == 0 && b.constant < 32 => {
                    a.times(1 << b.constant)
                }
                _ => None,
            },
            Mnemonic::Lea => self.address(instruction),
            Mnemonic::Cmp | Mnemonic::Test => return,
            _ => None,
        };
        self.set(target, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_2_36_getspecific() {
        // cmp $0x1f,%edi; ja +; mov %edi,%eax; add $0x31,%rax; shl $4,%rax;
        // add %fs:0x10,%rax; mov 0x8(%rax),%rdx
        let code = [
            0x83, 0xff, 0x1f, 0x77, 0x3b, 0x89, 0xf8, 0x48, 0x83, 0xc0, 0x31, 0x48, 0xc1, 0xe0,
            0x04, 0x64, 0x48, 0x03, 0x04, 0x25, 0x10, 0x00, 0x00, 0x00, 0x48, 0x8b, 0x50, 0x08,
        ];
        let layout = PthreadKeyLayout::from_getspecific(&code).expect("decoded");
        assert_eq!(
            layout,
            PthreadKeyLayout {
                inline_keys: 32,
                stride: 16,
                value_offset: 0x318
            }
        );
        assert_eq!(layout.value_address(0x1000, 2), Some(0x1000 + 0x318 + 32));
        assert_eq!(layout.value_address(0x1000, 32), None);
    }
}
