//! The bootstrap's `ctypes` mirror of `ActivationOptions` and its flags has the same
//! layout and version as the Rust definition (and the module imports
//! without running anything).

use std::mem::{offset_of, size_of};
use std::path::Path;
use std::process::Command;

use memray_activation::{flags, ActivationOptions, VERSION};

/// What `script` prints, run by `python3` with the source tree's package importable.
fn python_prints(script: &str) -> String {
    let python_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../python");
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .env("PYTHONPATH", python_dir)
        .output()
        .expect("run python3 from PATH");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).expect("utf-8")
}

#[test]
fn the_python_mirror_matches_the_struct() {
    let script = "import ctypes\n\
                  from memray import _bootstrap as b\n\
                  t = b.activation_options_type()\n\
                  print(b.ACTIVATION_VERSION, ctypes.sizeof(t))\n\
                  for name, _ in t._fields_:\n\
                  \x20   print(name, getattr(t, name).offset)\n";
    let expected = [
        format!("{VERSION} {}", size_of::<ActivationOptions>()),
        format!("size {}", offset_of!(ActivationOptions, size)),
        format!("version {}", offset_of!(ActivationOptions, version)),
        format!("flags {}", offset_of!(ActivationOptions, flags)),
        format!(
            "python_hexversion {}",
            offset_of!(ActivationOptions, python_hexversion)
        ),
        format!(
            "skipped_frames_on_main_tid {}",
            offset_of!(ActivationOptions, skipped_frames_on_main_tid)
        ),
        format!("output {}", offset_of!(ActivationOptions, output)),
        format!(
            "python_allocator {}",
            offset_of!(ActivationOptions, python_allocator)
        ),
        format!(
            "command_line {}",
            offset_of!(ActivationOptions, command_line)
        ),
        format!("libdest {}", offset_of!(ActivationOptions, libdest)),
        format!(
            "site_packages {}",
            offset_of!(ActivationOptions, site_packages)
        ),
        format!("sys_path {}", offset_of!(ActivationOptions, sys_path)),
        format!("live_socket {}", offset_of!(ActivationOptions, live_socket)),
        format!(
            "memory_interval_ms {}",
            offset_of!(ActivationOptions, memory_interval_ms)
        ),
    ];
    let printed = python_prints(script);
    assert_eq!(printed.lines().collect::<Vec<_>>(), expected);
}

#[test]
fn the_python_flags_match_the_rust_ones() {
    let names = "AGGREGATE FOLLOW_FORK TRACE_PYTHON_ALLOCATORS COMPRESS BUFFERED FORCE NATIVE";
    let script = format!(
        "from memray import _bootstrap as b\n\
         print(*(getattr(b, name) for name in {names:?}.split()))\n"
    );
    let expected = [
        flags::AGGREGATE,
        flags::FOLLOW_FORK,
        flags::TRACE_PYTHON_ALLOCATORS,
        flags::COMPRESS,
        flags::BUFFERED,
        flags::FORCE,
        flags::NATIVE,
    ]
    .map(|flag| flag.to_string())
    .join(" ");
    assert_eq!(python_prints(&script).trim(), expected);
}
