//! Reading the Python stacks of another process.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::code::{CodeCache, CodeInfo};
use crate::discover::{looks_like_python, version_from_name, PythonSymbols};
use crate::error::Error;
use crate::file::Mmap;
use crate::layout::{version_of_hex, Layout, DEBUG_OFFSETS_PREFIX};
use crate::memory::{MemoryExt, PageCache, RemoteMemory};
use crate::platform;
use crate::threads::{is_finalizing, thread_states, ThreadState};
use crate::walk::{walk_stack, RawFrame, StackWalk, Target};

/// A CPython process, located and ready to be read.
#[derive(Clone, Debug)]
pub struct PythonProcess {
    memory: RemoteMemory,
    target: Target,
    binary: PathBuf,
}

/// One thread's stack at the time of a snapshot.
#[derive(Clone, Debug)]
pub struct ThreadStack {
    pub thread: ThreadState,
    /// The OS thread id: CPython's own record on 3.11+, else read from glibc's
    /// `struct pthread` behind `thread_id` and checked against `/proc/<pid>/task`.
    pub native_thread_id: Option<u32>,
    /// Innermost first.
    pub frames: Vec<RawFrame>,
    pub walk: StackWalk,
}

impl PythonProcess {
    /// Finds the interpreter of process `pid`.
    pub fn attach(pid: i32) -> Result<PythonProcess, Error> {
        let (files, exe) = platform::mapped_files(pid)?;
        let memory = RemoteMemory::new(pid);
        for file in files
            .into_iter()
            .filter(|f| looks_like_python(&f.path) || Some(&f.path) == exe.as_ref())
        {
            let data = map_target_file(pid, &file.path)?;
            let Some(symbols) = PythonSymbols::parse(&file.path, &data)? else {
                continue;
            };
            let bias = file.base.wrapping_sub(symbols.first_segment);
            let target = locate(&memory, &file.path, &symbols, bias)?;
            return Ok(PythonProcess {
                memory,
                target,
                binary: file.path,
            });
        }
        Err(Error::NotPython { pid })
    }

    pub fn pid(&self) -> i32 {
        self.memory.pid()
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    pub fn layout(&self) -> &Layout {
        &self.target.layout
    }

    /// The file that exports `_PyRuntime` (libpython or the executable).
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    pub fn memory(&self) -> &RemoteMemory {
        &self.memory
    }

    pub fn is_finalizing(&self) -> bool {
        is_finalizing(&self.memory, &self.target)
    }

    /// Every thread's stack, up to `max_depth` innermost frames each. The
    /// process keeps running, so a thread that moves during the read can give
    /// a torn stack (marked `broken` when a pointer goes bad).
    pub fn snapshot(&self, max_depth: usize) -> Result<Vec<ThreadStack>, Error> {
        let pages = PageCache::new(self.memory);
        let runtime = self.target.runtime;
        let threads = thread_states(&pages, &self.target).ok_or(Error::Unreadable {
            what: "the thread list",
            address: runtime,
        })?;
        let native_ids = self.native_thread_ids(&pages, &threads);
        let mut buffer = vec![RawFrame::default(); max_depth];
        Ok(threads
            .into_iter()
            .zip(native_ids)
            .map(|(thread, native_thread_id)| {
                let walk = walk_stack(&pages, &self.target, thread.address, &mut buffer);
                ThreadStack {
                    thread,
                    native_thread_id,
                    frames: buffer[..walk.depth].to_vec(),
                    walk,
                }
            })
            .collect())
    }

    /// The function that frees code objects, `PyCode_Type.tp_dealloc`: a
    /// static function, found by address (stripped or not). `None` if the
    /// interpreter does not export `PyCode_Type`.
    pub fn code_dealloc(&self) -> Result<Option<u64>, Error> {
        // `tp_dealloc` is the fourth field after `PyObject_VAR_HEAD`, whose
        // `ob_type` is followed by `ob_size`.
        const TP_DEALLOC_AFTER_OB_TYPE: u64 = 40;
        if self.target.code_type == 0 {
            return Ok(None);
        }
        let field = self.target.code_type + self.layout().object_type + TP_DEALLOC_AFTER_OB_TYPE;
        let dealloc = self.memory.read_u64(field).ok_or(Error::Unreadable {
            what: "PyCode_Type.tp_dealloc",
            address: field,
        })?;
        Ok(Some(dealloc))
    }

    /// The code object at `code`, through `cache`.
    pub fn code(&self, cache: &mut CodeCache, code: u64) -> Result<Arc<CodeInfo>, Error> {
        cache
            .get_or_read(&self.memory, &self.target.layout, code)
            .map_err(|e| Error::Unreadable {
                what: "a code object",
                address: e.address,
            })
    }

    pub(crate) fn native_thread_ids<M: MemoryExt>(
        &self,
        mem: &M,
        threads: &[ThreadState],
    ) -> Vec<Option<u32>> {
        if threads.iter().all(|t| t.native_thread_id.is_some()) {
            return threads.iter().map(|t| t.native_thread_id).collect();
        }
        let tasks = platform::task_ids(self.pid());
        let offset = pthread_tid_offset(mem, threads, &tasks);
        threads
            .iter()
            .map(|t| offset.and_then(|o| mem.read_u32(t.thread_id + o)))
            .collect()
    }
}

/// Builds the `Target` of an interpreter whose file is loaded at `bias`.
fn locate(
    memory: &RemoteMemory,
    binary: &Path,
    symbols: &PythonSymbols,
    bias: u64,
) -> Result<Target, Error> {
    let runtime = bias.wrapping_add(symbols.runtime);
    let mut head = vec![0u8; DEBUG_OFFSETS_PREFIX];
    if let Err(err) = memory.read_checked(runtime, &mut head) {
        return Err(match err.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => Error::PermissionDenied { pid: memory.pid() },
            Some(libc::ESRCH) => Error::NoSuchProcess { pid: memory.pid() },
            _ => Error::Unreadable {
                what: "_PyRuntime",
                address: runtime,
            },
        });
    }
    let layout = Layout::for_runtime(&head, || match symbols.py_version {
        Some(at) => memory
            .read_u32(bias.wrapping_add(at))
            .map(version_of_hex)
            .ok_or(Error::Unreadable {
                what: "Py_Version",
                address: bias.wrapping_add(at),
            }),
        None => version_from_name(binary).ok_or_else(|| Error::UnknownVersion {
            binary: binary.to_path_buf(),
        }),
    })?;
    Ok(Target {
        layout,
        runtime,
        code_type: symbols.code_type.map_or(0, |at| bias.wrapping_add(at)),
    })
}

pub(crate) fn map_target_file(pid: i32, path: &Path) -> Result<Mmap, Error> {
    platform::map_target_file(pid, path).map_err(|e| Error::Elf {
        binary: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// glibc keeps the kernel thread id in `struct pthread` (what `pthread_t`
/// points to), at 0x2d0 in current x86-64 releases. Accept an offset only if
/// it gives every thread a distinct id of a live task of the process.
fn pthread_tid_offset<M: MemoryExt>(
    mem: &M,
    threads: &[ThreadState],
    tasks: &HashSet<u32>,
) -> Option<u64> {
    const GLIBC_TID: u64 = 0x2d0;
    let fits = |offset: u64| {
        let mut seen = HashSet::new();
        threads.iter().all(|t| {
            mem.read_u32(t.thread_id + offset)
                .is_some_and(|tid| tasks.contains(&tid) && seen.insert(tid))
        })
    };
    std::iter::once(GLIBC_TID)
        .chain((0..0x800).step_by(4))
        .find(|&offset| fits(offset))
}
