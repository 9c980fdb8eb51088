//! Flame graph and table pages built from the analysis engine (memray flamegraph, memray table).
