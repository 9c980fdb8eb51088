//! Where in a function an entry probe goes.
//!
//! A uprobe on an instruction the kernel cannot emulate is single-stepped out
//! of line, about ten times the cost of an emulated one (glibc's `free` starts
//! with `test %rdi,%rdi`). x86-64 kernels emulate near relative jumps and calls,
//! conditional jumps, NOPs and `push reg`.
//!
//! The rule implemented: decode the function from its first byte and take the
//! first instruction the kernel emulates, provided that every instruction
//! before it
//! * falls through to the next one (no branch, call, return or system call:
//!   the chosen instruction is then reached on every path through the
//!   function, a conditional branch included — the probe may sit on the branch
//!   itself, never past it), and
//! * leaves the argument registers the probe reads unchanged.
//!
//! Otherwise the probe stays at the first instruction. A return probe must
//! sit where the return address is at the top of the stack, and an entry
//! probe beside it costs no second trap: libc's functions with a return probe
//! keep both at the first instruction; the Python allocators' go to
//! [`return_placement`], the same rule with the stack pointer left unchanged
//! too.

use iced_x86::{
    Decoder, DecoderOptions, FlowControl, Instruction, InstructionInfoFactory, OpAccess, Register,
};

/// Instructions looked at before giving up (prologues are short).
const MAX_INSTRUCTIONS: usize = 16;

/// The argument registers of the x86-64 System V calling convention, in order.
const ARGUMENT_REGISTERS: [Register; 6] = [
    Register::RDI,
    Register::RSI,
    Register::RDX,
    Register::RCX,
    Register::R8,
    Register::R9,
];

/// The kernel's multi-byte NOPs (`x86_nops`, arch/x86/include/asm/nops.h).
const KERNEL_NOPS: [&[u8]; 8] = [
    &[0x90],
    &[0x66, 0x90],
    &[0x0f, 0x1f, 0x00],
    &[0x0f, 0x1f, 0x40, 0x00],
    &[0x0f, 0x1f, 0x44, 0x00, 0x00],
    &[0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00],
    &[0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00],
    &[0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00],
];

/// An entry probe's place in a function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Bytes from the function's start.
    pub offset: u64,
    /// Whether the kernel emulates the instruction there.
    pub emulated: bool,
}

/// The entry probe's place in `code` (a function's bytes from its first
/// instruction) for a probe that reads the first `arguments` arguments.
pub fn entry_placement(code: &[u8], arguments: usize) -> Placement {
    placement(
        code,
        &ARGUMENT_REGISTERS[..arguments.min(ARGUMENT_REGISTERS.len())],
    )
}

/// The place in `code` for an entry probe reading the first `arguments`
/// arguments and a return probe, both there: the stack pointer must still
/// point at the return address.
pub fn return_placement(code: &[u8], arguments: usize) -> Placement {
    let mut kept = ARGUMENT_REGISTERS[..arguments.min(ARGUMENT_REGISTERS.len())].to_vec();
    kept.push(Register::RSP);
    placement(code, &kept)
}

/// The first instruction the kernel emulates, reached on every path with
/// the registers of `kept` unchanged; else the first instruction.
fn placement(code: &[u8], kept: &[Register]) -> Placement {
    let mut decoder = Decoder::with_ip(64, code, 0, DecoderOptions::NONE);
    let mut info = InstructionInfoFactory::new();
    let mut first_emulated = false;
    for (index, instruction) in decoder.iter().take(MAX_INSTRUCTIONS).enumerate() {
        if instruction.is_invalid() {
            break;
        }
        let emulated = kernel_emulates(code, &instruction);
        if index == 0 {
            first_emulated = emulated;
        }
        if emulated {
            return Placement {
                offset: instruction.ip(),
                emulated,
            };
        }
        let falls_through = instruction.flow_control() == FlowControl::Next;
        let clobbers = info.info(&instruction).used_registers().iter().any(|used| {
            used.access() != OpAccess::Read
                && used.access() != OpAccess::CondRead
                && used.access() != OpAccess::NoMemAccess
                && kept.contains(&used.register().full_register())
        });
        if !falls_through || clobbers {
            break;
        }
    }
    Placement {
        offset: 0,
        emulated: first_emulated,
    }
}

