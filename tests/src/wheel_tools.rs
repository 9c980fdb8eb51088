//! The virtualenv holding the tools that build our wheel and install it into
//! test virtualenvs: maturin, and a pip that installs into any CPython
//! 3.8–3.14 through `pip --python` (the CPython 3.14 of the cache has no
//! ensurepip). `cargo xtask setup` creates it.

use std::path::PathBuf;

use crate::paths::cache_dir;

pub const MATURIN_VERSION: &str = "1.16.0";
/// The last pip that still runs on CPython 3.8 (`--python` runs pip on the target).
pub const PIP_VERSION: &str = "25.0.1";

pub struct WheelTools {
    pub venv: PathBuf,
    pub maturin: PathBuf,
    pub pip: PathBuf,
}

/// Where the tools are (or will be, once the setup has run).
pub fn wheel_tools() -> WheelTools {
    let venv = cache_dir().join(format!("wheel-tools-maturin-{MATURIN_VERSION}"));
    WheelTools {
        maturin: venv.join("bin/maturin"),
        pip: venv.join("bin/pip"),
        venv,
    }
}
