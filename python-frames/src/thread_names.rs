//! `threading.Thread.name` of another process's threads, as memray names
//! threads. Two places of the `threading` module say which thread a
//! `Thread` is: `_active` (the running ones, by `get_ident()`, the thread
//! state's `thread_id`) and `_dangling` (a `WeakSet` of every `Thread` object
//! still alive, each with its OS thread id, `_native_id`, once started): the
//! latter names a thread that has ended while its object is kept, the
//! former decides when an ended thread's id has been reused.

use std::collections::HashMap;

use crate::layout::DEBUG_OFFSETS_PREFIX;
use crate::memory::{Memory, MemoryExt, PageCache, RemoteMemory};
use crate::objects::{ObjectLayout, Objects};
use crate::process::PythonProcess;
use crate::threads::{is_finalizing, main_interpreter, thread_states};

/// Reads the thread names of one process, again and again: where
/// `threading`'s two collections are is looked up once (`sys.modules` is
/// large), then kept while they read; while `threading` is not imported,
/// `sys.modules` is looked through again only once it has grown.
#[derive(Default)]
pub struct ThreadNameReader {
    /// The process's version's object layout, once read.
    object_layout: Option<ObjectLayout>,
    collections: Option<Collections>,
    /// How many modules `sys.modules` held when `threading` was not among
    /// them.
    modules_without_threading: Option<u64>,
}

/// Where `threading` keeps its threads.
#[derive(Clone, Copy)]
struct Collections {
    /// The `_active` dict.
    active: u64,
    /// The set behind the `_dangling` WeakSet (its `data`).
    dangling: u64,
}

impl ThreadNameReader {
    pub fn new() -> ThreadNameReader {
        ThreadNameReader::default()
    }

    /// The name of each thread that `threading` knows, by OS thread id
    /// (ended ones too, while their `Thread` object lives). Empty if the
    /// process has not imported `threading`, is finalizing, or is changing
    /// what is read (a thread starting): ask again later.
    pub fn read(&mut self, process: &PythonProcess) -> HashMap<u32, String> {
        let pages = PageCache::new(*process.memory());
        let names = self.read_names(process, &pages);
        if names.is_none() {
            self.collections = None;
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
        let object_layout = match self.object_layout {
            Some(object_layout) => object_layout,
            None => {
                let mut head = vec![0u8; DEBUG_OFFSETS_PREFIX];
                pages.read(target.runtime, &mut head).then_some(())?;
                let found = ObjectLayout::for_version(process.layout(), &head)?;
                *self.object_layout.insert(found)
            }
        };
        let objects = Objects {
            mem: pages,
            layout: process.layout(),
            object_layout,
        };
        let collections = match self.collections {
            Some(collections) => collections,
            None => {
                let found = self.find_collections(process, &objects)?;
                *self.collections.insert(found)
            }
        };
        let name = |thread: u64| objects.str(objects.attribute(thread, "_name")?);
        // Every thread object alive, by the OS thread id it ran as.
        let mut names: HashMap<u32, String> = objects
            .set_keys(collections.dangling)?
            .into_iter()
            .filter_map(|weakref| {
                let thread = objects.weakref_target(weakref)?;
                let tid = u32::try_from(objects.int(objects.attribute(thread, "_native_id")?)?);
                Some((tid.ok()?, name(thread)?))
            })
            .collect();
        // The running ones win: an ended thread's id may have been reused.
        let by_ident: HashMap<u64, String> = objects
            .dict_entries(collections.active)?
            .into_iter()
            .filter_map(|(ident, thread)| {
                Some((u64::try_from(objects.int(ident)?).ok()?, name(thread)?))
            })
            .collect();
        let threads = thread_states(pages, target)?;
        let tids = process.native_thread_ids(pages, &threads);
        for (thread, tid) in threads.iter().zip(tids) {
            if let (Some(tid), Some(name)) = (tid, by_ident.get(&thread.thread_id)) {
                names.insert(tid, name.clone());
            }
        }
        Some(names)
    }

    /// `threading._active` and `threading._dangling.data`, if `threading`
    /// is imported.
    fn find_collections(
        &mut self,
        process: &PythonProcess,
        objects: &Objects<'_, PageCache<RemoteMemory>>,
    ) -> Option<Collections> {
        let interp = main_interpreter(objects.mem, process.target())?;
        let modules = objects
            .mem
            .read_u64(interp + objects.object_layout.interp_modules)?;
        let count = objects.dict_len(modules)?;
        if self.modules_without_threading == Some(count) {
            return None;
        }
        let Some(threading) = objects.dict_item(modules, "threading") else {
            self.modules_without_threading = Some(count);
            return None;
        };
        let threading = objects.module_dict(threading)?;
        let dangling = objects.dict_item(threading, "_dangling")?;
        Some(Collections {
            active: objects.dict_item(threading, "_active")?,
            dangling: objects.attribute(dangling, "data")?,
        })
    }
}
