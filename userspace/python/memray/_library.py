"""The tracker library (`libmemray_tracker.so`), loaded into this process.

`memray run` preloads it; otherwise it is the one installed with this
package, which pip puts next to the `memray` command (the environment's
scripts directory).
"""

import os
import sys

NAME = "libmemray_tracker.so"


def _directories():
    import shutil
    import sysconfig

    yield sysconfig.get_path("scripts")
    if sys.platform != "win32":
        yield sysconfig.get_path("scripts", "posix_user")
    command = shutil.which("memray")
    if command:
        yield os.path.dirname(os.path.realpath(command))


def load():
    """The library as a `ctypes.PyDLL` (calls keep the GIL held, as the
    library's entry points need)."""
    import ctypes

    preloaded = ctypes.PyDLL(None)
    if hasattr(preloaded, "memray_tracker_activate"):
        return preloaded
    searched = []
    for directory in _directories():
        if not directory or directory in searched:
            continue
        searched.append(directory)
        path = os.path.join(directory, NAME)
        if os.path.exists(path):
            # RTLD_LOCAL: its hooks must not interpose on objects loaded later;
            # it points their relocation slots at them while tracking instead.
            return ctypes.PyDLL(path, mode=os.RTLD_LOCAL)
    raise RuntimeError(
        "memray: the tracker library %s is not installed next to the memray command "
        "(looked in %s); reinstall memray-rs" % (NAME, ", ".join(searched) or "no directory")
    )
