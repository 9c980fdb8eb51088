"""`memray.Tracker`: tracks the allocations of every thread while a `with`
block runs, in the interpreter that is already running.

The tracker library (the one `memray run` preloads) does the work: loaded
late, it points the loaded objects' relocation slots at its hooks while
active. The rules and messages are memray's.
"""

import enum
import os
import sys
import threading

from . import _bootstrap, _library
from ._destination import FileDestination, SocketDestination

#: One tracker at a time in the whole process.
_creation_lock = threading.Lock()


class FileFormat(enum.IntEnum):
    """The format of a capture file (memray's values)."""

    ALL_ALLOCATIONS = 0
    AGGREGATED_ALLOCATIONS = 1


def _create_output(destination):
    """Creates the file now, as memray does when the Tracker is made."""
    path = os.fspath(destination.path)
    flags = os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC
    if not destination.overwrite:
        flags |= os.O_EXCL
    try:
        os.close(os.open(path, flags, 0o644))
    except FileExistsError:
        raise OSError(
            "Output file %s already exists. Memray can overwrite it with the"
            " --force CLI argument or the overwrite=True API argument." % path
        ) from None
    except OSError as error:
        raise OSError("Could not create output file %s: %s" % (path, error.strerror)) from None
    return path


def _serve(destination):
    """A listening socket for `destination`, handed to the tracker library
    (which owns it from then on and waits there for the reader, as memray's
    SocketDestination does): its descriptor, as the bootstrap passes it."""
    import socket

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((destination.address, destination.server_port))
        listener.listen(1)
    except OSError:
        listener.close()
        raise
    return str(listener.detach())


def _frames_above(frame):
    depth = 0
    while frame is not None:
        depth += 1
        frame = frame.f_back
    return depth


class Tracker:
    """Context manager for tracking memory allocations in a Python script.

    Any code inside of the ``with`` block will have its allocations tracked,
    and so will the allocations of other threads while it runs. Only one
    tracker can be active in the process at a time, and a tracker can be used
    once.

    Args:
        file_name (str or pathlib.Path): The file to write the captured
            allocations into; the only positional argument. Exactly one of it
            and *destination* must be given.
        destination (FileDestination or SocketDestination): Where to write.
        native_traces (bool): Capture native stack frames too.
        follow_fork (bool): Forked children write their own capture.
        trace_python_allocators (bool): Record pymalloc's allocations too.
        memory_interval_ms (int): Milliseconds between resident set size samples.
        file_format (FileFormat): The capture's format.
    """

    def __init__(
        self,
        file_name=None,
        *,
        destination=None,
        native_traces=False,
        memory_interval_ms=10,
        follow_fork=False,
        trace_python_allocators=False,
        file_format=FileFormat.ALL_ALLOCATIONS,
    ):
        if (file_name, destination).count(None) != 1:
            raise TypeError("Exactly one of 'file_name' or 'destination' argument must be specified")
        if file_name is not None:
            destination = FileDestination(path=file_name)
        if not isinstance(destination, FileDestination):
            if follow_fork:
                raise RuntimeError("follow_fork requires an output file")
            if file_format != FileFormat.ALL_ALLOCATIONS:
                raise RuntimeError("AGGREGATED_ALLOCATIONS requires an output file")
        if isinstance(destination, SocketDestination):
            # Served when the block starts, as memray does.
            self._output = None
            self._socket = destination
            self._flags = _bootstrap.LIVE
        elif isinstance(destination, FileDestination):
            self._output = _create_output(destination)
            self._socket = None
            self._flags = _bootstrap.FORCE
            if destination.compress_on_exit:
                self._flags |= _bootstrap.COMPRESS
            if destination.buffered:
                self._flags |= _bootstrap.BUFFERED
        else:
            raise TypeError("destination must be a SocketDestination or FileDestination")
        for wanted, flag in (
            (native_traces, _bootstrap.NATIVE),
            (follow_fork, _bootstrap.FOLLOW_FORK),
            (trace_python_allocators, _bootstrap.TRACE_PYTHON_ALLOCATORS),
            (file_format == FileFormat.AGGREGATED_ALLOCATIONS, _bootstrap.AGGREGATE),
        ):
            if wanted:
                self._flags |= flag
        self._memory_interval_ms = int(memory_interval_ms)
        self._used = False
        self._library = None

    def __enter__(self):
        # Like memray: the reports leave out the frames above the `with`.
        self._start(skipped_frames=_frames_above(sys._getframe(1)) - 1)
        return self

    def _start(self, skipped_frames):
        with _creation_lock:
            library = _library.load()
            library.memray_tracker_is_active.restype = int
            if library.memray_tracker_is_active():
                raise RuntimeError("No more than one Tracker instance can be active at the same time")
            if self._used:
                raise RuntimeError("Attempting to use stale output handle")
            self._used = True
            _bootstrap.name_threads(library)
            output = self._output if self._socket is None else _serve(self._socket)
            settings = _Settings(output, self._flags, self._memory_interval_ms)
            if _bootstrap.activate_library(library, settings, skipped_frames) != 0:
                _forget_thread_names()
                raise RuntimeError(_bootstrap.last_error(library))
            self._library = library

    def __exit__(self, exc_type, exc_value, exc_traceback):
        with _creation_lock:
            library, self._library = self._library, None
            if library is None:
                return
            if library.memray_tracker_deactivate() != 0:
                sys.stderr.write("Memray ERROR: %s\n" % _bootstrap.last_error(library))
            _forget_thread_names()


class _Settings:
    """The bootstrap's view of what to record."""

    def __init__(self, output, flags, memory_interval_ms):
        self.output = output
        self.flags = flags
        self.memory_interval_ms = memory_interval_ms
        self.command_line = " ".join(sys.argv)


def _forget_thread_names():
    for attribute in ("_name", "_ident"):
        try:
            delattr(threading.Thread, attribute)
        except AttributeError:
            pass
