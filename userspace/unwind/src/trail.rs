//! A thread's previous unwind, kept so that the next one stops as soon as it reaches the part
//! of the stack that has not changed since, and copies the frames outside it.
//!
//! Why the copy is exact: framehop's step from a frame to the next is a function of the
//! module set, the frame's address, a few registers ([`RegisterState`]) and the stack
//! reader's answers for the words it asks for (its rule cache only remembers rules of that
//! module set). So when an unwind reaches a state (address, registers) that the kept unwind
//! also passed through, with the same module set, and every word the kept unwind read from
//! that state outwards reads the same now (the same answer of the bounds check, the same
//! value), then, step by step, the rest of this unwind would ask for the same words, get the
//! same answers and find the same frames. Nothing is assumed about what happened to the stack
//! in between — returns and new calls at the same depth, `longjmp`, a greenlet's stack copied
//! in, a signal handler's frames: a change to any word the outer part was unwound from fails
//! the check, and the unwind goes on the long way. Debug builds check every copy against a
//! full unwind.

use crate::registers::RegisterState;

/// The deepest unwind kept (deeper ones are not reused), and the words its steps may read.
/// The buffers are reserved at this size; only the pages an unwind reaches are touched.
const STEPS: usize = 4096;
const READS: usize = 2 * STEPS;

/// An unwind at one frame: its address, the registers, and where the reads of its step to
/// the next frame start.
#[derive(Clone, Copy)]
struct Step {
    address: u64,
    registers: RegisterState,
    reads: u32,
}

/// A stack word a step asked for and the answer, or, with `address` [`REFUSED`], the
/// address in `value` of a word the reader refused (only an aligned address is ever read, so
/// [`REFUSED`] never is one).
#[derive(Clone, Copy)]
struct Read {
    address: u64,
    value: u64,
}

const REFUSED: u64 = u64::MAX;

impl Read {
    fn new(address: u64, value: Result<u64, ()>) -> Self {
        match value {
            Ok(value) => Read { address, value },
            Err(()) => Read {
                address: REFUSED,
                value: address,
            },
        }
    }

    /// Whether `read` answers the same now.
    #[inline(always)]
    fn still(&self, read: &impl Fn(u64) -> Result<u64, ()>) -> bool {
        if self.address == REFUSED {
            read(self.value).is_err()
        } else {
            read(self.address) == Ok(self.value)
        }
    }
}

/// The kept unwind, and the one under way. Its buffers are allocated once, at creation.
pub struct Trail {
    /// The module set the kept unwind used (0: nothing kept).
    generation: u64,
    /// The kept unwind's steps, outermost first: the last is its start (an instruction
    /// pointer, never rejoined).
    steps: Vec<Step>,
    /// Their reads, outermost step first.
    reads: Vec<Read>,
    /// The unwind under way: its steps innermost first, and their reads.
    new_steps: Vec<Step>,
    new_reads: Vec<Read>,
    /// The unwind under way outgrew the buffers: it is not kept.
    overflowed: bool,
    /// The kept steps at and past it have stack pointers below the current one: only those
    /// before it may still be rejoined.
    cursor: usize,
    /// The first kept read found changed in this unwind: a rejoin needing it fails (the reads
    /// before it were found unchanged).
    changed_read: usize,
}

impl Trail {
    pub fn new() -> Self {
        Self {
            generation: 0,
            steps: Vec::with_capacity(STEPS),
            reads: Vec::with_capacity(READS),
            new_steps: Vec::with_capacity(STEPS),
            new_reads: Vec::with_capacity(READS),
            overflowed: false,
            cursor: 0,
            changed_read: usize::MAX,
        }
    }

    /// An unwind starts, with the module set `generation`.
    pub fn start(&mut self, generation: u64) {
        if generation != self.generation {
            self.forget();
            self.generation = generation;
        }
        self.new_steps.clear();
        self.new_reads.clear();
        self.overflowed = false;
        self.cursor = self.steps.len().saturating_sub(1);
        self.changed_read = usize::MAX;
    }

    /// The unwind is at a frame and takes the step to the next one.
    pub fn step(&mut self, address: u64, registers: RegisterState) {
        if self.new_steps.len() == self.new_steps.capacity() {
            self.overflowed = true;
            return;
        }
        self.new_steps.push(Step {
            address,
            registers,
            reads: self.new_reads.len() as u32,
        });
    }

    /// The step under way read a word.
    pub fn record(&mut self, address: u64, value: Result<u64, ()>) {
        if self.new_reads.len() == self.new_reads.capacity() {
            self.overflowed = true;
            return;
        }
        self.new_reads.push(Read::new(address, value));
    }

