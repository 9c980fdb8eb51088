//! Reports over big captures: their peak memory follows the live allocations
//! and the distinct stacks, not the number of records. The reader streams
//! the file through a small buffer (no mapping whose pages stay resident) and
//! the analysis keeps state only for live blocks and for stacks.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use memray_format::{Allocator, CaptureWriter, Header, MmapFileSink, StreamingWriter};
use memray_tests::paths::memray_bin;

const TID: u64 = 1;
const CODE_OBJECTS: u64 = 4;
/// What a capture many times bigger may add to a report's peak RSS.
const MAX_GROWTH_KIB: u64 = 4 << 10;

/// A capture of `pairs` malloc/free pairs made by a few Python call sites,
/// with nothing left live: only the record count changes between sizes.
fn write_churn(path: &Path, pairs: u64) {
    let header = Header {
        main_tid: TID,
        ..Header::default()
    };
    let sink = MmapFileSink::create(path, true).unwrap();
    let mut writer = StreamingWriter::new(sink, header).unwrap();
    for code in 1..=CODE_OBJECTS {
        let name = format!("site_{code}");
        writer
            .write_code_object(code, name.as_bytes(), b"/src/churn.py", 10, b"")
            .unwrap();
    }
    writer.write_frame_push(TID, 1, 0, true).unwrap();
    for pair in 0..pairs {
        let code = 1 + pair % CODE_OBJECTS;
        writer.write_frame_push(TID, code, 0, false).unwrap();
        let address = 0x10_0000 + 64 * (pair % 512);
        let size = 16 + pair % 200;
        writer
            .write_allocation(TID, address, size, Allocator::Malloc, 0)
            .unwrap();
        writer.write_frame_pop(TID, 1).unwrap();
        writer
            .write_allocation(TID, address, 0, Allocator::Free, 0)
            .unwrap();
    }
    writer.finish(1_000).unwrap();
}

/// This process's resident set size now, in KiB.
fn own_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Runs our `memray ARGS…` to completion: its stdout and peak RSS in KiB.
#[expect(
    clippy::zombie_processes,
    reason = "the child is reaped by wait4, which also tells its peak RSS"
)]
fn run_measured(args: &[&str], capture: &Path) -> (String, u64) {
    // A child's peak RSS starts at its parent's (the exec'd-from address
    // space counts), and writing the captures made ours large: bring our
    // peak down to what is resident now.
    std::fs::write("/proc/self/clear_refs", "5").expect("reset our peak RSS (Linux 4.0+)");
    let floor = own_rss_kib();
    let mut child = Command::new(memray_bin())
        .args(args)
        .arg(capture)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start memray");
    // Reports write little to stderr: reading stdout first cannot block.
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to locals; `pid` is our child, not waited for yet.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4: {}", std::io::Error::last_os_error());
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "memray {args:?} failed: {stderr}"
    );
    let peak = u64::try_from(usage.ru_maxrss).unwrap_or(0);
    assert!(
        peak > floor,
        "memray's peak RSS ({peak} KiB) must be measured above ours ({floor} KiB)"
    );
    (stdout, peak)
}

#[test]
fn peak_memory_does_not_grow_with_the_number_of_records() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.bin");
    let big = dir.path().join("big.bin");
    write_churn(&small, 1_000);
    write_churn(&big, 4_000_000);
    let big_bytes = std::fs::metadata(&big).unwrap().len();
    assert!(
        big_bytes > 32 << 20,
        "the big capture has {big_bytes} bytes"
    );

    // Every pair is a temporary allocation: their groups, not the
    // allocations, are what the report may keep.
    let reports = [
        &["stats"][..],
        &["summary"][..],
        &["summary", "--temporary-allocations"][..],
    ];
    for report in reports {
        let (_, small_kib) = run_measured(report, &small);
        let (out, big_kib) = run_measured(report, &big);
        eprintln!("memray {report:?}: {small_kib} KiB (1k pairs), {big_kib} KiB (4M pairs)");
        if report == ["stats"] {
            assert!(
                out.contains("Total allocations:\n\t4000000\n"),
                "every record was read:\n{out}"
            );
        } else {
            assert!(out.contains(" at /src/churn.py"), "the table:\n{out}");
        }
        assert!(
            big_kib < small_kib + MAX_GROWTH_KIB,
            "memray {report:?}: {big_kib} KiB on {big_bytes} bytes of records against \
             {small_kib} KiB on a tiny capture"
        );
    }
}
