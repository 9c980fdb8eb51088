//! memray's model of the heap, shared by the `--aggregate` writer and every
//! analysis: what an allocator does to the heap ([`Allocator::kind`]), the
//! live blocks and mappings ([`LiveHeap`], mappings in a [`RangeSet`]), and
//! the high-water-mark aggregator ([`HighWaterMarkAggregator`]) that finds
//! each location's share of the peak, per snapshot or over the whole run.

mod high_water_mark;
mod live;
mod ranges;

pub use high_water_mark::{Contribution, HighWaterMarkAggregator, Historical, Totals};
pub use live::{Change, LiveHeap};
pub use memray_allocators::{Allocator, AllocatorKind};
pub use ranges::{RangeSet, Removal};