    /// The unwind is at return address `address` with `registers`: if the kept unwind was in
    /// that state and every word it read from there outwards still reads the same through
    /// `read`, the unwind under way is kept (joined to the kept one's outer part) and the
    /// frames outside this one are returned, innermost first.
    #[inline(always)]
    pub fn rejoin(
        &mut self,
        address: u64,
        registers: RegisterState,
        read: &impl Fn(u64) -> Result<u64, ()>,
    ) -> Option<impl Iterator<Item = u64> + '_> {
        let sp = registers[0];
        while self.cursor > 0 && self.steps[self.cursor - 1].registers[0] < sp {
            self.cursor -= 1;
        }
        let index = self.cursor.checked_sub(1)?;
        let step = &self.steps[index];
        // Word by word: one wide load of the caller's registers just stored stalls.
        if step.registers[0] != sp
            || step.address != address
            || step
                .registers
                .iter()
                .zip(registers)
                .any(|(kept, now)| *kept != now)
        {
            return None;
        }
        self.rejoin_at(index, read)
    }

    /// [`Self::rejoin`] once the state matched the kept step `index`.
    fn rejoin_at(
        &mut self,
        index: usize,
        read: &impl Fn(u64) -> Result<u64, ()>,
    ) -> Option<impl Iterator<Item = u64> + '_> {
        // The reads of this step and of all outer ones.
        let end = self.steps[index + 1].reads as usize;
        if self.changed_read == usize::MAX {
            if let Some(changed) = self.reads[..end].iter().position(|kept| !kept.still(read)) {
                self.changed_read = changed;
            }
        }
        if end > self.changed_read {
            return None;
        }
        self.steps.truncate(index + 1);
        self.reads.truncate(end);
        self.keep_new();
        Some(self.steps[..index].iter().rev().map(|step| step.address))
    }

    /// The unwind ended the long way: it is kept.
    pub fn finish(&mut self) {
        self.forget();
        self.keep_new();
    }

    /// Nothing is kept (the unwind under way was cut short).
    pub fn forget(&mut self) {
        self.steps.clear();
        self.reads.clear();
    }

    /// Appends the unwind under way's steps, outermost first, to the kept ones.
    fn keep_new(&mut self) {
        if self.overflowed
            || self.steps.len() + self.new_steps.len() > STEPS
            || self.reads.len() + self.new_reads.len() > READS
        {
            self.forget();
            return;
        }
        let mut reads_end = self.new_reads.len();
        for step in self.new_steps.iter().rev() {
            let start = self.reads.len() as u32;
            self.reads
                .extend_from_slice(&self.new_reads[step.reads as usize..reads_end]);
            reads_end = step.reads as usize;
            self.steps.push(Step {
                reads: start,
                ..*step
            });
        }
    }
}

impl Default for Trail {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// A stack as words by address; a step reads the return address at `sp` and moves 16 up.
    struct Stack(HashMap<u64, u64>);

    impl Stack {
        fn read(&self, address: u64) -> Result<u64, ()> {
            self.0.get(&address).copied().ok_or(())
        }
    }

    fn registers(sp: u64) -> RegisterState {
        let mut registers = RegisterState::default();
        registers[0] = sp;
        registers
    }

    /// Unwinds `stack` from `ip` at `sp` the way the unwinder drives the trail; the frames,
    /// and how many were copied.
    fn unwind(trail: &mut Trail, stack: &Stack, ip: u64, sp: u64) -> (Vec<u64>, usize) {
        trail.start(1);
        let (mut address, mut sp, mut frames) = (ip, sp, vec![ip]);
        loop {
            if frames.len() > 1 {
                let read = |word| stack.read(word);
                if let Some(outer) = trail.rejoin(address, registers(sp), &read) {
                    let outer: Vec<u64> = outer.collect();
                    frames.extend(&outer);
                    return (frames, outer.len());
                }
            }
            trail.step(address, registers(sp));
            let next = stack.read(sp);
            trail.record(sp, next);
            match next {
                Ok(return_address) if return_address != 0 => {
                    address = return_address;
                    sp += 16;
                    frames.push(address);
                }
                _ => {
                    trail.finish();
                    return (frames, 0);
                }
            }
        }
    }

    fn stack(words: &[(u64, u64)]) -> Stack {
        Stack(words.iter().copied().collect())
    }

    #[test]
    fn an_unchanged_outer_part_is_copied() {
        let mut trail = Trail::new();
        let first = stack(&[(100, 0xa), (116, 0xb), (132, 0xc)]);
        assert_eq!(
            unwind(&mut trail, &first, 0x1, 100),
            (vec![0x1, 0xa, 0xb, 0xc], 0)
        );
        // A new innermost frame below the same outer ones: rejoined at 0xa.
        let deeper = stack(&[(84, 0xa), (100, 0xa), (116, 0xb), (132, 0xc)]);
        let (frames, copied) = unwind(&mut trail, &deeper, 0x2, 84);
        assert_eq!(frames, [0x2, 0xa, 0xa, 0xb, 0xc]);
        assert_eq!(copied, 2);
    }

    #[test]
    fn a_changed_outer_word_is_unwound_the_long_way() {
        let mut trail = Trail::new();
        let first = stack(&[(100, 0xa), (116, 0xb), (132, 0xc)]);
        unwind(&mut trail, &first, 0x1, 100);
        // Same state at 0xa (sp 116), but an outer caller changed: the same frames as a
        // full unwind, none copied.
        let changed = stack(&[(100, 0xa), (116, 0xb), (132, 0xd)]);
        assert_eq!(
            unwind(&mut trail, &changed, 0x1, 100),
            (vec![0x1, 0xa, 0xb, 0xd], 0)
        );
        // The stack's end moved: the word refused at its end now reads.
        let longer = stack(&[(100, 0xa), (116, 0xb), (132, 0xd), (148, 0xe)]);
        let (frames, copied) = unwind(&mut trail, &longer, 0x1, 100);
        assert_eq!((frames, copied), (vec![0x1, 0xa, 0xb, 0xd, 0xe], 0));
    }

    #[test]
    fn another_module_set_forgets_the_trail() {
        let mut trail = Trail::new();
        let first = stack(&[(100, 0xa), (116, 0xb)]);
        unwind(&mut trail, &first, 0x1, 100);
        trail.start(2);
        assert!(trail
            .rejoin(0xa, registers(116), &|word| first.read(word))
            .is_none());
    }
}
