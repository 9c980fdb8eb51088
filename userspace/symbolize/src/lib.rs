//! Report-time symbolization of native return addresses, and memray's hybrid-stack and hidden-frame rules.
