"""The pytest plugin (pytest-memray's interface), on this package's Tracker
and FileReader. Registered through the ``pytest11`` entry point ``memray``.

``pytest --memray`` tracks every test and prints, after the run, the tests
that allocated most at their peak; the markers ``limit_memory`` and
``limit_leaks`` fail a test that allocates too much at its peak or leaks too
much from one call stack. Options, ini keys, markers and messages are
pytest-memray's.
"""

import argparse
import collections
import functools
import inspect
import math
import os
import pickle
import re
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Callable, Optional, Tuple

import pytest

from . import FileFormat, FileReader, Tracker

#: Where pytest-xdist workers write their results (set by the controller).
RESULT_PATH_VARIABLE = "MEMRAY_RESULT_PATH"
TOP_ALLOCATIONS = 5
HISTOGRAM_BINS = 5
#: limit_memory failures list this many allocations unless -vv.
LISTED_ALLOCATIONS = 10


# -- sizes ------------------------------------------------------------------

_SIZE = re.compile(r"(?P<quantity>\+?\d*\.\d+|\+?\d+)\s*(?P<unit>[KMGTP]B|B)", re.IGNORECASE)
_MULTIPLIERS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4, "PB": 1024**5}


def parse_memory_string(text):
    """Bytes in "24 MB" (binary units, as pytest-memray reads them)."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"Invalid memory size format: {text}")
    return float(match["quantity"]) * _MULTIPLIERS[match["unit"].upper()]


def sizeof_fmt(number, suffix="B"):
    for unit in ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi"]:
        if abs(number) < 1024.0:
            return f"{number:3.1f}{unit}{suffix}"
        number /= 1024.0
    return f"{number:.1f}Yi{suffix}"


# -- what a filter_fn receives ------------------------------------------------


@dataclass
class StackFrame:
    """One frame of a call stack."""

    function: str
    filename: str
    lineno: int


@dataclass
class Stack:
    """The call stack of an allocation, most recent frame first."""

    frames: Tuple[StackFrame, ...]


# -- options --------------------------------------------------------------------


def _writable_directory(value):
    folder = Path(value).absolute()
    if folder.exists() and not folder.is_dir():
        raise argparse.ArgumentTypeError(f"{folder} must be a directory")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise argparse.ArgumentTypeError(f"cannot create directory {folder} due to {error}")
    if not os.access(folder, os.W_OK):
        raise argparse.ArgumentTypeError(f"{folder} is read-only")
    return folder


def _positive_int(value):
    number = int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value} is an invalid positive int value")
    return number


def _setting(config, key):
    """The command line's value, else the ini file's."""
    value = config.getvalue(key)
    if value is not None:
        return value
    try:
        return config.getini(key)
    except (KeyError, ValueError):
        return None


def pytest_addoption(parser):
    group = parser.getgroup("memray")
    group.addoption("--memray", action="store_true", default=False, help="Activate memray tracking")
    group.addoption(
        "--memray-bin-path",
        type=_writable_directory,
        default=None,
        help="Path where to write the memray binary dumps (by default a temporary folder)",
    )
    group.addoption(
        "--memray-bin-prefix",
        default=None,
        help="Prefix to use for the binary dump (by default a random UUID4 hex)",
    )
    group.addoption(
        "--hide-memray-summary",
        action="store_true",
        default=False,
        help="Hide the memray summary at the end of the execution",
    )
    group.addoption(
        "--most-allocations",
        type=int,
        default=5,
        help="Show the N tests that allocate most memory (N=0 for all)",
    )
    group.addoption(
        "--stacks",
        type=_positive_int,
        default=1,
        help="Show the N stack entries when showing tracebacks of memory allocations",
    )
    group.addoption(
        "--native",
        action="store_true",
        default=False,
        help="Show native frames when showing tracebacks of memory allocations (will be slower)",
    )
    group.addoption(
        "--trace-python-allocators",
        action="store_true",
        default=False,
        help="Record allocations made by the Pymalloc allocator (will be slower)",
    )
    group.addoption(
        "--fail-on-increase",
        action="store_true",
        default=False,
        help="Fail a test with the limit_memory marker if it uses more memory than its last successful run",
    )
    parser.addini("memray", "Activate pytest.ini setting", type="bool")
    parser.addini("hide_memray_summary", "Hide the memray summary at the end of the execution", type="bool")
    parser.addini("stacks", "Show the N stack entries when showing tracebacks of memory allocations")
    parser.addini("native", "Show native frames when showing tracebacks of memory allocations", type="bool")
    parser.addini("trace_python_allocators", "Record allocations made by the Pymalloc allocator", type="bool")
    parser.addini("fail-on-increase", "Fail a limit_memory test that uses more than its last run", type="bool")
    parser.addini("most_allocations", "Show the N tests that allocate most memory (N=0 for all)")


# -- markers ------------------------------------------------------------------


@dataclass
class Failure:
    """Why a marker fails a test: the report's message and its section."""

    long_repr: str
    section: Optional[Tuple[str, str]]


