//! `memray._memray`: what the Python package's `FileReader` shows, computed by
//! memray-analysis over a capture file (the same passes as `memray stats` and
//! the reports). The Python classes (`memray/_reader.py`) wrap these plain
//! tuples in memray's types.

use std::path::PathBuf;

use memray_analysis::{
    high_water_mark, leaks, overview, temporary_allocations, AllocationEvent, AllocationGroup,
    AnalysisError, Capture as _, CaptureFile, Event, Frame, Overview, StackIds, StackResolver,
};
use memray_format::{FileFormat, PythonAllocator, Replay};
use pyo3::exceptions::{PyNotImplementedError, PyOSError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// memray's record tuple: tid, address, size, allocator, stack id (Python
/// trie node), n_allocations, native stack id, native segment generation.
type RecordTuple = (u64, u64, u64, u8, u32, u64, u64, u32);

/// A frame as memray's `stack_trace()` gives it.
type FrameTuple = (String, String, i32);

fn record(allocation: &AllocationEvent, size: u64, n_allocations: u64) -> RecordTuple {
    (
        allocation.tid,
        allocation.address,
        size,
        allocation.allocator as u8,
        allocation.python_node,
        n_allocations,
        allocation.native_frame_id,
        allocation.native_segment_generation,
    )
}

fn group_records(groups: Vec<AllocationGroup>) -> Vec<RecordTuple> {
    groups
        .iter()
        .map(|group| record(&group.allocation, group.size, group.n_allocations))
        .collect()
}

fn frames(frames: Vec<Frame>, max_stacks: Option<usize>) -> Vec<FrameTuple> {
    let kept = max_stacks.unwrap_or(usize::MAX);
    frames
        .into_iter()
        .take(kept)
        .map(|frame| {
            (
                frame.function.to_string(),
                frame.filename.to_string(),
                frame.lineno,
            )
        })
        .collect()
}

fn analysis_error(error: AnalysisError) -> PyErr {
    PyOSError::new_err(error.to_string())
}

/// One capture file and what the first pass over it learnt.
#[pyclass(unsendable, module = "memray._memray")]
struct Capture {
    file: CaptureFile,
    overview: Overview,
}

#[pymethods]
impl Capture {
    /// Opens `path` and runs the first pass: the peak, the record count and
    /// at most `max_memory_records` memory snapshots.
    #[new]
    fn open(path: PathBuf, max_memory_records: usize) -> PyResult<Capture> {
        let file = CaptureFile::open(&path).map_err(|e| PyOSError::new_err(e.to_string()))?;
        let overview = overview(&file, max_memory_records).map_err(analysis_error)?;
        Ok(Capture { file, overview })
    }

    /// The header's fields, named as memray's `Metadata` needs them.
    fn header<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let header = self.file.header();
        let fields = PyDict::new(py);
        fields.set_item("start_time", header.stats.start_time_ms)?;
        fields.set_item("end_time", header.stats.end_time_ms)?;
        fields.set_item("total_allocations", self.overview.records)?;
        fields.set_item("total_frames", header.stats.n_frames)?;
        fields.set_item("peak_memory", self.overview.high_water_mark.bytes)?;
        fields.set_item("command_line", &header.command_line)?;
        fields.set_item("pid", header.pid)?;
        fields.set_item("main_thread_id", header.main_tid)?;
        let allocator = PythonAllocator::from_id(header.python_allocator)
            .unwrap_or(PythonAllocator::Other)
            .name();
        fields.set_item("python_allocator", allocator)?;
        fields.set_item("has_native_traces", header.native_traces)?;
        fields.set_item("trace_python_allocators", header.trace_python_allocators)?;
        fields.set_item("file_format", header.file_format as u8)?;
        Ok(fields)
    }

    /// `(time in ms, rss, heap)` of each memory snapshot.
    fn memory_snapshots(&self) -> Vec<(u64, u64, u64)> {
        self.overview
            .memory
            .iter()
            .map(|snapshot| (snapshot.time_ms, snapshot.rss, snapshot.heap))
            .collect()
    }

    /// Every ALLOCATION record, frees included, in file order, read as
    /// the caller iterates (a capture may hold hundreds of millions).
    fn allocations(&self) -> PyResult<AllocationRecords> {
        if self.file.is_aggregated() {
            return Err(PyNotImplementedError::new_err(
                "Can't get all allocations from a pre-aggregated capture file.",
            ));
        }
        let replay =
            Replay::open(self.file.path()).map_err(|e| PyOSError::new_err(e.to_string()))?;
        Ok(AllocationRecords { replay })
    }

    fn high_water_mark(&self, merge_threads: bool) -> PyResult<Vec<RecordTuple>> {
        high_water_mark(&self.file, &self.overview, merge_threads)
            .map(group_records)
            .map_err(analysis_error)
    }

    fn leaks(&self, merge_threads: bool) -> PyResult<Vec<RecordTuple>> {
        leaks(&self.file, merge_threads)
            .map(group_records)
            .map_err(analysis_error)
    }

    fn temporary(&self, merge_threads: bool, threshold: usize) -> PyResult<Vec<RecordTuple>> {
        if self.file.is_aggregated() {
            return Err(PyNotImplementedError::new_err(
                "Can't find temporary allocations using a pre-aggregated capture file.",
            ));
        }
        temporary_allocations(&self.file, threshold, merge_threads)
            .map(group_records)
            .map_err(analysis_error)
    }

    /// memray's rule: the frames above the Tracker on the main thread are
    /// hidden, except when `max_stacks` asks for the innermost ones.
    #[pyo3(signature = (python_node, tid, max_stacks=None))]
    fn stack_trace(
        &self,
        python_node: u32,
        tid: u64,
        max_stacks: Option<usize>,
    ) -> Vec<FrameTuple> {
        match max_stacks {
            None => frames(self.file.python_stack(python_node, tid), None),
            Some(_) => frames(self.file.python_frames(python_node), max_stacks),
        }
    }

    #[pyo3(signature = (native_frame_id, generation, max_stacks=None))]
    fn native_stack_trace(
        &self,
        native_frame_id: u64,
        generation: u32,
        max_stacks: Option<usize>,
    ) -> Vec<FrameTuple> {
        frames(
            self.file.native_frames(native_frame_id, generation),
            max_stacks,
        )
    }

    #[pyo3(signature = (tid, python_node, native_frame_id, generation, max_stacks=None))]
    fn hybrid_stack_trace(
        &self,
        tid: u64,
        python_node: u32,
        native_frame_id: u64,
        generation: u32,
        max_stacks: Option<usize>,
    ) -> Vec<FrameTuple> {
        let ids = StackIds {
            tid,
            python_node,
            native_frame_id,
            native_segment_generation: generation,
        };
        frames(self.file.stack(ids), max_stacks)
    }

    fn thread_name(&self, tid: u64) -> String {
        self.file.thread_name(tid).unwrap_or_default()
    }

    fn is_aggregated(&self) -> bool {
        self.file.header().file_format == FileFormat::AggregatedAllocations
    }
}

/// The iterator behind `FileReader.get_allocation_records()`: its own pass
/// over the file, one record per step.
#[pyclass(unsendable, module = "memray._memray")]
struct AllocationRecords {
    replay: Replay,
}

#[pymethods]
impl AllocationRecords {
    fn __iter__(this: PyRef<'_, Self>) -> PyRef<'_, Self> {
        this
    }

    /// A thread's name as far as this pass has read (memray's records of
    /// `get_allocation_records()` name their thread so).
    fn thread_name(&self, tid: u64) -> String {
        self.replay.thread_name(tid).unwrap_or_default().to_owned()
    }

    fn __next__(&mut self) -> PyResult<Option<RecordTuple>> {
        loop {
            match self.replay.next_event() {
                Ok(Some(Event::Allocation(allocation))) => {
                    return Ok(Some(record(
                        &allocation,
                        allocation.size,
                        allocation.n_allocations,
                    )))
                }
                Ok(Some(_)) => continue,
                Ok(None) => return Ok(None),
                Err(error) => return Err(PyOSError::new_err(error.to_string())),
            }
        }
    }
}

#[pymodule]
fn _memray(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<Capture>()?;
    module.add_class::<AllocationRecords>()
}
