//! One module per subcommand; each exposes `Args` (its flags) and `run`.

pub mod parse;
