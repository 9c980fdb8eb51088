"""memray-rs's Python package.

The profiler is the `memray` command installed with this package. The Python
API (`memray.Tracker`, `memray.FileReader`) is not available yet.
"""

# The workspace's version (Cargo.toml), which the wheel carries: tests/tests/wheel.rs
# checks that they agree. Not read from the installed metadata, so that the
# package also imports from the source tree.
__version__ = "0.1.0"
