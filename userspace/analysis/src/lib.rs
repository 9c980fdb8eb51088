//! Analysis of memray captures: the high-water mark, leaks, temporary
//! allocations, memory over time and statistics, with memray's exact rules
//! (docs/memray-analysis.md). The engine consumes [`Event`]s from any
//! [`Capture`]; stacks stay trie node ids until a [`StackResolver`] renders them.

mod block;
mod capture;
mod error;
mod file;
mod groups;
pub mod histogram;
mod lifetimes;
mod live;
pub mod memory;
mod modules;
mod peak;
mod peak_groups;
pub mod processes;
mod replay_stacks;
mod stack;
mod stats;
mod temporal;
mod temporal_peak;
mod temporary;

pub use capture::{
    high_water_mark, leaks, overview, overview_and_high_water_mark, overview_and_leaks,
    overview_and_temporal_high_water_mark, overview_and_temporal_leaks,
    overview_and_temporary_allocations, overview_high_water_mark_and_leaks, statistics,
    temporal_high_water_mark, temporal_leaks, temporary_allocations, Capture, Overview,
};
pub use error::{AnalysisError, NeedsEveryRecord};
pub use file::CaptureFile;
pub use groups::{AllocationGroup, Grouper};
pub use live::LiveAllocations;
pub use memray_format::{AggregatedLocation, AllocationEvent, Event, MemorySnapshot};
pub use memray_format::{Allocator, AllocatorKind};
pub use modules::{ModuleResolver, PathInfo};
pub use peak::{HighWaterMark, PeakFinder};
pub use replay_stacks::ReplayStacks;
pub use stack::{Frame, StackIds, StackResolver};
pub use stats::{ModuleTotals, Statistics, StatsCollector};
pub use temporal::{Interval, TemporalHighWaterMark, TemporalLocation, TemporalRecord};
pub use temporary::TemporaryAllocations;
