//! `threading.Thread.name` of another process's threads, as memray names
//! threads: read from `threading._active` (every started `Thread`, by
//! `get_ident()`, which is the thread state's `thread_id`).

use std::collections::HashMap;

use crate::layout::DEBUG_OFFSETS_PREFIX;
use crate::memory::{Memory, MemoryExt, PageCache, RemoteMemory};
use crate::objects::{ObjectLayout, Objects};
use crate::process::PythonProcess;
use crate::threads::{is_finalizing, thread_states};

/// Reads the thread names of one process, again and again: where
/// `threading._active` is is looked up once (`sys.modules` is large), then
/// kept while it reads as a dict of threads; while `threading` is not
/// imported, `sys.modules` is looked through again only once it has grown.
#[derive(Default)]
pub struct ThreadNameReader {
    /// The `_active` dict.
    active: Option<u64>,
    /// How many modules `sys.modules` held when `threading` was not among
    /// them.
    modules_without_threading: Option<u64>,
}

impl ThreadNameReader {
    pub fn new() -> ThreadNameReader {
        ThreadNameReader::default()
    }

    /// The name of each thread that `threading` knows, by OS thread id.
    /// Empty if the process has not imported `threading`, is finalizing, or
    /// is changing what is read (a thread starting): ask again later.
    pub fn read(&mut self, process: &PythonProcess) -> HashMap<u32, String> {
        let pages = PageCache::new(*process.memory());
        let names = self.read_names(process, &pages);
        if names.is_none() {
            self.active = None;
        }
        names.unwrap_or_default()
    }

    fn read_names(
        &mut self,
        process: &PythonProcess,
        pages: &PageCache<RemoteMemory>,
    ) -> Option<HashMap<u32, String>> {
        let target = process.target();
        if is_finalizing(pages, target) {
            return None;
        }
        let mut head = vec![0u8; DEBUG_OFFSETS_PREFIX];
        pages.read(target.runtime, &mut head).then_some(())?;
        let objects = Objects {
            mem: pages,
            layout: process.layout(),
            object_layout: ObjectLayout::for_version(process.layout(), &head)?,
        };
        let active = match self.active {
            Some(active) => active,
            None => {
                let interp =
                    pages.read_u64(target.runtime + target.layout.runtime_interpreters_head)?;
                let modules = pages.read_u64(interp + objects.object_layout.interp_modules)?;
                let count = objects.dict_len(modules)?;
                if self.modules_without_threading == Some(count) {
                    return None;
                }
                let Some(threading) = objects.dict_item(modules, "threading") else {
                    self.modules_without_threading = Some(count);
                    return None;
                };
                let threading = objects.module_dict(threading)?;
                *self.active.insert(objects.dict_item(threading, "_active")?)
            }
        };
        let by_ident: HashMap<u64, String> = objects
            .dict_entries(active)?
            .into_iter()
            .filter_map(|(ident, thread)| {
                let ident = u64::try_from(objects.int(ident)?).ok()?;
                Some((ident, objects.str(objects.attribute(thread, "_name")?)?))
            })
            .collect();
        let threads = thread_states(pages, target)?;
        let tids = process.native_thread_ids(pages, &threads);
        Some(
            threads
                .iter()
                .zip(tids)
                .filter_map(|(thread, tid)| Some((tid?, by_ident.get(&thread.thread_id)?.clone())))
                .collect(),
        )
    }
}
