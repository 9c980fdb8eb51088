"""The IPython extension (`%load_ext memray`): the cell magic
`%%memray_flamegraph` runs the cell inside a `Tracker` and shows the flame
graph of the capture inline, drawn by the `memray flamegraph` command
installed with this package. Options and output are memray's magic's."""

import argparse
import shlex
import subprocess
import tempfile
from pathlib import Path
from textwrap import indent

from . import _library

TEMPLATE = """\
from memray import Tracker, FileFormat
with Tracker(
    "{capture!s}",
    native_traces={native},
    trace_python_allocators={trace_python_allocators},
    follow_fork={follow_fork},
    file_format=FileFormat.{file_format},
):
{code}
"""


def argument_parser():
    parser = argparse.ArgumentParser(prog="%%memray_flamegraph")
    parser.add_argument("--native", action="store_true", help="Track native (C/C++) stack frames as well")
    parser.add_argument(
        "--follow-fork",
        action="store_true",
        help="Record allocations in child processes forked from the tracked script",
    )
    parser.add_argument(
        "--trace-python-allocators",
        action="store_true",
        help="Record allocations made by the pymalloc allocator",
    )
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument(
        "--leaks",
        dest="show_memory_leaks",
        action="store_true",
        help="Show memory leaks, instead of peak memory usage",
    )
    kind.add_argument(
        "--temporary-allocation-threshold",
        metavar="N",
        dest="temporary_allocation_threshold",
        type=int,
        default=-1,
        help="Report temporary allocations: freed before N other allocations happen",
    )
    kind.add_argument(
        "--temporary-allocations",
        dest="temporary_allocation_threshold",
        action="store_const",
        const=1,
        help="Equivalent to --temporary-allocation-threshold=1",
    )
    parser.add_argument(
        "--temporal",
        action="store_true",
        help="Generate a dynamic flame graph that can analyze allocations in a user-selected time range.",
    )
    parser.add_argument("--split-threads", action="store_true", help="Do not merge allocations across threads")
    parser.add_argument(
        "--inverted",
        action="store_true",
        help="Invert the flame graph: use allocators as roots instead of thread entry points",
    )
    parser.add_argument(
        "--max-memory-records",
        type=int,
        default=None,
        help="Maximum number of memory records to display",
    )
    return parser


def flamegraph_arguments(options):
    """`memray flamegraph`'s options for the magic's."""
    arguments = []
    if options.show_memory_leaks:
        arguments.append("--leaks")
    if options.temporary_allocation_threshold >= 0:
        arguments.append("--temporary-allocation-threshold=%d" % options.temporary_allocation_threshold)
    for wanted, flag in (
        (options.temporal, "--temporal"),
        (options.split_threads, "--split-threads"),
        (options.inverted, "--inverted"),
    ):
        if wanted:
            arguments.append(flag)
    if options.max_memory_records is not None:
        arguments.append("--max-memory-records=%d" % options.max_memory_records)
    return arguments


def memray_flamegraph(shell, line, cell):
    """Memory profile the code in the cell and display a flame graph."""
    from IPython.core.error import UsageError
    from IPython.display import IFrame, display

    try:
        options = argument_parser().parse_args(shlex.split(line))
    except SystemExit:
        # argparse has said what is wrong; control goes back to IPython.
        return
    if options.temporal and options.temporary_allocation_threshold >= 0:
        raise UsageError("Can't create a temporal flame graph of temporary allocations")
    every_record = options.temporal or options.temporary_allocation_threshold >= 0
    results = Path("memray-results")
    results.mkdir(exist_ok=True)
    directory = Path(tempfile.mkdtemp(dir=results))
    if directory.is_absolute():
        directory = directory.relative_to(Path.cwd())
    capture = directory / "memray.dump"
    shell.run_cell(
        TEMPLATE.format(
            capture=capture,
            native=options.native,
            trace_python_allocators=options.trace_python_allocators,
            follow_fork=options.follow_fork,
            file_format="ALL_ALLOCATIONS" if every_record else "AGGREGATED_ALLOCATIONS",
            code=indent(cell, " " * 4),
        )
    )
    page = directory / "flamegraph.html"
    command = [_library.installed("memray"), "flamegraph", "-o", str(page)]
    command += flamegraph_arguments(options) + [str(capture)]
    # The command's own "Wrote ..." line: the magic says where the page is.
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    capture.unlink()
    print("Results saved to %s" % page)
    display(IFrame(str(page), width="100%", height="600"))


def load_ipython_extension(ipython):
    from IPython.core.magic import Magics, cell_magic, magics_class

    @magics_class
    class FlamegraphMagics(Magics):
        @cell_magic
        def memray_flamegraph(self, line, cell):
            return memray_flamegraph(self.shell, line, cell)

    FlamegraphMagics.memray_flamegraph.__doc__ = (
        memray_flamegraph.__doc__ + "\n\n" + argument_parser().format_help()
    )
    ipython.register_magics(FlamegraphMagics)
