//! One module per subcommand; each exposes `Args` (its flags) and `run`.

pub mod attach;
pub mod capture;
pub mod diff;
pub mod dump_stacks;
pub mod ebpf_capture;
pub mod flamegraph;
pub mod inputs;
pub mod parse;
pub mod report;
pub mod run;
pub mod selection;
pub mod stats;
pub mod summary;
pub mod table;
pub mod transform;
pub mod tree;
pub mod unavailable;
