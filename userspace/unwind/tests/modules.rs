#![cfg(target_os = "linux")]
//! The loaded-object listing against `/proc/self/maps`, and module-set swaps while other
//! threads unwind.

use std::collections::HashMap;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use memray_unwind::{loaded_objects, refresh_modules, ThreadUnwinder};
use python_frames::maps::file_mappings;

/// Start addresses of every file mapping in `/proc/self/maps`, by path.
fn mappings() -> HashMap<PathBuf, Vec<u64>> {
    let mut by_path: HashMap<PathBuf, Vec<u64>> = HashMap::new();
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    for mapping in file_mappings(&maps) {
        by_path
            .entry(PathBuf::from(mapping.path))
            .or_default()
            .push(mapping.start);
    }
    by_path
}

#[test]
fn every_object_and_segment_is_mapped() {
    let maps = mappings();
    let objects = loaded_objects();
    let executable = std::env::current_exe().unwrap();
    assert_eq!(
        objects[0].filename,
        executable.to_str().unwrap(),
        "the main program comes first, by its path"
    );
    assert!(objects
        .iter()
        .any(|object| object.filename.contains("libc.so")));
    assert!(!objects
        .iter()
        .any(|object| object.filename.contains("vdso")));
    for object in &objects {
        let path = std::fs::canonicalize(&object.filename).unwrap();
        let starts = maps
            .get(&path)
            .unwrap_or_else(|| panic!("{} not in maps", path.display()));
        assert!(!object.segments.is_empty());
        for segment in &object.segments {
            let page = (object.load_address + segment.vaddr) & !0xfff;
            assert!(
                starts.contains(&page),
                "{}: {:x} not mapped",
                path.display(),
                page
            );
        }
    }
}

fn build_library(name: &str) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/native/chain.c");
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&compiler)
        .args(["-O2", "-shared", "-fPIC", "-o"])
        .arg(&path)
        .arg(&source)
        .status()
        .unwrap();
    assert!(status.success());
    path
}

fn is_loaded(library: &Path) -> bool {
    let name = library.to_str().unwrap();
    loaded_objects()
        .iter()
        .any(|object| object.filename == name)
}

#[test]
fn dlopen_and_dlclose_while_threads_unwind() {
    let library = build_library("libmemray_unwind_swap.so");
    let name = CString::new(library.to_str().unwrap()).unwrap();
    refresh_modules();
    let stop = Arc::new(AtomicBool::new(false));
    let unwinding = Arc::new(AtomicUsize::new(0));
    let unwinders: Vec<_> = (0..3)
        .map(|_| {
            let (stop, unwinding) = (stop.clone(), unwinding.clone());
            std::thread::spawn(move || {
                let mut unwinder = ThreadUnwinder::new();
                let mut frames = [0u64; 128];
                let mut unwinds = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    assert!(unwinder.unwind(0, &mut frames) > 2);
                    if unwinds == 0 {
                        unwinding.fetch_add(1, Ordering::SeqCst);
                    }
                    unwinds += 1;
                }
                unwinds
            })
        })
        .collect();
    // The modules change while every thread unwinds (a loaded machine may start them late).
    while unwinding.load(Ordering::SeqCst) < unwinders.len() {
        std::thread::yield_now();
    }
    for _ in 0..50 {
        // SAFETY: loads and unloads a library with no constructors; nothing of it is used.
        unsafe {
            let handle = libc::dlopen(name.as_ptr(), libc::RTLD_NOW);
            assert!(!handle.is_null());
            refresh_modules();
            assert!(is_loaded(&library));
            assert_eq!(libc::dlclose(handle), 0);
            refresh_modules();
        }
    }
    assert!(!is_loaded(&library));
    stop.store(true, Ordering::SeqCst);
    for unwinder in unwinders {
        assert!(unwinder.join().unwrap() > 0);
    }
}
