//! Which C function each hook replaces on macOS, as one list: the macOS
//! platform module builds dyld's `__DATA,__interpose` tuples from it, and the
//! tests below read it as plain data on any system.
//!
//! memray interposes the same functions there (the malloc family, `mmap`,
//! `munmap`, `dlopen`, `dlclose`; no `malloc_zone_*`); the `malloc_type_*`
//! entry points of macOS 14+ are what code built with typed allocation calls
//! instead of `malloc` and friends.

/// Calls `$apply!` with every `C symbol => module::hook` pair.
macro_rules! for_each_interposed {
    ($apply:ident) => {
        $apply! {
            malloc => hooks::malloc,
            calloc => hooks::calloc,
            realloc => hooks::realloc,
            valloc => hooks::valloc,
            free => hooks::free,
            posix_memalign => hooks::posix_memalign,
            aligned_alloc => hooks::aligned_alloc,
            mmap => hooks::mmap,
            munmap => hooks::munmap,
            dlopen => loader::dlopen,
            dlclose => loader::dlclose,
            _exit => process_exit::_exit,
            _Exit => process_exit::_Exit,
            malloc_type_malloc => platform::malloc_type_malloc,
            malloc_type_calloc => platform::malloc_type_calloc,
            malloc_type_realloc => platform::malloc_type_realloc,
            malloc_type_free => platform::malloc_type_free,
            malloc_type_valloc => platform::malloc_type_valloc,
            malloc_type_aligned_alloc => platform::malloc_type_aligned_alloc,
            malloc_type_posix_memalign => platform::malloc_type_posix_memalign,
        }
    };
}
#[cfg(target_os = "macos")]
pub(crate) use for_each_interposed;

#[cfg(test)]
macro_rules! as_text {
    ($($symbol:ident => $module:ident::$hook:ident,)*) => {
        &[$((stringify!($symbol), stringify!($module), stringify!($hook))),*]
    };
}

/// `(C symbol, module, hook)` for every interposed function.
#[cfg(test)]
const INTERPOSED: &[(&str, &str, &str)] = for_each_interposed!(as_text);

#[cfg(test)]
mod tests {
    use super::INTERPOSED;

    #[test]
    fn each_symbol_once_and_by_the_hook_of_its_name() {
        for (index, (symbol, _, hook)) in INTERPOSED.iter().enumerate() {
            assert_eq!(symbol, hook, "a hook carries the C name it replaces");
            assert!(
                INTERPOSED[index + 1..]
                    .iter()
                    .all(|(other, _, _)| other != symbol),
                "{symbol} interposed twice"
            );
        }
    }

    #[test]
    fn covers_memrays_functions_and_the_typed_entry_points() {
        let symbols: Vec<&str> = INTERPOSED.iter().map(|(symbol, _, _)| *symbol).collect();
        let memray = [
            "malloc",
            "calloc",
            "realloc",
            "valloc",
            "free",
            "posix_memalign",
            "aligned_alloc",
            "mmap",
            "munmap",
            "dlopen",
            "dlclose",
        ];
        let typed = [
            "malloc_type_malloc",
            "malloc_type_calloc",
            "malloc_type_realloc",
            "malloc_type_free",
            "malloc_type_valloc",
            "malloc_type_aligned_alloc",
            "malloc_type_posix_memalign",
        ];
        for wanted in memray.iter().chain(&typed).chain(&["_exit", "_Exit"]) {
            assert!(symbols.contains(wanted), "{wanted} is not interposed");
        }
        // glibc-only functions have no macOS counterpart to interpose.
        for absent in ["memalign", "pvalloc", "mmap64", "prctl"] {
            assert!(
                !symbols.contains(&absent),
                "{absent} does not exist on macOS"
            );
        }
        let typed_hooks_in_platform = INTERPOSED
            .iter()
            .filter(|(symbol, _, _)| symbol.starts_with("malloc_type_"))
            .all(|(_, module, _)| *module == "platform");
        assert!(typed_hooks_in_platform);
    }
}
