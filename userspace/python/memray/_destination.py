"""Where a `Tracker` writes: memray's destination classes, field for field."""

import pathlib
import typing
from dataclasses import dataclass


@dataclass(frozen=True)
class Destination:
    pass


@dataclass(frozen=True)
class FileDestination(Destination):
    """Specify an output file to write captured allocations into.

    Args:
        path: The path to the output file.
        overwrite: By default, if a file already exists at that path an
            exception will be raised. If you provide ``overwrite=True``, then
            the existing file will be overwritten instead.
        compress_on_exit: By default, the output file is compressed with LZ4
            after tracking completes. Set this to ``False`` to skip compression.
        buffered: By default, captured allocations are written to the output
            file using a shared writable ``mmap``. If you provide
            ``buffered=True``, they are written with ordinary ``write`` calls.
    """

    path: typing.Union[pathlib.Path, str]
    overwrite: bool = False
    compress_on_exit: bool = True
    buffered: bool = False


@dataclass(frozen=True)
class SocketDestination(Destination):
    """Specify a port to serve captured allocations on (live tracking).

    Args:
        server_port: The port to accept a client connection on.
        address: The address to bind the server socket to.
    """

    server_port: int
    address: str = "127.0.0.1"
