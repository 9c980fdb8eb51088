"""memray-rs's Python package: memray's API.

`memray.Tracker` tracks the allocations of a `with` block in the running
interpreter; `memray.FileReader` reads a capture (through the Rust reader,
the extension module `memray._memray`); `%load_ext memray` adds the notebook
magic `%%memray_flamegraph`; the profiler's command line is the `memray`
command installed with this package.
"""

from ._destination import Destination, FileDestination, SocketDestination
from ._reader import AllocationRecord, AllocatorType, FileReader, MemorySnapshot, Metadata
from ._tracker import FileFormat, Tracker



def load_ipython_extension(ipython):
    """`%load_ext memray`: memray's cell magic, imported only then (it needs
    argparse, subprocess and tempfile, which a Tracker does not)."""
    from ._ipython import load_ipython_extension as load

    load(ipython)


# The workspace's version (Cargo.toml), which the wheel carries: tests/tests/wheel.rs
# checks that they agree. Not read from the installed metadata, so that the
# package also imports from the source tree.
__version__ = "0.1.0"

__all__ = [
    "AllocationRecord",
    "AllocatorType",
    "Destination",
    "FileDestination",
    "FileFormat",
    "FileReader",
    "MemorySnapshot",
    "Metadata",
    "SocketDestination",
    "Tracker",
    "__version__",
    "load_ipython_extension",
]