/// Whether the kernel's uprobes emulate `instruction` instead of
/// single-stepping it (arch/x86/kernel/uprobes.c: `branch_setup_xol_ops`,
/// `push_setup_xol_ops`).
pub fn kernel_emulates(code: &[u8], instruction: &Instruction) -> bool {
    let start = instruction.ip() as usize;
    let Some(bytes) = code.get(start..start + instruction.len()) else {
        return false;
    };
    if KERNEL_NOPS.contains(&bytes) || bytes.last() == Some(&0x90) && bytes.len() <= 2 {
        return true;
    }
    if let [0x50..=0x57] | [0x41, 0x50..=0x57] = bytes {
        return true;
    }
    let relative_branch = instruction.is_jcc_short_or_near()
        || instruction.is_jmp_short_or_near()
        || instruction.is_call_near();
    // The kernel refuses a 16-bit operand-size prefix on branches.
    relative_branch && !prefixes(bytes).contains(&0x66)
}

fn prefixes(bytes: &[u8]) -> &[u8] {
    let count = bytes
        .iter()
        .take_while(|b| {
            matches!(
                b,
                0x26 | 0x2e | 0x36 | 0x3e | 0x64 | 0x65 | 0x66 | 0x67 | 0xf0 | 0xf2 | 0xf3
            )
        })
        .count();
    &bytes[..count]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// glibc 2.36's `free`: `test %rdi,%rdi; je …; push %rbp`.
    const FREE: [u8; 10] = [0x48, 0x85, 0xff, 0x0f, 0x84, 0xbf, 0x00, 0x00, 0x00, 0x55];

    #[test]
    fn free_probe_sits_on_the_null_check_branch() {
        assert_eq!(
            entry_placement(&FREE, 1),
            Placement {
                offset: 3,
                emulated: true
            }
        );
    }

    #[test]
    fn push_at_the_start_is_taken_as_is() {
        // push %r12; push %rbp
        assert_eq!(
            entry_placement(&[0x41, 0x54, 0x55], 1),
            Placement {
                offset: 0,
                emulated: true
            }
        );
    }

    #[test]
    fn never_past_a_write_to_an_argument_it_reads() {
        // mov %rsi,%rax; xor %esi,%esi; push %rbx
        let code = [0x48, 0x89, 0xf0, 0x31, 0xf6, 0x53];
        assert_eq!(entry_placement(&code, 2).offset, 0);
        // Reading only the first argument, the write to %rsi does not matter.
        assert_eq!(entry_placement(&code, 1).offset, 5);
    }

    #[test]
    fn a_return_probe_stays_where_the_return_address_is_on_top() {
        // endbr64; sub $0x8,%rsp; push %rbx
        let code = [0xf3, 0x0f, 0x1e, 0xfa, 0x48, 0x83, 0xec, 0x08, 0x53];
        assert_eq!(entry_placement(&code, 1).offset, 8);
        assert_eq!(return_placement(&code, 1).offset, 0);
        // endbr64; test %rsi,%rsi; je …: the branch, the stack untouched.
        let code = [0xf3, 0x0f, 0x1e, 0xfa, 0x48, 0x85, 0xf6, 0x74, 0x10];
        assert_eq!(
            return_placement(&code, 2),
            Placement {
                offset: 7,
                emulated: true
            }
        );
    }

    #[test]
    fn never_past_a_return_or_system_call() {
        // mov $0xb,%eax; syscall; push %rbx
        let syscall = [0xb8, 0x0b, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x53];
        assert_eq!(entry_placement(&syscall, 2).offset, 0);
        // mov %rdi,%rax; ret; push %rbx
        let ret = [0x48, 0x89, 0xf8, 0xc3, 0x53];
        assert_eq!(entry_placement(&ret, 1).offset, 0);
    }
}
