//! CPython introspection: find the interpreter, walk thread stacks, read code
//! objects and decode their line tables, for CPython 3.8 to 3.14.

pub mod linetable;
