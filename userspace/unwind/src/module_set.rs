//! The set of modules the unwinder knows, rebuilt after `dlopen`/`dlclose` and published
//! for lock-free use by unwinding threads.

use std::path::Path;

use framehop::x86_64::UnwinderX86_64;
use framehop::{ExplicitModuleSectionInfo, MustNotAllocateDuringUnwind, Unwinder};

use crate::elf_file::{unwind_sections, MappedSlice, Section};
use memray_format::Image;

use crate::objects::loaded_objects;
use crate::published::Published;

pub type Module = framehop::Module<MappedSlice>;
pub type ModuleUnwinder = UnwinderX86_64<MappedSlice, MustNotAllocateDuringUnwind>;

/// The unwinder for one set of loaded objects, and its modules by object, so that the next
/// set reuses (shares) the modules of the objects still loaded.
pub struct ModuleSet {
    pub unwinder: ModuleUnwinder,
    modules: Vec<((String, u64), Module)>,
}

pub static MODULES: Published<ModuleSet> = Published::empty();

/// Rebuilds the module set from the objects loaded now and publishes it. Call it once before
/// the first unwind and again after every successful `dlopen` and `dlclose`; never while
/// unwinding (it allocates, opens and maps files, and waits for unwinding threads to leave
/// the old set).
pub fn refresh_modules() {
    MODULES.update(|previous| {
        let objects = loaded_objects();
        let mut unwinder = ModuleUnwinder::new();
        let mut modules = Vec::with_capacity(objects.len());
        for object in objects {
            let key = (object.filename.clone(), object.load_address);
            let reused = previous
                .and_then(|set| set.modules.iter().find(|(known, _)| *known == key))
                .map(|(_, module)| module.clone());
            if let Some(module) = reused.or_else(|| module_of(&object)) {
                unwinder.add_module(module.clone());
                modules.push((key, module));
            }
        }
        ModuleSet { unwinder, modules }
    });
}

/// Call in a fork child before anything else touches the module set: threads of the parent
/// that were unwinding or refreshing at the fork do not exist in the child, and must not be
/// waited for.
pub fn forget_other_threads_after_fork() {
    MODULES.forget_other_threads_after_fork();
}

/// The framehop module of an object: the span of its segments, with the unwind sections of
/// its file. An object whose file cannot be read still gets a module (frame pointers are used
/// there); one without segments gets none.
fn module_of(object: &Image) -> Option<Module> {
    let segments = object.segments.iter();
    let start = segments.clone().map(|segment| segment.vaddr).min()?;
    let end = segments
        .map(|segment| segment.vaddr + segment.memsz)
        .max()?;
    let sections = unwind_sections(Path::new(&object.filename)).unwrap_or_default();
    let split = |section: Option<Section>| match section {
        Some(section) => (Some(section.svma), Some(section.data)),
        None => (None, None),
    };
    let (text_svma, text) = split(sections.text);
    let (eh_frame_svma, eh_frame) = split(sections.eh_frame);
    let (eh_frame_hdr_svma, eh_frame_hdr) = split(sections.eh_frame_hdr);
    let info = ExplicitModuleSectionInfo {
        base_svma: 0,
        text_svma,
        text,
        got_svma: sections.got,
        eh_frame_svma,
        eh_frame,
        eh_frame_hdr_svma,
        eh_frame_hdr,
        stubs_svma: None,
        stub_helper_svma: None,
        unwind_info: None,
        debug_frame: None,
        text_segment_svma: None,
        text_segment: None,
    };
    Some(Module::new(
        object.filename.clone(),
        object.load_address + start..object.load_address + end,
        object.load_address,
        info,
    ))
}
