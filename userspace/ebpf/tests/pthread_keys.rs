//! The pthread-specific value layout derived from the target's libc, checked
//! against a live Python process: for every thread, the value of CPython's
//! gilstate key read through it is the thread state python-frames finds.

use std::fs::File;
use std::os::unix::fs::FileExt;

use memray_ebpf::{LibcImage, PthreadKeyLayout};
use memray_tests::interpreters::reference_python;
use memray_tests::parked_python::ParkedPython;
use memray_tests::skip::{self, Requirement};
use python_frames::PythonProcess;

fn read_u64(memory: &File, address: u64) -> Option<u64> {
    let mut bytes = [0; 8];
    memory.read_exact_at(&mut bytes, address).ok()?;
    Some(u64::from_ne_bytes(bytes))
}

#[test]
fn thread_states_through_the_gilstate_key() {
    if !skip::needs(&[Requirement::Root]) {
        return;
    }
    let python = ParkedPython::start(&reference_python().path);
    let pid = python.pid();
    let libc = LibcImage::of_process(pid as u32).expect("libc");
    let getspecific = libc
        .function("pthread_getspecific")
        .expect("pthread_getspecific");
    let layout = PthreadKeyLayout::from_getspecific(getspecific.bytes).expect("decoded");
    eprintln!("{layout:?}");

    let process = PythonProcess::attach(pid).expect("attach python-frames");
    let threads = process.snapshot(1).expect("snapshot");
    assert!(threads.len() > 1, "the fixture parks several threads");
    let memory = File::open(format!("/proc/{pid}/mem")).expect("open its memory");
    // CPython's gilstate key: the one key under which every thread finds its
    // own thread state (pthread_self() is the thread pointer on glibc).
    let keys: Vec<u32> = (0..layout.inline_keys)
        .filter(|&key| {
            threads.iter().all(|t| {
                let slot = layout
                    .value_address(t.thread.thread_id, key)
                    .expect("inline key");
                read_u64(&memory, slot) == Some(t.thread.address)
            })
        })
        .collect();
    assert_eq!(keys.len(), 1, "keys holding every thread's state: {keys:?}");
}
