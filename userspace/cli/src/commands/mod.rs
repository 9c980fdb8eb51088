//! One module per subcommand; each exposes `Args` (its flags) and `run`.

pub mod dump_stacks;
pub mod parse;