def _allocations_text(records, native, stacks):
    lines = []
    for record in records:
        trace = record.hybrid_stack_trace() if native else record.stack_trace()
        if not trace:
            continue
        lines.append(f"    - {sizeof_fmt(record.size)} allocated here:")
        for index, (function, filename, line) in enumerate(trace):
            if index == stacks:
                lines.append("        ...")
                break
            lines.append(f"        {function}:{filename}:{line}")
    return "\n".join(lines)


def _records(records, reader, current_thread_only):
    return [
        record
        for record in records
        if not current_thread_only or record.tid == reader.metadata.main_thread_id
    ]


def limit_memory(limit, *, current_thread_only=False, _result_file, _config, _test_id):
    """Limit memory used by the test."""
    reader = FileReader(_result_file)
    records = _records(
        reader.get_high_watermark_allocation_records(merge_threads=not current_thread_only),
        reader,
        current_thread_only,
    )
    allowed = parse_memory_string(limit)
    used = sum(record.size for record in records)
    cache = getattr(_config, "cache", None)  # None under -p no:cacheprovider
    if cache is not None:
        key = f"memray/{_test_id}"
        cached = cache.get(key, {})
        previous = cached.get("total_allocated_memory", float("inf"))
        if _setting(_config, "fail_on_increase") and used > previous:
            return Failure(
                f"Test previously used {sizeof_fmt(previous)} but now uses {sizeof_fmt(used)}",
                ("memray-max-memory", "Test uses more memory than previous run"),
            )
        cached["total_allocated_memory"] = used
        cache.set(key, cached)
    if used < allowed:
        return None
    verbosity = _config.option.verbose
    section = None
    if verbosity >= 0:
        listed = records
        if verbosity < 2:
            listed = sorted(records, key=lambda record: record.size, reverse=True)[:LISTED_ALLOCATIONS]
        text = _allocations_text(listed, bool(_setting(_config, "native")), int(_setting(_config, "stacks")))
        if len(records) > len(listed):
            text += f"\n    ...and {len(records) - len(listed)} more"
        section = ("memray-max-memory", "List of allocations:\n" + text)
    return Failure(f"Test was limited to {sizeof_fmt(allowed)} but allocated {sizeof_fmt(used)}", section)


def limit_leaks(location_limit, *, filter_fn=None, current_thread_only=False, _result_file, _config, _test_id):
    """Limit memory leaked by the test per call stack."""
    reader = FileReader(_result_file)
    allowed = parse_memory_string(location_limit)

    def reported(record):
        if record.size < allowed:
            return False
        if filter_fn is None:
            return True
        frames = tuple(StackFrame(*frame) for frame in record.hybrid_stack_trace())
        return filter_fn(Stack(frames))

    records = _records(
        reader.get_leaked_allocation_records(merge_threads=not current_thread_only),
        reader,
        current_thread_only,
    )
    leaked = [record for record in records if reported(record)]
    if not leaked:
        return None
    text = _allocations_text(leaked, True, max(int(_setting(_config, "stacks")), 5))
    return Failure(
        f"Test was allowed to leak {sizeof_fmt(allowed)} per location but at least one location leaked more",
        ("memray-leaked-memory", "List of leaked allocations:\n" + text),
    )


MARKERS = {"limit_memory": limit_memory, "limit_leaks": limit_leaks}


# -- the run --------------------------------------------------------------------


@dataclass
class Result:
    test_id: str
    metadata: object
    result_file: Path


