"""The files installed with this package next to the `memray` command (the
environment's scripts directory): the tracker library (`libmemray_tracker.so`),
loaded into this process, and the command itself.

`memray run` preloads the library; otherwise it is the one installed with
this package.
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


def installed(name):
    """The path of `name` installed with this package: in the first of the
    candidate directories that holds the tracker library (a `memray`
    command elsewhere, say memray's own, is not ours)."""
    searched = []
    for directory in _directories():
        if not directory or directory in searched:
            continue
        searched.append(directory)
        if os.path.exists(os.path.join(directory, NAME)):
            return os.path.join(directory, name)
    raise RuntimeError(
        "memray: %s is not installed next to the memray command "
        "(looked in %s); reinstall memray-rs" % (NAME, ", ".join(searched) or "no directory")
    )


def load():
    """The library as a `ctypes.PyDLL` (calls keep the GIL held, as the
    library's entry points need)."""
    import ctypes

    preloaded = ctypes.PyDLL(None)
    if hasattr(preloaded, "memray_tracker_activate"):
        return preloaded
    # RTLD_LOCAL: its hooks must not interpose on objects loaded later;
    # it points their relocation slots at them while tracking instead.
    return ctypes.PyDLL(installed(NAME), mode=os.RTLD_LOCAL)
