//! Copies of a function inlined behind a guard. PGO builds devirtualize a
//! call through a function pointer into a comparison with the likely
//! target's address and, when it matches, a copy of that function inlined
//! in the caller. A probe on the function misses every call that runs such a
//! copy; code that takes the function's address is the trace they leave.

use iced_x86::{Decoder, DecoderOptions, Instruction, Mnemonic, OpKind};

/// The longest x86 instruction.
const MAX_INSTRUCTION_BYTES: usize = 15;
/// The 32-bit field an address or displacement is encoded in.
const FIELD_BYTES: usize = 4;

/// Whether `instruction` takes `function`'s address: a `lea` of it, or an
/// immediate operand (what a guard compares with), not a call or jump to it.
pub fn takes_address(instruction: &Instruction, function: u64) -> bool {
    let lea = instruction.mnemonic() == Mnemonic::Lea
        && instruction.is_ip_rel_memory_operand()
        && instruction.ip_rel_memory_address() == function;
    let immediate = (0..instruction.op_count()).any(|operand| {
        matches!(
            instruction.op_kind(operand),
            OpKind::Immediate32 | OpKind::Immediate32to64 | OpKind::Immediate64
        ) && instruction.immediate(operand) == function
    });
    lea || immediate
}

/// Whether any instruction of `text` (code mapped at `start`) takes
/// `function`'s address. Every 32-bit field that could encode it, relative
/// to the field's end (`lea`) or absolute (a non-PIE immediate), is checked
/// by decoding the instructions that could hold it; a false match only
/// says yes where no, which callers take as the safe answer.
pub fn address_taken(text: &[u8], start: u64, function: u64) -> bool {
    text.windows(FIELD_BYTES).enumerate().any(|(at, field)| {
        let field = u32::from_le_bytes([field[0], field[1], field[2], field[3]]);
        let relative = start
            .wrapping_add((at + FIELD_BYTES) as u64)
            .wrapping_add(field as i32 as u64);
        (relative == function || u64::from(field) == function)
            && held_by_instruction_taking(text, start, at, function)
    })
}

/// Whether an instruction that holds the field at `at` takes `function`'s
/// address (each possible start before the field is decoded).
fn held_by_instruction_taking(text: &[u8], start: u64, at: usize, function: u64) -> bool {
    let earliest = at.saturating_sub(MAX_INSTRUCTION_BYTES - FIELD_BYTES);
    (earliest..at).any(|begin| {
        let ip = start.wrapping_add(begin as u64);
        let instruction = Decoder::with_ip(64, &text[begin..], ip, DecoderOptions::NONE).decode();
        !instruction.is_invalid()
            && begin + instruction.len() >= at + FIELD_BYTES
            && takes_address(&instruction, function)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: u64 = 0x40_0000;

    #[test]
    fn a_lea_of_the_function_takes_its_address() {
        // nop; lea rdx, [rip + 0x100]; ret
        let text = [0x90, 0x48, 0x8d, 0x15, 0x00, 0x01, 0x00, 0x00, 0xc3];
        let function = START + 8 + 0x100;
        assert!(address_taken(&text, START, function));
        assert!(!address_taken(&text, START, function + 1));
    }

    #[test]
    fn a_comparison_with_its_absolute_address_takes_it() {
        // cmp rax, 0x55b7b0
        let text = [0x48, 0x3d, 0xb0, 0xb7, 0x55, 0x00];
        assert!(address_taken(&text, START, 0x55_b7b0));
    }

    #[test]
    fn calls_and_jumps_to_it_do_not() {
        // call rel32 +0x10; jmp rel32 +0x10
        let text = [0xe8, 0x10, 0x00, 0x00, 0x00, 0xe9, 0x0b, 0x00, 0x00, 0x00];
        assert!(!address_taken(&text, START, START + 0x15));
    }

    #[test]
    fn padding_that_ends_at_the_function_does_not() {
        // A 8-byte NOP (displacement 0) right before the function.
        let text = [0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00];
        assert!(!address_taken(&text, START, START + 8));
    }
}
