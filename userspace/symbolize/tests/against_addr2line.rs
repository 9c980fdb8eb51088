//! The symbolizer on real binaries: a C library compiled here with `-g` (inline functions
//! included) and libc against binutils' `addr2line -i -f -C` (libc against `nm -D` where it
//! has no debug information); warnings for
//! files missing or changed since the capture.

use std::ffi::{c_void, CString};
use std::path::{Path, PathBuf};
use std::process::Command;

use memray_format::{Image, Segment};
use memray_symbolize::{NativeFrame, NativeSymbolizer};
use memray_unwind::{loaded_objects, refresh_modules, ThreadUnwinder};

fn build_library(name: &str) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/native/chain.c");
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&compiler)
        .args(["-g", "-O2", "-shared", "-fPIC", "-o"])
        .arg(&path)
        .arg(&source)
        .status()
        .unwrap_or_else(|error| panic!("cannot run {compiler}: {error}"));
    assert!(status.success());
    path
}

fn load(path: &Path) -> *mut c_void {
    let name = CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: loads a library built from chain.c, which has no constructors.
    let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW) };
    assert!(!handle.is_null(), "dlopen {}", path.display());
    handle
}

fn symbol(handle: *mut c_void, name: &str) -> *mut c_void {
    let name = CString::new(name).unwrap();
    // SAFETY: looks a name up in a loaded library.
    let address = unsafe { libc::dlsym(handle, name.as_ptr()) };
    assert!(!address.is_null());
    address
}

type Probe = extern "C" fn(*mut c_void);
type Chain = unsafe extern "C" fn(Probe, *mut c_void);

extern "C" fn probe(context: *mut c_void) {
    // SAFETY: the chains are called with a `*mut Vec<u64>` as context.
    let stack = unsafe { &mut *context.cast::<Vec<u64>>() };
    let mut frames = [0u64; 256];
    let written = ThreadUnwinder::new().unwind(0, &mut frames);
    stack.extend_from_slice(&frames[..written]);
}

/// The return addresses from `probe`, called at the end of the library's chain `name`.
fn stack_through(handle: *mut c_void, name: &str) -> Vec<u64> {
    // SAFETY: chain functions have this type (chain.c).
    let chain = unsafe { std::mem::transmute::<*mut c_void, Chain>(symbol(handle, name)) };
    let mut stack = Vec::new();
    // SAFETY: the chain calls `probe` with the context it is given.
    unsafe { chain(probe, (&mut stack as *mut Vec<u64>).cast()) };
    stack
}

/// binutils' answer for a virtual offset: (function, file name, line), innermost first.
fn addr2line(path: &Path, offset: u64) -> Vec<(String, String, u32)> {
    let output = Command::new("addr2line")
        .args(["-i", "-f", "-C", "-e"])
        .arg(path)
        .arg(format!("{offset:#x}"))
        .output()
        .expect("addr2line (binutils) runs");
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    lines
        .chunks(2)
        .map(|pair| {
            let location = pair[1].split(" (discriminator").next().unwrap();
            let (file, line) = location.rsplit_once(':').unwrap();
            (
                pair[0].to_owned(),
                file_name(file),
                line.parse().unwrap_or(0),
            )
        })
        .collect()
}

