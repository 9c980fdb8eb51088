//! What a CODE_OBJECT record says about a code object, held however its
//! user needs: the aggregating writer keeps the bytes to write them again,
//! replay keeps the names as text to render frames.

/// A code object: its function's name, its file, its first line and its
/// line table (`co_lnotab` before 3.10, `co_linetable` after). `T` holds the
/// two names, `L` the line table (by default the same as `T`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeObject<T, L = T> {
    pub function: T,
    pub filename: T,
    pub firstlineno: i32,
    pub linetable: L,
}
