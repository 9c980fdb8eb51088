//! Linux: the hooks are exported under the C names (`hooks`), so there is no
//! table; per-thread words are plain thread-locals.

use std::cell::Cell;
use std::thread::LocalKey;

/// One word of per-thread storage, 0 in every new thread; reading and writing
/// it never allocates. Declare one with [`thread_word!`].
pub struct ThreadWord(&'static LocalKey<Cell<usize>>);

impl ThreadWord {
    pub const fn new(word: &'static LocalKey<Cell<usize>>) -> ThreadWord {
        ThreadWord(word)
    }

    #[inline]
    pub fn get(&self) -> usize {
        self.0.with(Cell::get)
    }

    #[inline]
    pub fn set(&self, value: usize) {
        self.0.with(|word| word.set(value));
    }
}

/// `thread_word!(static NAME);` declares a [`ThreadWord`].
macro_rules! thread_word {
    (static $name:ident) => {
        #[allow(non_snake_case)]
        mod $name {
            std::thread_local! {
                // A plain `Cell` needs no destructor, so touching it never allocates.
                pub static WORD: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
            }
        }
        static $name: $crate::platform::ThreadWord =
            $crate::platform::ThreadWord::new(&$name::WORD);
    };
}
pub(crate) use thread_word;

/// Whether the loader inserted this library: `LD_PRELOAD` is honoured (or the
/// process is setuid, which nobody profiles), so nothing is checked.
pub fn loader_refusal() -> Option<String> {
    None
}