fn file_name(path: &str) -> String {
    Path::new(path)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn as_triples(frames: &[NativeFrame]) -> Vec<(String, String, u32)> {
    frames
        .iter()
        .map(|frame| {
            (
                frame.function.to_string(),
                file_name(&frame.file),
                frame.line,
            )
        })
        .collect()
}

/// Every frame of `stack` in the library at `path`, symbolized by us and by addr2line.
fn compare_with_addr2line(path: &Path, stack: &[u64]) -> Vec<Vec<(String, String, u32)>> {
    let generation = loaded_objects();
    let library = generation
        .iter()
        .find(|object| Path::new(&object.filename) == path)
        .unwrap()
        .clone();
    let mut symbolizer = NativeSymbolizer::new(vec![generation], None);
    let mut seen = Vec::new();
    for &ip in stack {
        let in_library = library.segments.iter().any(|segment| {
            let start = library.load_address + segment.vaddr;
            (start..start + segment.memsz).contains(&ip)
        });
        if in_library {
            let ours = as_triples(&symbolizer.frames(ip, 1));
            assert_eq!(
                ours,
                addr2line(path, ip - 1 - library.load_address),
                "ip {ip:#x}"
            );
            seen.push(ours);
        }
    }
    assert!(symbolizer.take_warnings().is_empty());
    seen
}

#[test]
fn functions_files_lines_and_inlined_frames_as_addr2line() {
    let path = build_library("libmemray_symbolize_chain.so");
    let handle = load(&path);
    refresh_modules();
    let chain = compare_with_addr2line(&path, &stack_through(handle, "chain_foo"));
    let names: Vec<&str> = chain.iter().map(|frames| frames[0].0.as_str()).collect();
    assert_eq!(names, ["baz", "bar", "chain_foo"]);
    assert!(chain
        .iter()
        .all(|frames| frames[0].1 == "chain.c" && frames[0].2 > 0));

    let inlined = compare_with_addr2line(&path, &stack_through(handle, "chain_inlined"));
    assert_eq!(inlined.len(), 1, "one return address in the library");
    let names: Vec<&str> = inlined[0].iter().map(|frame| frame.0.as_str()).collect();
    assert_eq!(names, ["inlined_baz", "inlined_bar", "chain_inlined"]);
}

/// The names `nm -D` gives to an address of a file (aliases included).
fn dynamic_names_at(path: &Path, offset: u64) -> Vec<String> {
    let output = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let address = u64::from_str_radix(fields.next()?, 16).ok()?;
            let name = fields.nth(1)?;
            (address == offset).then(|| name.split('@').next().unwrap().to_owned())
        })
        .collect()
}

#[test]
fn libc_functions_as_addr2line_or_nm() {
    let generation = loaded_objects();
    let libc_object = generation
        .iter()
        .find(|object| object.filename.contains("libc.so"))
        .unwrap()
        .clone();
    let mut symbolizer = NativeSymbolizer::new(vec![generation], None);
    for name in ["getpid", "qsort", "opendir"] {
        let address = symbol(libc::RTLD_DEFAULT, name) as u64;
        let offset = address - libc_object.load_address;
        // A return address right after the function's first byte: `ip - 1` is its start.
        let ours = as_triples(&symbolizer.frames(address + 1, 1));
        let binutils = addr2line(Path::new(&libc_object.filename), offset);
        if binutils[0].0 == "??" {
            // No debug information (libc6-dbg) installed: the dynamic symbols decide.
            let names = dynamic_names_at(Path::new(&libc_object.filename), offset);
            assert_eq!(ours.len(), 1);
            assert!(
                names.contains(&ours[0].0),
                "{name}: {ours:?}, nm says {names:?}"
            );
        } else {
            assert_eq!(ours, binutils, "{name}");
        }
    }
}

#[test]
fn addresses_outside_every_segment_are_dropped() {
    let getpid = symbol(libc::RTLD_DEFAULT, "getpid") as u64 + 1;
    let mut symbolizer = NativeSymbolizer::new(vec![loaded_objects()], None);
    assert!(!symbolizer.frames(getpid, 1).is_empty());
    assert!(symbolizer.frames(8, 1).is_empty());
    // Generation 0 is before any MEMORY_MAP_START; 7 does not exist.
    assert!(symbolizer.frames(getpid, 0).is_empty());
    assert!(symbolizer.frames(getpid, 7).is_empty());
}

#[test]
fn a_missing_or_changed_file_is_warned_about_once() {
    let library = build_library("libmemray_symbolize_gone.so");
    let gone = Image {
        filename: library
            .with_file_name("libmemray_symbolize_deleted.so")
            .to_str()
            .unwrap()
            .into(),
        load_address: 0x10000,
        segments: vec![Segment {
            vaddr: 0,
            memsz: 0x1000,
        }],
    };
    let changed = Image {
        filename: library.to_str().unwrap().into(),
        load_address: 0x20000,
        segments: vec![Segment {
            vaddr: 0,
            memsz: 0x1000,
        }],
    };
    let mut symbolizer = NativeSymbolizer::new(vec![vec![gone.clone(), changed.clone()]], None);
    for ip in [0x10010, 0x10020, 0x20010, 0x20020] {
        assert_eq!(&*symbolizer.frames(ip, 1)[0].function, "<unknown>");
    }
    assert_eq!(
        symbolizer.take_warnings(),
        [
            format!(
                "warning: {} is missing: its native frames are shown as <unknown>",
                gone.filename
            ),
            format!(
                "warning: {} changed since the capture: its native frames are shown as <unknown>",
                changed.filename
            ),
        ]
    );
    assert!(symbolizer.take_warnings().is_empty());
}
