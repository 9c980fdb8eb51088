//! memray capture files.
