//! Line tables.
