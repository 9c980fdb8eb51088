//! The in-process tracker: an LD_PRELOAD library that records every allocation of a Python program
