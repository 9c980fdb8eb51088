"""`memray.FileReader` and its records, memray's types over the Rust reader
(`memray._memray.Capture`, the analysis `memray stats` and the reports run)."""

import collections
import enum
import typing
from dataclasses import dataclass
from datetime import datetime

from ._tracker import FileFormat


class AllocatorType(enum.IntEnum):
    """The function that made (or undid) an allocation: memray's values."""

    PYMALLOC_FREE = 1
    PYMALLOC_MALLOC = 2
    PYMALLOC_CALLOC = 3
    PYMALLOC_REALLOC = 4
    FREE = 5
    MALLOC = 6
    REALLOC = 7
    CALLOC = 8
    POSIX_MEMALIGN = 9
    ALIGNED_ALLOC = 10
    MEMALIGN = 11
    VALLOC = 12
    PVALLOC = 13
    MMAP = 14
    MUNMAP = 15


MemorySnapshot = collections.namedtuple("MemorySnapshot", "time rss heap")


@dataclass
class Metadata:
    start_time: datetime
    end_time: datetime
    total_allocations: int
    total_frames: int
    peak_memory: int
    command_line: str
    pid: int
    main_thread_id: int
    python_allocator: str
    has_native_traces: bool
    trace_python_allocators: bool
    file_format: FileFormat


def _size_fmt(num, suffix="B"):
    for unit in ["", "k", "M", "G", "T", "P", "E", "Z"]:
        if abs(num) < 1000.0:
            return f"{num:5.3f}{unit}{suffix}"
        num /= 1000.0
    return f"{num:.1f}Y{suffix}"


def _datetime(millis):
    return datetime.fromtimestamp(millis // 1000).replace(microsecond=millis % 1000 * 1000).astimezone()


class AllocationRecord:
    """One allocation, or the allocations of one location (``n_allocations``)."""

    __slots__ = ("_tuple", "_capture", "_names")

    def __init__(self, record, capture=None, names=None):
        self._tuple = record
        self._capture = capture
        # Who names the threads: the pass that read the record, else the capture.
        self._names = names or capture

    def __eq__(self, other):
        if isinstance(other, AllocationRecord):
            return self._tuple == other._tuple
        return NotImplemented

    def __hash__(self):
        return hash(self._tuple)

    tid = property(lambda self: self._tuple[0])
    address = property(lambda self: self._tuple[1])
    size = property(lambda self: self._tuple[2])
    allocator = property(lambda self: self._tuple[3])
    stack_id = property(lambda self: self._tuple[4])
    n_allocations = property(lambda self: self._tuple[5])
    native_stack_id = property(lambda self: self._tuple[6])
    native_segment_generation = property(lambda self: self._tuple[7])

    @property
    def thread_name(self):
        return self._names.thread_name(self.tid)

    def _ensure_allocation(self):
        if self.allocator in (AllocatorType.FREE, AllocatorType.MUNMAP):
            raise NotImplementedError("Stack traces for deallocations aren't captured.")

    def stack_trace(self, max_stacks=None):
        self._ensure_allocation()
        return self._capture.stack_trace(self.stack_id, self.tid, max_stacks)

    def native_stack_trace(self, max_stacks=None):
        self._ensure_allocation()
        return self._capture.native_stack_trace(
            self.native_stack_id, self.native_segment_generation, max_stacks
        )

    def hybrid_stack_trace(self, max_stacks=None):
        self._ensure_allocation()
        return self._capture.hybrid_stack_trace(
            self.tid, self.stack_id, self.native_stack_id, self.native_segment_generation, max_stacks
        )

    def __repr__(self):
        return (
            f"AllocationRecord<tid={hex(self.tid)}, address={hex(self.address)}, "
            f"size={'N/A' if not self.size else _size_fmt(self.size)}, allocator={self.allocator!r}, "
            f"allocations={self.n_allocations}>"
        )


class FileReader:
    """Reads a capture file: its metadata, its records and what was allocated
    at the peak, at the end, or only briefly."""

    def __init__(self, file_name, *, report_progress=False, max_memory_records=10000):
        from . import _memray

        try:
            with open(file_name):
                pass
        except OSError as error:
            raise OSError(f"Could not open file {file_name}: {error.strerror}") from None
        self._capture = _memray.Capture(str(file_name), max_memory_records)
        header = self._capture.header()
        self._metadata = Metadata(
            start_time=_datetime(header.pop("start_time")),
            end_time=_datetime(header.pop("end_time")),
            file_format=FileFormat(header.pop("file_format")),
            **header,
        )

    def close(self):
        self._capture = None

    @property
    def closed(self):
        return self._capture is None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, exc_traceback):
        self.close()

    def _ensure_not_closed(self):
        if self._capture is None:
            raise ValueError("Operation on a closed FileReader")

    def _records(self, tuples, names=None):
        capture = self._capture
        for record in tuples:
            yield AllocationRecord(record, capture, names)

    @property
    def metadata(self):
        return self._metadata

    def get_allocation_records(self) -> typing.Iterator[AllocationRecord]:
        self._ensure_not_closed()
        records = self._capture.allocations()
        yield from self._records(records, names=records)

    def get_high_watermark_allocation_records(self, merge_threads=True):
        self._ensure_not_closed()
        yield from self._records(self._capture.high_water_mark(merge_threads))

    def get_leaked_allocation_records(self, merge_threads=True):
        self._ensure_not_closed()
        yield from self._records(self._capture.leaks(merge_threads))

    def get_temporary_allocation_records(self, merge_threads=True, threshold=1):
        self._ensure_not_closed()
        yield from self._records(self._capture.temporary(merge_threads, threshold))

    def get_memory_snapshots(self):
        for snapshot in self._capture.memory_snapshots():
            yield MemorySnapshot(*snapshot)
