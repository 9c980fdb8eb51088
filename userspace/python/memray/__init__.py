"""memray-rs's Python package.

The profiler is the `memray` command installed with this package. The Python
API (`memray.Tracker`, `memray.FileReader`) is not available yet.
"""

from importlib.metadata import version as _distribution_version

__version__ = _distribution_version("memray-rs")
