//! The set of modules the unwinder knows, rebuilt after `dlopen`/`dlclose` and published
//! for lock-free use by unwinding threads.

use std::sync::atomic::{AtomicU64, Ordering};

use framehop::{MustNotAllocateDuringUnwind, Unwinder, UnwinderNative};

use crate::platform::{loaded_objects, module_of, SectionData};
use crate::published::Published;

pub type Module = framehop::Module<SectionData>;
pub type ModuleUnwinder = UnwinderNative<SectionData, MustNotAllocateDuringUnwind>;

/// The unwinder for one set of loaded objects, and its modules by object, so that the next
/// set reuses (shares) the modules of the objects still loaded.
pub struct ModuleSet {
    pub unwinder: ModuleUnwinder,
    /// Different for every set published (from 1), so that a thread's trail of an unwind
    /// made with an older set is never reused.
    pub generation: u64,
    modules: Vec<((String, u64), Module)>,
}

pub static MODULES: Published<ModuleSet> = Published::empty();

static LAST_GENERATION: AtomicU64 = AtomicU64::new(0);

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
        ModuleSet {
            unwinder,
            generation: LAST_GENERATION.fetch_add(1, Ordering::Relaxed) + 1,
            modules,
        }
    });
}

/// Call in a fork child before anything else touches the module set: threads of the parent
/// that were unwinding or refreshing at the fork do not exist in the child, and must not be
/// waited for.
pub fn forget_other_threads_after_fork() {
    MODULES.forget_other_threads_after_fork();
}
