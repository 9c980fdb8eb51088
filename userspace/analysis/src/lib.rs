//! Analysis of capture files.
