//! Test library loaded into Python with ctypes: walks its own thread stack in-process
