//! Third-party allocators (`--allocator LIB:SYMBOL=KIND`, `--allocator
//! jemalloc`, `--allocator mimalloc`): functions of another library probed
//! like libc's, recorded as the allocator kind named. A wrapper that calls
//! glibc underneath is recorded once (the probes count nested calls per
//! thread).

use crate::Function;

/// One function of a library to probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomAllocator {
    /// A path as mapped, or the start of a file name (`libjemalloc.so`).
    pub library: String,
    pub symbol: String,
    /// What a call is recorded as.
    pub function: Function,
    /// A shorthand's symbols are probed where the library has them; a
    /// symbol named by the user must be there.
    pub required: bool,
}

/// The shorthands and their libraries (Debian's `libjemalloc2`,
/// `libmimalloc2.0`: both export the standard names, mimalloc's as aliases
/// of its `mi_*` functions).
const SHORTHANDS: [(&str, &str); 2] = [
    ("jemalloc", "libjemalloc.so"),
    ("mimalloc", "libmimalloc.so"),
];

impl CustomAllocator {
    /// `LIB:SYMBOL=KIND`, or a shorthand (`jemalloc`, `mimalloc`).
    pub fn parse(spec: &str) -> Result<Vec<CustomAllocator>, String> {
        if let Some((_, library)) = SHORTHANDS.iter().find(|(name, _)| *name == spec) {
            // The standard entry points, where the library has them.
            return Ok(Function::ALL
                .into_iter()
                .filter(|function| !function.is_syscall_wrapper())
                .map(|function| CustomAllocator {
                    library: library.to_string(),
                    symbol: function.symbol().to_string(),
                    function,
                    required: false,
                })
                .collect());
        }
        let malformed = || {
            format!("{spec}: expected LIB:SYMBOL=KIND (KIND: malloc, calloc, realloc, free, posix_memalign, aligned_alloc, memalign, valloc, pvalloc, mmap, munmap), jemalloc or mimalloc")
        };
        let (library, rest) = spec.rsplit_once(':').ok_or_else(malformed)?;
        let (symbol, kind) = rest.split_once('=').ok_or_else(malformed)?;
        let function = Function::ALL
            .into_iter()
            .find(|f| f.symbol() == kind)
            .ok_or_else(malformed)?;
        if library.is_empty() || symbol.is_empty() {
            return Err(malformed());
        }
        Ok(vec![CustomAllocator {
            library: library.to_string(),
            symbol: symbol.to_string(),
            function,
            required: true,
        }])
    }

    /// Whether a mapping of `path` (as `/proc/PID/maps` shows it) is this
    /// allocator's library.
    pub fn is_library(&self, path: &str) -> bool {
        let name = path.rsplit('/').next().unwrap_or(path);
        path == self.library || name.starts_with(&self.library)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs_and_shorthands() {
        let custom = CustomAllocator::parse("/opt/lib/libarena.so:arena_alloc=malloc").unwrap();
        assert_eq!(
            custom,
            vec![CustomAllocator {
                library: "/opt/lib/libarena.so".into(),
                symbol: "arena_alloc".into(),
                function: Function::Malloc,
                required: true,
            }]
        );
        assert!(custom[0].is_library("/opt/lib/libarena.so"));
        let jemalloc = CustomAllocator::parse("jemalloc").unwrap();
        assert_eq!(jemalloc.len(), 10);
        assert!(jemalloc
            .iter()
            .any(|c| c.symbol == "free" && c.function == Function::Free));
        assert!(jemalloc[0].is_library("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"));
        assert!(!jemalloc[0].is_library("/usr/lib/x86_64-linux-gnu/libc.so.6"));
        for bad in ["libx.so:f", "libx.so:f=sbrk", ":f=malloc", "tcmalloc"] {
            assert!(CustomAllocator::parse(bad).is_err(), "{bad}");
        }
    }
}