def _histogram(sizes, bins):
    bars = " ▁▂▃▄▅▆▇█"
    logs = [math.log(size or 1) for size in sizes]
    low, high = min(logs), max(logs)
    step = ((high - low) / bins) or low or 1
    counts = collections.Counter((value - low) // step for value in logs)
    per_bin = [counts[index] for index in range(bins)]
    return "".join(bars[int(count * (len(bars) - 1) / max(per_bin))] for count in per_bin)


class Manager:
    """Tracks the tests, checks their markers and prints the summary."""

    def __init__(self, config):
        self.config = config
        self.results = {}
        self._temporary = None
        path = config.getvalue("memray_bin_path")
        if path is None:
            inherited = os.environ.get(RESULT_PATH_VARIABLE)
            if not inherited:
                # The controller's directory, which pytest-xdist's workers inherit.
                self._temporary = TemporaryDirectory()
                os.environ[RESULT_PATH_VARIABLE] = inherited = self._temporary.name
            path = Path(inherited)
        self.result_path = path
        self.prefix = config.getvalue("memray_bin_prefix") or uuid.uuid4().hex
        self.metadata_path = path / "metadata"
        self.metadata_path.mkdir(parents=True, exist_ok=True)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_unconfigure(self, config):
        yield
        if self._temporary is not None:
            self._temporary.cleanup()
        os.environ.pop(RESULT_PATH_VARIABLE, None)

    def _capture_path(self, item):
        if self._temporary is None and not os.environ.get(RESULT_PATH_VARIABLE):
            name = f"{self.prefix}-{item.nodeid.replace('::', '-').replace(os.sep, '-')}.bin"
        else:
            name = f"{uuid.uuid4().hex}.bin"
        path = self.result_path / name
        if self._temporary is None and path.exists():
            path.unlink()
        return path

    @pytest.hookimpl(hookwrapper=True)
    def pytest_pyfunc_call(self, pyfuncitem):
        markers = {marker.name for marker in pyfuncitem.iter_markers() if marker.name in MARKERS}
        if not markers and not _setting(self.config, "memray"):
            yield
            return
        if len(markers) > 1:
            raise ValueError("Only one Memray marker can be applied to each test")
        native = bool(_setting(self.config, "native"))
        trace_python_allocators = bool(_setting(self.config, "trace_python_allocators"))
        if "limit_leaks" in markers:
            native = trace_python_allocators = True
        function = pyfuncitem.obj

        @contextmanager
        def tracked():
            # Plugins that call this hook again (flaky) must find the test itself.
            pyfuncitem.obj = function
            path = self._capture_path(pyfuncitem)
            tracker = Tracker(
                path,
                native_traces=native,
                trace_python_allocators=trace_python_allocators,
                file_format=FileFormat.AGGREGATED_ALLOCATIONS,
            )
            with tracker:
                yield
            self._remember(pyfuncitem.nodeid, path)

        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def wrapper(*args, **kwargs):
                with tracked():
                    return await function(*args, **kwargs)

        else:

            @functools.wraps(function)
            def wrapper(*args, **kwargs):
                with tracked():
                    return function(*args, **kwargs)

        pyfuncitem.obj = wrapper
        yield

    def _remember(self, test_id, path):
        try:
            metadata = FileReader(path).metadata
        except OSError:
            return
        result = Result(test_id, metadata, path)
        with open(self.metadata_path / path.with_suffix(".metadata").name, "wb") as file:
            pickle.dump(result, file)
        self.results[test_id] = result

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        if call.when != "call":
            return
        report = outcome.get_result()
        if report.when != "call" or report.outcome != "passed":
            return
        result = self.results.get(item.nodeid)
        if result is None:
            return
        for marker in item.iter_markers():
            check: Optional[Callable] = MARKERS.get(marker.name)
            if check is None:
                continue
            failure = check(
                *marker.args,
                **marker.kwargs,
                _result_file=result.result_file,
                _config=self.config,
                _test_id=item.nodeid,
            )
            if failure:
                report.outcome = "failed"
                report.longrepr = failure.long_repr
                if failure.section is not None:
                    report.sections.append(failure.section)
                outcome.force_result(report)

    @pytest.hookimpl(hookwrapper=True, trylast=True)
    def pytest_report_teststatus(self, report):
        outcome = yield
        if report.when == "call" and report.outcome == "failed":
            if any("memray" in section for section, _ in report.sections):
                outcome.force_result(("failed", "M", "MEMORY PROBLEMS"))

    def pytest_terminal_summary(self, terminalreporter):
        if _setting(self.config, "hide_memray_summary") or not _setting(self.config, "memray"):
            return
        terminalreporter.write_line("")
        terminalreporter.write_sep("=", "MEMRAY REPORT")
        if not self.results:
            # Under pytest-xdist the workers ran the tests: read what they wrote.
            for path in self.metadata_path.glob("*.metadata"):
                result = pickle.loads(path.read_bytes())
                self.results[result.test_id] = result
        peaks = collections.Counter(
            {
                test_id: result.metadata.peak_memory
                for test_id, result in self.results.items()
                if result.result_file.exists()
            }
        )
        shown = int(_setting(self.config, "most_allocations") or 0) or len(peaks)
        for test_id, _ in peaks.most_common(shown):
            reader = FileReader(self.results[test_id].result_file)
            records = list(reader.get_high_watermark_allocation_records(merge_threads=True))
            if records:
                self._report(terminalreporter, test_id, reader.metadata, records)
        if self._temporary is None:
            terminalreporter.write_line(
                f"Created {len(peaks)} binary dumps at {self.result_path} with prefix {self.prefix}"
            )

    @staticmethod
    def _report(terminalreporter, test_id, metadata, records):
        write = terminalreporter.write_line
        write(f"Allocation results for {test_id} at the high watermark")
        write("")
        write(f"\t 📦 Total memory allocated: {sizeof_fmt(metadata.peak_memory)}")
        write(f"\t 📏 Total allocations: {metadata.total_allocations}")
        sizes = [record.size for record in records]
        write(f"\t 📊 Histogram of allocation sizes: |{_histogram(sizes, min(len(sizes), HISTOGRAM_BINS))}|")
        write("\t 🥇 Biggest allocating functions:")
        biggest = sorted(records, key=lambda record: record.size, reverse=True)
        for record in islice(biggest, TOP_ALLOCATIONS):
            trace = record.stack_trace()
            if trace:
                function, filename, line = trace[0]
                write(f"\t\t- {function}:{filename}:{line} -> {sizeof_fmt(record.size)}")
        write("\n")


def pytest_configure(config):
    config.pluginmanager.register(Manager(config), "memray_manager")
    for name, check in MARKERS.items():
        arguments = inspect.getfullargspec(check).args
        config.addinivalue_line("markers", f"{name}({', '.join(arguments)}): {check.__doc__}")
