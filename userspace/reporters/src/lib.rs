//! Reports over memray captures: `stats`, `summary`, `tree`, `transform`
//! and `diff`, laid out as memray 1.20 lays them out.

pub mod diff;
pub mod html_report;
pub mod input;
pub mod metadata;
mod pprof;
pub mod processes;
pub mod progress;
pub mod pyjson;
pub mod size;
pub mod stats;
pub mod summary;
mod table;
pub mod transform;
pub mod tree;
pub mod tree_view;

pub use metadata::Metadata;
pub use size::size_fmt;
