"""The target side of `memray attach PID` and `memray detach PID` (CPython
3.14+): the command runs a small script in the process with
`sys.remote_exec` (PEP 768) that calls `start` or `stop` here, and reads
the outcome from a status file it named: `tracking`, `stopped`, or
`error: <one line>`.
"""

import atexit

from ._destination import FileDestination
from ._tracker import FileFormat, Tracker

#: The running attach session: (tracker, the attach command's status file).
_session = None


def _say(status_file, text):
    with open(status_file, "w") as file:
        file.write(text)


def start(status_file, output, *, force, native, trace_python_allocators, follow_fork, aggregate, compress):
    global _session
    try:
        tracker = Tracker(
            destination=FileDestination(output, overwrite=force, compress_on_exit=compress),
            native_traces=native,
            trace_python_allocators=trace_python_allocators,
            follow_fork=follow_fork,
            file_format=FileFormat.AGGREGATED_ALLOCATIONS if aggregate else FileFormat.ALL_ALLOCATIONS,
        )
        # The process's stacks are all its own: nothing is hidden.
        tracker._start(skipped_frames=0)
    except Exception as error:
        _say(status_file, "error: %s" % error)
        return
    _session = (tracker, status_file)
    # A process that exits while attached still leaves a complete capture.
    atexit.register(stop)
    _say(status_file, "tracking")


def stop(status_file=None):
    """Ends the session; says so to the attach command and to `status_file`
    (the detach command's)."""
    global _session
    if _session is None:
        if status_file is not None:
            _say(status_file, "error: memray is not tracking this process")
        return
    (tracker, attach_status), _session = _session, None
    atexit.unregister(stop)
    tracker.__exit__(None, None, None)
    for path in (attach_status, status_file):
        if path is not None:
            _say(path, "stopped")
