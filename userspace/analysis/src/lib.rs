//! Analysis of memray captures: the high-water mark, leaks, temporary
//! allocations, memory over time and statistics, with memray's exact rules
//! (memray-behaviour.md §2). The engine consumes [`Event`]s from any
//! [`Capture`]; stacks stay trie node ids until a [`StackResolver`] renders them.

mod capture;
mod error;
mod event;
mod file;
mod groups;
pub mod histogram;
mod live;
pub mod memory;
mod modules;
mod peak;
mod ranges;
mod stack;
mod stats;
mod temporary;

pub use capture::{
    high_water_mark, leaks, overview, statistics, temporary_allocations, Capture, Overview,
};
pub use error::{
    AnalysisError, HISTORY_ON_AGGREGATED, STATISTICS_ON_AGGREGATED, TEMPORARY_ON_AGGREGATED,
};
pub use event::{AggregatedAllocation, Allocation, Event, MemorySnapshot};
pub use file::CaptureFile;
pub use groups::{AllocationGroup, Grouper};
pub use live::LiveAllocations;
pub use memray_format::{Allocator, AllocatorKind};
pub use modules::{ModuleResolver, PathInfo};
pub use peak::{HighWaterMark, PeakFinder};
pub use ranges::{RangeSet, Removal};
pub use stack::{Frame, StackResolver};
pub use stats::{ModuleTotals, Statistics, StatsCollector};
pub use temporary::TemporaryAllocations;
